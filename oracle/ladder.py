"""The ladder: mean grade of each built-in policy and of the oracle, per task,
raw and as a fraction of the best achievable score (``normalized_score``).

Expected order on every task: noop < random < greedy <= heuristic <= oracle.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ..evaluation import play_policy
from ..server.core.env import WorkflowEnv
from ..server.tasks import TaskRegistry, default_registry
from .catalogue import ARENA_SEEDS, ARENA_TASKS, GENERATED_TASKS, SCENARIO_SEEDS, SCENARIO_TASKS
from .demos import oracle_plan

LADDER = ("noop", "random", "greedy", "heuristic", "oracle")
DEFAULT_TASKS = SCENARIO_TASKS + ARENA_TASKS + GENERATED_TASKS


def default_seeds(task_id: str) -> list[int]:
    """The seeds whose best scores are shipped."""
    return list(ARENA_SEEDS if task_id.startswith("arena/") else SCENARIO_SEEDS)


def oracle_grade(env: WorkflowEnv, task_id: str, seed: int, seconds: float) -> dict[str, Any]:
    oracle = oracle_plan(env.registry, task_id, seed, seconds)
    env.reset(task_id, seed=seed)
    for action in oracle.plan:
        if env.done:
            break
        env.step(action)
    return env.grade()


def ladder_means(
    tasks: Sequence[str],
    seeds: dict[str, Sequence[int]],
    rungs: Sequence[str] = LADDER,
    seconds: float = 10.0,
    registry: TaskRegistry | None = None,
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per task and rung: the mean score and the mean normalised score (None
    unless the best achievable score is known for every seed)."""
    env = WorkflowEnv(registry=registry or default_registry())
    table: dict[str, dict[str, dict[str, float | None]]] = {}
    for task_id in tasks:
        row: dict[str, dict[str, float | None]] = {}
        for rung in rungs:
            grades = [
                oracle_grade(env, task_id, seed, seconds) if rung == "oracle" else play_policy(env, rung, task_id, seed)
                for seed in seeds[task_id]
            ]
            normalized = [g["normalized_score"] for g in grades]
            row[rung] = {
                "score": round(statistics.mean(g["score"] for g in grades), 4),
                "normalized": None if None in normalized else round(statistics.mean(normalized), 4),  # type: ignore[arg-type]
            }
        table[task_id] = row
    return table


def markdown_ladder(table: dict[str, dict[str, dict[str, float | None]]], seeds: dict[str, Sequence[int]]) -> str:
    rungs = list(next(iter(table.values())))
    lines = [
        "| task | seeds | " + " | ".join(rungs) + " |",
        "|---|---|" + "---:|" * len(rungs),
    ]
    for task_id, row in table.items():
        task_seeds = seeds[task_id]
        cells = []
        for rung in rungs:
            value = row[rung]
            normalized = "n/a" if value["normalized"] is None else f"{value['normalized']:.3f}"
            cells.append(f"{value['score']:.3f} ({normalized})")
        lines.append(f"| {task_id} | {task_seeds[0]}-{task_seeds[-1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
