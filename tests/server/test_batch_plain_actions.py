"""batch_step messages read without the pydantic models take only what the models accept, as they give it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from workflow_orchestrator.models import BatchStepMessage
from workflow_orchestrator.server.http.batch import plain_batch_actions

_models = TypeAdapter(BatchStepMessage)

LONG = "x" * 65
ACTIONS: list[Any] = [
    {"action_type": "wait"},
    {"action_type": "synthesize"},
    {"action_type": "delegate", "subtask_id": "a", "agent_name": "b"},
    {"action_type": "retry", "subtask_id": "a"},
    {"action_type": "retry", "subtask_id": "a", "agent_name": None},
    {"action_type": "abort", "subtask_id": "a", "agent_name": None, "assignments": None, "task_ids": None},
    {"action_type": "dispatch", "task_ids": ["a", "b"]},
    {"action_type": "dispatch", "task_ids": []},
    {"action_type": "dispatch", "task_ids": [LONG, ""]},
    {"action_type": "dispatch", "assignments": [{"subtask_id": "a"}, {"subtask_id": "b", "agent_name": "c"}]},
    {"action_type": "dispatch", "assignments": [], "task_ids": ["a"]},
    {"action_type": "dispatch", "assignments": [{"subtask_id": "a", "agent_name": None}]},
    {"action_type": "dispatch", "assignments": [{"subtask_id": ""}]},
    {"action_type": "dispatch", "assignments": [{"subtask_id": "a", "extra": 1}]},
    {"action_type": "dispatch", "assignments": [{"agent_name": "c"}]},
    {"action_type": "dispatch", "assignments": ["a"]},
    {"action_type": "dispatch", "assignments": [{"subtask_id": "a"}] * 65},
    {"action_type": "dispatch", "task_ids": ["a"] * 65},
    {"action_type": "dispatch", "task_ids": ["a"] * 64},
    {"action_type": "dispatch", "task_ids": [1]},
    {"action_type": "dispatch", "task_ids": "a"},
    {"action_type": "delegate", "subtask_id": "", "agent_name": "b"},
    {"action_type": "delegate", "subtask_id": LONG, "agent_name": "b"},
    {"action_type": "delegate", "subtask_id": "x" * 64, "agent_name": "é" * 64},
    {"action_type": "delegate", "subtask_id": 3, "agent_name": "b"},
    {"action_type": "delegate", "subtask_id": "a", "agent_name": ["b"]},
    {"action_type": "wait", "metadata": {}},
    {"action_type": "wait", "extra": 1},
    {"action_type": "Wait"},
    {"action_type": None},
    {"subtask_id": "a"},
    {"action_type": "execute"},
    {"action_type": "add", "operator": "generate"},
    "wait",
    None,
    [],
]


def _through_models(message: Any) -> list[dict[str, Any]] | None:
    try:
        parsed = _models.validate_json(orjson.dumps(message))
    except ValidationError:
        return None
    return [action.to_core() for action in parsed.data.actions]


@pytest.mark.parametrize("action", ACTIONS)
def test_a_plain_action_is_read_as_the_models_read_it(action: Any) -> None:
    message = {"type": "batch_step", "data": {"actions": [{"action_type": "wait"}, action]}}
    plain = plain_batch_actions(orjson.dumps(message).decode())
    expected = _through_models(message)
    if plain is not None:
        assert expected is not None and plain == expected
        assert [list(a) for a in plain] == [list(a) for a in expected]  # same keys, same order
    elif action in ACTIONS[:12]:
        pytest.fail(f"a plain action went to the models: {action!r}")


@pytest.mark.parametrize(
    "message",
    [
        {"type": "batch_step", "data": {"actions": []}},
        {"type": "batch_step", "data": {"actions": [{"action_type": "wait"}] * 257}},
        {"type": "batch_step", "data": {"actions": {"action_type": "wait"}}},
        {"type": "batch_step", "data": {"actions": [{"action_type": "wait"}], "more": 1}},
        {"type": "batch_step", "data": [], "more": 1},
        {"type": "batch_step"},
        {"type": "step", "data": {"actions": [{"action_type": "wait"}]}},
        ["batch_step"],
    ],
)
def test_a_message_the_models_refuse_is_left_to_them(message: Any) -> None:
    assert plain_batch_actions(orjson.dumps(message)) is None
    assert plain_batch_actions(b'{"type": "batch_step", "data": {') is None


def test_the_largest_plain_batch_is_read_from_text_and_bytes() -> None:
    message = {"type": "batch_step", "data": {"actions": [{"action_type": "retry", "subtask_id": "a"}] * 256}}
    expected = _through_models(message)
    assert plain_batch_actions(orjson.dumps(message)) == expected
    assert plain_batch_actions(orjson.dumps(message).decode()) == expected
