"""The runner's reading of answers that name an action it does not know."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from workflow_orchestrator.runner import answers, players, settings
from workflow_orchestrator.server.inprocess import WorkflowEnv


def test_a_known_action_after_a_mention_of_another_is_read() -> None:
    text = 'wait() is pointless now. {"action_type": "delegate", "subtask_id": "a", "agent_name": "x"}'
    assert answers.extract_action(text) == {"action_type": "delegate", "subtask_id": "a", "agent_name": "x"}


@pytest.mark.parametrize(
    "text",
    [
        # An earlier mention of a known action does not stand in for the answer.
        'Not wait(): {"action_type": "explode", "subtask_id": "a"}',
        '{"action_type": "wait"} would waste time; instead {"type": "Explode"}',
        '{"action": {"action_type": "explode"}}',
    ],
)
def test_an_unknown_action_type_makes_the_answer_unreadable(text: str) -> None:
    assert answers.extract_action(text) is None
    assert answers.read_answer(text) == (None, "explode")


def test_a_compact_action_inside_a_string_is_still_read() -> None:
    """``{"action": "delegate(a,x)"}`` names no type word: the compact form inside it is read."""
    assert answers.extract_action('{"action": "delegate(a, x)"}') == {
        "action_type": "delegate",
        "subtask_id": "a",
        "agent_name": "x",
    }


class _ScriptedClient:
    def __init__(self, text: str, calls: list[tuple[str, str]] | None = None) -> None:
        self.completion = players.Completion(text, calls or [], 10, 5)

    async def complete(self, messages: list[dict[str, Any]], deadline: float) -> players.Completion:
        return self.completion


def _decide(client: _ScriptedClient) -> players.Decision:
    run = settings.settings_from(settings.build_parser().parse_args([]), [], {"API_KEY": "k", "MODEL_NAME": "m"})
    observation = WorkflowEnv().reset("easy", seed=0)
    player = players.ModelPlayer(client, run, observation)  # type: ignore[arg-type]
    return asyncio.run(player.decide(observation, time.monotonic() + 60))


def test_a_model_answer_of_an_unknown_type_is_reported_not_played() -> None:
    decision = _decide(_ScriptedClient('Rather than wait(), {"action_type": "explode", "subtask_id": "a"}'))
    assert decision.issue == "unparseable_answer"
    assert decision.detail is not None and decision.detail.startswith("unknown action type 'explode' in: ")
    assert decision.action == {"action_type": "wait"}
    tool = _decide(_ScriptedClient("", [("explode", "{}")]))
    assert tool.issue == "unparseable_answer"
    assert tool.detail is not None and tool.detail.startswith("unknown action type 'explode'")
    plain = _decide(_ScriptedClient("I do not know."))
    assert plain.issue == "unparseable_answer" and plain.detail == "no action found in: I do not know."
