"""Golden canvas episodes: one fixed plan per canvas task, pinned to its exact
rewards, grade and event log (``golden/canvas.json``). After an intended change
to the canvas simulation or grade, regenerate them with

    uv run python -m tests.canvas.test_canvas_golden

and review the diff of that file like any other change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.golden import Case, check_case, write_golden

GOLDEN_FILE = Path(__file__).parent.parent / "golden" / "canvas.json"

ADD_PLAN = {"action_type": "add", "operator": "Plan"}
EXECUTE = {"action_type": "execute"}
FINISH = {"action_type": "finish"}

CASES: dict[str, Case] = {
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


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_canvas_episode(name: str) -> None:
    check_case(GOLDEN_FILE, name, CASES[name])


if __name__ == "__main__":
    write_golden(GOLDEN_FILE, CASES)
