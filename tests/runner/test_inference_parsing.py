"""inference.py's pure parts: reading model answers, seeds, labels, the prompt."""

from __future__ import annotations

import io
import json

import pytest

from workflow_orchestrator.runner import answers, episodes, errors, prompts, reports, settings
from workflow_orchestrator.server.inprocess import WorkflowEnv

DELEGATE = {"action_type": "delegate", "subtask_id": "technical_design", "agent_name": "tech_lead"}


@pytest.mark.parametrize(
    "answer",
    [
        '{"action_type": "delegate", "subtask_id": "technical_design", "agent_name": "tech_lead"}',
        # Reasoning in think tags that mentions another action, then the answer.
        '<think>Maybe {"action_type": "wait"}? No: start the design.</think>\n'
        '{"action_type": "delegate", "subtask_id": "technical_design", "agent_name": "tech_lead"}',
        # The reasoning names a JSON action; the answer outside it uses the compact form.
        '<think>{"action_type": "wait"} would waste a tick.</think> delegate(technical_design, tech_lead)',
        # Only a closing tag, as some servers strip the opening one.
        'I could {"action_type": "wait"} ...</think>{"action_type":"delegate","subtask_id":"technical_design",'
        '"agent_name":"tech_lead"}',
        # A code fence with prose around it.
        'Here is my move:\n```json\n{\n  "action_type": "delegate",\n  "subtask_id": "technical_design",\n'
        '  "agent_name": "tech_lead"\n}\n```\nThis starts the critical path.',
        # Python-style quotes and a trailing comma.
        "{'action_type': 'delegate', 'subtask_id': 'technical_design', 'agent_name': 'tech_lead',}",
        '{"action_type": "delegate", "subtask_id": "technical_design", "agent_name": "tech_lead",}',
        # A wrapper object, aliases, and keys the environment does not know.
        '{"action": {"type": "Delegate", "subtask": "technical_design", "agent": "tech_lead"}, "reason": "x"}',
        '{"action_type": "delegate", "subtask_id": "technical_design", "agent_name": "tech_lead", '
        '"reasoning": "the only ready subtask", "confidence": 0.9}',
        # The compact form the state uses for legal actions.
        "The best action is delegate(technical_design, tech_lead).",
        # Braces inside strings do not confuse the scanner.
        'Note {"x": "}{"} then '
        '{"action_type": "delegate", "subtask_id": "technical_design", "agent_name": "tech_lead"}',
    ],
)
def test_extract_action_reads_the_answer_through_noise(answer: str) -> None:
    assert answers.extract_action(answer) == DELEGATE


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "I am not sure what to do next.",
        '{"subtask_id": "technical_design"}',  # no action type
        '{"action_type": "launch", "subtask_id": "technical_design"}',  # no such action
        '{"action_type": "delegate", "subtask_id": ',  # cut off
        "[1, 2, 3]",
    ],
)
def test_extract_action_gives_none_when_no_action_is_named(answer: str) -> None:
    assert answers.extract_action(answer) is None


def test_extract_action_prefers_the_last_action_and_keeps_dispatch_assignments() -> None:
    answer = (
        'First {"action_type": "wait"}. Better: {"action_type": "dispatch", "assignments": '
        '[{"subtask_id": "a", "agent_name": "x"}, ["b", "y"], "c"]}'
    )
    assert answers.extract_action(answer) == {
        "action_type": "dispatch",
        "assignments": [
            {"subtask_id": "a", "agent_name": "x"},
            {"subtask_id": "b", "agent_name": "y"},
            {"subtask_id": "c"},
        ],
    }
    assert answers.extract_action("dispatch(a:x, b)") == {
        "action_type": "dispatch",
        "assignments": [{"subtask_id": "a", "agent_name": "x"}, {"subtask_id": "b"}],
    }
    assert answers.extract_action("Nothing is ready, so: wait()") == {"action_type": "wait"}


def test_normalized_ids_are_strings_within_the_wire_limits() -> None:
    action = answers.normalize_action({"action_type": "abort", "subtask_id": 7, "agent_name": "x"})
    assert action == {"action_type": "abort", "subtask_id": "7"}  # abort takes no agent
    long = answers.normalize_action({"action_type": "retry", "subtask_id": "s" * 500})
    assert long is not None and len(long["subtask_id"]) == answers.MAX_ID_LENGTH
    many = answers.normalize_action({"action_type": "dispatch", "task_ids": [f"t{i}" for i in range(200)]})
    assert many is not None and len(many["task_ids"]) == answers.MAX_BATCH


