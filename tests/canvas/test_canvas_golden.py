"""Golden canvas episodes: one fixed plan per canvas task, pinned to its exact
rewards, grade and event log (``golden/canvas.json``). After an intended change
to the canvas simulation or grade, regenerate them with

    uv run python -m tests.canvas.test_canvas_golden

and review the diff of that file like any other change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workflow_orchestrator.server.inprocess import WorkflowEnv

GOLDEN_FILE = Path(__file__).parent.parent / "golden" / "canvas.json"

ADD_PLAN = {"action_type": "add", "operator": "Plan"}
EXECUTE = {"action_type": "execute"}
FINISH = {"action_type": "finish"}

CASES: dict[str, tuple[str, int, list[dict[str, Any]]]] = {
    "math-vote": (
        "canvas/math",
        0,
        [
            ADD_PLAN,
            {"action_type": "add", "structure": "parallel", "operators": ["Programmer"] * 3},
            {"action_type": "add", "operator": "ScEnsemble"},
            EXECUTE,
            {"action_type": "add", "structure": "conditional", "operators": ["Verify", "Revise", "Format"]},
            {"action_type": "set_prompt", "target": 2, "prompt": "concise"},
            FINISH,
        ],
    ),
    "code-tests": (
        "canvas/code",
        1,
        [
            {"action_type": "xml", "text": "<add>Plan</add>"},
            {"action_type": "add", "operator": "Programmer"},
            {"action_type": "add", "operator": "Wizard"},
            {"action_type": "add", "structure": "loop", "operators": ["Test", "Revise"], "count": 2},
            EXECUTE,
            EXECUTE,
            FINISH,
        ],
    ),
    "qa-decompose": (
        "canvas/qa",
        2,
        [
            {"action_type": "add", "operator": "Decompose"},
            {"action_type": "add", "operator": "Custom"},
            {"action_type": "modify", "target": 2, "operator": "AnswerGenerate"},
            {"action_type": "add", "structure": "conditional", "operators": ["Review", "Revise", "Format"]},
            {"action_type": "delete", "target": 9},
            EXECUTE,
            {"action_type": "finish", "answer": "Norland"},
        ],
    ),
    "mixed-template": (
        "canvas/mixed",
        3,
        [
            {
                "action_type": "xml",
                "text": "<action>add</action><operator>Plan</operator>",
            },
            {"action_type": "add", "structure": "parallel", "operators": ["Programmer", "AnswerGenerate", "Custom"]},
            {"action_type": "add", "operator": "ScEnsemble"},
            {"action_type": "add", "structure": "conditional", "operators": ["Test", "Revise", "Format"]},
            FINISH,
        ],
    ),
}


def run_case(task_id: str, seed: int, actions: list[dict[str, Any]]) -> dict[str, Any]:
    env = WorkflowEnv()
    observation = env.reset(task_id, seed=seed)
    rewards = []
    for action in actions:
        observation = env.step(action)
        rewards.append(round(observation["reward"], 6))
    grade = observation["grade"]
    return {
        "task_id": task_id,
        "seed": seed,
        "rewards": rewards,
        "score": grade["score"],
        "breakdown": grade["breakdown"],
        "counts": grade["counts"],
        "events": env.episode.log.records,
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_canvas_episode(name: str) -> None:
    expected = json.loads(GOLDEN_FILE.read_text())[name]
    actual = json.loads(json.dumps(run_case(*CASES[name])))
    for key in ("rewards", "score", "breakdown", "counts"):
        assert actual[key] == expected[key], key
    assert actual["events"] == expected["events"]


if __name__ == "__main__":
    results = {name: run_case(*case) for name, case in sorted(CASES.items())}
    GOLDEN_FILE.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN_FILE}")
