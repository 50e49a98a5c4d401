"""The runner on canvas tasks: the model's answer in the published XML form or as
JSON, the labels of canvas actions, the prompts, and inference.py playing a
canvas task end to end against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_model import ScriptedModel
from workflow_orchestrator import inference
from workflow_orchestrator.runner.answers import action_label
from workflow_orchestrator.runner.canvas import read_canvas_answer
from workflow_orchestrator.runner.prompts import system_prompt, user_prompt
from workflow_orchestrator.server.inprocess import WorkflowEnv

STEP_LINE = re.compile(
    r"^\[STEP\] step=(\d+) action=([a-z_]+\([^\s()]*\)) reward=(-?\d+\.\d\d) done=(true|false) error=(\S+)$"
)
END_LINE = re.compile(r"^\[END\] success=(true|false) steps=(\d+) score=(\d\.\d{3}) rewards=(\S*)$")


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("<action>add</action><operator>Plan</operator>", {"action_type": "add", "operator": "Plan"}),
        (
            "<think>maybe <add>Review</add></think>I will add a check.\n<add>Verify ? Revise : Format</add>",
            {"action_type": "add", "operators": ["Verify", "Revise", "Format"], "structure": "conditional"},
        ),
        (
            "Parallel samples: <action>add</action><structure>parallel</structure>"
            "<operators>Programmer, Custom</operators>",
            {"action_type": "add", "structure": "parallel", "operators": ["Programmer", "Custom"]},
        ),
        ("<action>finish</action><answer>42</answer>", {"action_type": "finish", "answer": "42"}),
        ("<execute/>", {"action_type": "execute"}),
        ('```json\n{"action_type": "delete", "target": 2}\n```', {"action_type": "delete", "target": 2}),
        ('{"action": {"type": "set_prompt", "target": 1, "prompt": "concise"}}', None),
        ('{"action_type": "xml", "text": "<delete>3</delete>"}', {"action_type": "delete", "target": 3}),
        # The last action written wins, JSON or XML.
        (
            '{"action_type": "execute"} no, rather <action>finish</action>',
            {"action_type": "finish"},
        ),
    ],
)
def test_a_canvas_answer_is_read_as_xml_or_json(text: str, action: dict[str, Any] | None) -> None:
    found, reason = read_canvas_answer(text)
    if action is None:
        assert found == {"action_type": "set_prompt", "target": 1, "prompt": "concise"}
    else:
        assert found == action and reason is None


@pytest.mark.parametrize(
    "text", ["", "I do not know.", "<action>explode</action>", '{"action_type": "delegate", "subtask_id": "a"}']
)
def test_an_unreadable_canvas_answer_says_why(text: str) -> None:
    found, reason = read_canvas_answer(text)
    assert found is None and reason


def test_canvas_labels_are_compact() -> None:
    assert action_label({"action_type": "add", "operator": "Plan"}) == "add(Plan)"
    assert (
        action_label({"action_type": "add", "structure": "loop", "operators": ["Test", "Revise"], "count": 2})
        == "add(loop:Test,Revise*2)"
    )
    assert action_label({"action_type": "modify", "target": 2, "operator": "Custom"}) == "modify(2:Custom)"
    assert action_label({"action_type": "set_prompt", "target": 1, "prompt": "concise"}) == "set_prompt(1:concise)"
    assert action_label({"action_type": "finish", "answer": "x = (4 2)"}) == "finish(x_=_4_2)"
    assert action_label({"action_type": "execute"}) == "execute()"
    assert action_label({"action_type": "delegate", "subtask_id": "a", "agent_name": "b"}) == "delegate(a,b)"


def test_the_prompts_of_a_canvas_task() -> None:
    observation = WorkflowEnv().reset("canvas/code", seed=2)
    system = system_prompt(observation, tool_calls=True)
    assert "<action>add</action><operator>Plan</operator>" in system and "subtask" not in system
    user = user_prompt(observation, ["step 1: add(Plan) -> reward +0.00"], tool_calls=False)
    assert "=== Canvas ===" in user and "=== Execution ===" in user and "step 1: add(Plan)" in user
    assert "XML or JSON" in user


SCRIPT = [
    "I start with a plan. <action>add</action><operator>Plan</operator>",
    '{"action_type": "add", "operator": "Programmer"}',
    "Not sure what to do.",
    "<add>Verify ? Revise : Format</add>",
    "<action>execute</action>",
    "<action>finish</action>",
]


def test_inference_plays_a_canvas_task_end_to_end_with_xml_answers(capsys: pytest.CaptureFixture[str]) -> None:
    replies = list(SCRIPT)

    def script(messages: list[dict[str, Any]]) -> str:
        return replies.pop(0) if replies else "<finish/>"

    with ScriptedModel(script) as model:
        code = inference.main(
            [
                "--api-base-url",
                model.base_url,
                "--api-key",
                "test-key",
                "--model",
                "scripted",
                "--tasks",
                "canvas/math",
                "--seeds",
                "5",
                "--tool-calls",
                "--no-progress",
                "--retry-backoff",
                "0.01",
            ]
        )
        requests = list(model.requests)
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "[START] task=canvas/math env=workflow_orchestrator model=scripted"
    steps = [STEP_LINE.match(line) for line in lines[1:-1]]
    assert all(steps), lines
    labels = [m[2] for m in steps if m]
    errors = [m[5] for m in steps if m]
    # The unreadable answer played execute (on a canvas nothing lets a round pass); the canvas was not empty.
    assert labels == [
        "add(Plan)",
        "add(Programmer)",
        "execute()",
        "add(conditional:Verify,Revise,Format)",
        "execute()",
        "finish()",
    ]
    assert errors == ["null", "null", "unparseable_answer", "null", "null", "null"]
    end = END_LINE.match(lines[-1])
    assert end is not None and end[1] == "true"
    # The same actions played in this process give the same score.
    env = WorkflowEnv()
    env.reset("canvas/math", seed=5)
    for action in (
        {"action_type": "add", "operator": "Plan"},
        {"action_type": "add", "operator": "Programmer"},
        {"action_type": "execute"},
        {"action_type": "add", "structure": "conditional", "operators": ["Verify", "Revise", "Format"]},
        {"action_type": "execute"},
        {"action_type": "finish"},
    ):
        observation = env.step(action)
    assert float(end[3]) == pytest.approx(observation["grade"]["score"], abs=5e-4)
    # Canvas prompts, in text: no tools sent even with --tool-calls; the feedback layout; the history.
    assert all("tools" not in body for body in requests)
    assert "<action>add</action>" in requests[0]["messages"][0]["content"]
    last = requests[-1]["messages"][1]["content"]
    assert "=== Execution ===" in last and "Verifier:" in last
    assert "your answer was not used: unparseable_answer; execute was played" in requests[3]["messages"][1]["content"]


def test_built_in_policies_play_canvas_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    code = inference.main(["--policy", "heuristic", "--tasks", "canvas/qa", "--seeds", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    labels = [m[2] for m in (STEP_LINE.match(line) for line in out.splitlines()) if m]
    assert labels[0].startswith("add(") and labels[-1] == "finish()"
    assert json.dumps(labels)


@pytest.mark.parametrize("right", [True, False])
def test_inference_runs_canvases_on_the_model_with_the_openai_executor(
    right: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--canvas-executor openai: a built-in policy designs the canvas, the model runs every operator, and the
    grade's correctness is what the model's answer really was."""
    env = WorkflowEnv()
    env.reset("canvas/math", seed=5)
    answer = env.episode.problem.answer
    said = answer if right else f"{answer}1"

    def script(messages: list[dict[str, Any]]) -> str:
        return f"<answer>{said}</answer>\nVERDICT: CORRECT"

    monkeypatch.setenv("WORKFLOW_ORCHESTRATOR_MODEL_CACHE", str(tmp_path / "cache.sqlite"))
    output = tmp_path / "results.json"
    with ScriptedModel(script) as model:
        code = inference.main(
            [
                "--policy",
                "template",
                "--canvas-executor",
                "openai",
                "--api-base-url",
                model.base_url,
                "--api-key",
                "test-key",
                "--model",
                "scripted",
                "--tasks",
                "canvas/math",
                "--seeds",
                "5",
                "--no-progress",
                "--output",
                str(output),
            ]
        )
        calls = len(model.requests)
    capsys.readouterr()
    assert code == 0 and calls > 0
    results = json.loads(output.read_text())
    assert results["settings"]["canvas_executor"] == "openai"
    (episode,) = results["episodes"]
    assert episode["grade"]["breakdown"]["correctness"] == (1.0 if right else 0.0)


def test_the_openai_canvas_executor_needs_a_model_and_an_in_process_run(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--policy", "template", "--tasks", "canvas/math", "--canvas-executor", "openai", "--no-progress"]
    assert inference.main([*base, "--model", "m", "--api-key", "k", "--env-url", "http://127.0.0.1:9"]) == 2
    assert inference.main(base) == 2
    err = capsys.readouterr().err
    assert "in-process" in err and "a model and an API key" in err