def test_tool_calls_become_one_action_and_several_starts_one_dispatch() -> None:
    single = answers.action_from_tool_calls([("delegate", json.dumps({"subtask_id": "a", "agent_name": "x"}))])
    assert single == {"action_type": "delegate", "subtask_id": "a", "agent_name": "x"}
    assert answers.action_from_tool_calls([("wait", "")]) == {"action_type": "wait"}
    merged = answers.action_from_tool_calls(
        [
            ("delegate", '{"subtask_id": "a", "agent_name": "x"}'),
            ("retry", '{"subtask_id": "b", "agent_name": "y"}'),
        ]
    )
    assert merged == {
        "action_type": "dispatch",
        "assignments": [{"subtask_id": "a", "agent_name": "x"}, {"subtask_id": "b", "agent_name": "y"}],
    }
    # A mix that is not all starts: the first call counts.
    assert answers.action_from_tool_calls([("wait", "{}"), ("delegate", '{"subtask_id": "a"}')]) == {
        "action_type": "wait"
    }
    assert answers.action_from_tool_calls([("explode", "{}")]) is None


def test_action_labels_are_the_step_line_forms() -> None:
    assert answers.action_label(DELEGATE) == "delegate(technical_design,tech_lead)"
    assert answers.action_label({"action_type": "wait"}) == "wait()"
    assert answers.action_label({"action_type": "retry", "subtask_id": "s"}) == "retry(s)"
    dispatch = {
        "action_type": "dispatch",
        "assignments": [{"subtask_id": "s1", "agent_name": "a1"}, {"subtask_id": "s2"}],
    }
    assert answers.action_label(dispatch) == "dispatch(s1:a1,s2)"
    # The core refuses this shape; the label still has no spaces.
    assert answers.action_label({"action_type": "delegate", "subtask_id": "two words"}) == "delegate(two_words)"


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("7", (7,)), ("1,4,9", (1, 4, 9)), ("0-3,10,2", (0, 1, 2, 3, 10)), (" 5 - 6 ", (5, 6))],
)
def test_parse_seeds(text: str, seeds: tuple[int, ...]) -> None:
    assert settings.parse_seeds(text) == seeds


def test_parse_seeds_range_and_errors() -> None:
    assert settings.parse_seeds("100-199") == tuple(range(100, 200))
    for bad in ("", "x", "5-3", "-1", f"0-{2**31}", "1,,a"):
        with pytest.raises(errors.UsageError):
            settings.parse_seeds(bad)


def test_prompt_states_the_rules_of_the_task_and_the_rendered_state() -> None:
    observation = WorkflowEnv().reset("hard", seed=0)
    system = prompts.system_prompt(observation, tool_calls=False)
    assert "permanent" in system and "capacity" in system and "synthesize" in system
    # The task's own rules, read from the observation.
    assert "enrich_logs, check_dashboards feed root_cause_analysis" in system
    assert "after validate_fix completes, wait 2 time(s)" in system
    for name, weight in observation["rules"]["grade_weights"].items():
        assert f"{name} {weight:g}" in system
    assert "exactly one JSON object" in system
    assert "calling exactly one of the tools" in prompts.system_prompt(observation, tool_calls=True)
    user = prompts.user_prompt(observation, ["step 1: wait() -> reward +0.00"], tool_calls=False)
    assert "step 1: wait()" in user
    assert "- delegate(alert_triage,triage_analyst)" in user  # from the shared renderer
    tool_names = [tool["function"]["name"] for tool in prompts.ACTION_TOOLS]
    assert sorted(tool_names) == sorted(answers.ACTION_TYPES)


def test_expert_prompt_names_the_pillars() -> None:
    observation = WorkflowEnv().reset("expert", seed=0)
    system = prompts.system_prompt(observation, tool_calls=False)
    assert "health: assess_sleep_energy, midday_health_check" in system


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_lines_elsewhere() -> None:
    results = [
        episodes.EpisodeResult(model="m", task_id="easy", seed=seed, score=score)
        for seed, score in enumerate((0.5, 1.0, None))
    ]
    terminal = _Terminal()
    bar = reports.Progress(3, terminal, enabled=True)
    for result in results:
        bar.advance(result)
    frames = terminal.getvalue().split("\r")[1:]
    assert len(frames) == 3 and frames[-1].endswith("\n")
    assert "3/3 mean score 0.750" in frames[-1] and "#" * 30 in frames[-1]
    plain = io.StringIO()
    lines = reports.Progress(3, plain, enabled=True)
    for result in results:
        lines.advance(result)
    assert plain.getvalue().splitlines()[1].startswith("[2/3] m easy seed 1: score 1.000")
    silent = io.StringIO()
    quiet = reports.Progress(3, silent, enabled=False)
    quiet.advance(results[0])
    assert silent.getvalue() == "" and quiet.done == 1
