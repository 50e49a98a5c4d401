"""Golden episodes: a fixed plan played on a task, pinned to its exact rewards, grade and event
log in a JSON file of the tests' ``golden/`` folder (see tests/core/test_core_golden.py and
tests/canvas/test_canvas_golden.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflow_orchestrator.server.inprocess import WorkflowEnv

# A case: the task, the seed and the actions played.
Case = tuple[str, int, list[dict[str, Any]]]


def play_case(task_id: str, seed: int, actions: list[dict[str, Any]]) -> dict[str, Any]:
    """What a golden file pins of one case: each step's reward, the grade's score, breakdown and
    counts, and the event log."""
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


def check_case(golden_file: Path, name: str, case: Case) -> None:
    """The case plays exactly as the golden file pins it."""
    expected = json.loads(golden_file.read_text())[name]
    actual = json.loads(json.dumps(play_case(*case)))
    for key in ("rewards", "score", "breakdown", "counts"):
        assert actual[key] == expected[key], key
    assert actual["events"] == expected["events"]


def write_golden(golden_file: Path, cases: dict[str, Case]) -> None:
    """Play every case and write the golden file anew (after an intended change; review its diff)."""
    golden_file.parent.mkdir(exist_ok=True)
    results = {name: play_case(*case) for name, case in sorted(cases.items())}
    golden_file.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"wrote {golden_file}")
