"""The canvas tasks: seeded problems with verifiable answers, the JSONL loader,
the registry, and the runner playing them with the built-in policies."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from workflow_orchestrator.runner.run import play_policies
from workflow_orchestrator.server.core.canvas.problem import Problem
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import TaskRegistry, default_registry
from workflow_orchestrator.server.tasks.canvas import (
    CanvasFileFamily,
    generate_problem,
    load_problems,
    problem_from_row,
)

PRESETS = ("math", "code", "qa", "mixed")


@pytest.mark.parametrize("preset", PRESETS)
def test_problems_are_seeded(preset: str) -> None:
    problems = [generate_problem(preset, seed) for seed in range(40)]
    assert problems == [generate_problem(preset, seed) for seed in range(40)]
    assert len({(p.text, p.tests) for p in problems}) > 30
    kinds = {p.problem_type for p in problems}
    assert kinds == ({"math", "code", "qa"} if preset == "mixed" else {preset})
    assert {p.difficulty for p in problems} == {"easy", "medium", "hard"}


def test_code_problems_tests_hold_for_their_reference_solution() -> None:
    for seed in range(30):
        problem = generate_problem("code", seed)
        assert problem.entry_point and problem.tests and problem.entry_point in problem.text
        namespace: dict[str, Any] = {}
        exec(problem.answer, namespace)  # noqa: S102 (the generator's own reference solution)
        for test in problem.tests:
            exec(test, namespace)  # noqa: S102


def test_math_and_qa_answers_follow_from_the_text() -> None:
    for seed in range(30):
        math = generate_problem("math", seed)
        assert re.fullmatch(r"-?\d+", math.answer) and math.answer not in math.distractors
        qa = generate_problem("qa", seed)
        assert qa.verbose and qa.answer in qa.text and qa.answer not in qa.distractors
    easy = next(p for p in (generate_problem("math", s) for s in range(50)) if p.difficulty == "easy")
    a, b, c = (int(n) for n in re.findall(r"\d+", easy.text))
    assert easy.answer == str(a * b - c)


def test_the_registry_lists_and_resolves_the_canvas_tasks() -> None:
    registry = default_registry()
    listed = {task["task_id"]: task for task in registry.list_tasks()}
    for preset in PRESETS:
        assert listed[f"canvas/{preset}"]["family"] == "canvas"
    resolved = registry.resolve("canvas/code", seed=12)
    assert resolved.spec.family == "canvas" and resolved.spec.parameters["problem"] == generate_problem("code", 12)
    with pytest.raises(ValueError, match="worker_count"):
        registry.resolve("canvas/code", seed=1, worker_count=3)


def test_a_jsonl_file_of_published_rows(tmp_path: Path) -> None:
    rows = [
        {"problem": "What is 6 times 7?", "answer": "42", "problem_type": "math"},
        {
            "problem": "Write add(a, b).",
            "ground_truth": "def add(a, b):\n    return a + b",
            "problem_type": "code",
            "entry_point": "add",
            "test": "def check(candidate):\n    pass\nassert add(1, 2) == 3\nassert add(0, 0) == 0\n",
        },
        {"problem": "Capital of Norland?", "ground_truth": "Osk", "problem_type": "qa", "difficulty": "hard"},
    ]
    path = tmp_path / "problems.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    problems = load_problems(path)
    assert [p.problem_type for p in problems] == ["math", "code", "qa"]
    assert problems[1].tests == ("assert add(1, 2) == 3", "assert add(0, 0) == 0")
    assert problems[2].difficulty == "hard" and problems[0].source == "file"
    registry = TaskRegistry()
    registry.add_family(CanvasFileFamily(path))
    env = WorkflowEnv(registry)
    observation = env.reset("canvas-file/all", seed=4)
    assert observation["canvas"]["problem"]["text"] == "Write add(a, b)."
    assert observation["canvas"]["problem"]["test_count"] == 2


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"answer": "1", "problem_type": "math"}, "problem"),
        ({"problem": "x", "answer": "1", "problem_type": "poetry"}, "problem_type"),
        ({"problem": "x", "problem_type": "math"}, "answer"),
        ({"problem": "x", "problem_type": "code", "test": "assert f() == 1"}, "entry_point"),
    ],
)
def test_bad_rows_are_refused_naming_what_is_wrong(row: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        problem_from_row(row)


def test_a_problem_checks_its_words() -> None:
    with pytest.raises(ValueError, match="problem_type"):
        Problem("poetry", "easy", "x", "y")


def test_the_runner_plays_the_canvas_tasks_with_the_built_in_policies() -> None:
    tasks = [f"canvas/{preset}" for preset in PRESETS]
    results = play_policies(["heuristic", "random"], tasks, {task: [0, 1] for task in tasks})
    assert len(results) == 2 * len(tasks) * 2
    for result in results:
        assert 0.0 <= result.score <= 1.0
    heuristic = [r.score for r in results if r.model == "heuristic"]
    assert min(heuristic) > 0.5
