"""The evaluation slice and its two references: the planner's score (shipped in
``tasks/planner_scores.json``) and the hindsight best (``tasks/best_scores.json``).

    uv run python -m workflow_orchestrator.oracle planner-scores --write [--hindsight]

The evaluation slice, at each task's default worker count:

* the hand-written scenarios on seeds 0-19 (the seeds whose best scores are shipped);
* every arena and generated preset on its first 20 held-out evaluation seeds
  (``EVALUATION_SEEDS``: 2000000000-2000000019), the seeds users evaluate on;
* the expert presets (``EXPERT_TASKS``) on their first 50 held-out seeds
  (2000000000-2000000049), the seeds their targets are stated on; the
  hindsight oracle does not model them, so only the planner's score ships.

``--hindsight`` also runs the oracle (``--seconds`` per seed) on the slice's
seeds that have no shipped best score and ships what it found.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..runner.run import play_policies
from ..server.tasks import TaskRegistry, default_registry
from ..server.tasks.arena import EVALUATION_SEEDS
from ..server.tasks.best_scores import load_entries, shipped_entry
from ..server.tasks.references import PLANNER_SCORES_PATH, compute_planner_score, load_planner_entries
from .catalogue import (
    ARENA_TASKS,
    EXPERT_TASKS,
    GENERATED_TASKS,
    SCENARIO_SEEDS,
    SCENARIO_TASKS,
    Target,
    compute_entries,
)
from .catalogue import merge_entries as merge_best_entries
from .catalogue import write_entries as write_best_entries

SLICE_SEEDS = 20
EXPERT_SLICE_SEEDS = 50
HELD_OUT_SEEDS = range(EVALUATION_SEEDS.start, EVALUATION_SEEDS.start + SLICE_SEEDS)
EXPERT_HELD_OUT_SEEDS = range(EVALUATION_SEEDS.start, EVALUATION_SEEDS.start + EXPERT_SLICE_SEEDS)
SLICE_TASKS = SCENARIO_TASKS + ARENA_TASKS + GENERATED_TASKS + EXPERT_TASKS
# The tasks whose slice is shipped in planner_scores.json and best_scores.json.
SHIPPED_SLICE_TASKS = SLICE_TASKS

COMMAND = "uv run python -m workflow_orchestrator.oracle planner-scores --write"
DESCRIPTION = (
    "The no-foresight planner's grade (tasks/planner.py: sampled lookahead over the public model, "
    "6 samples, planner seed 0) per task and seed of the evaluation slice, at the default worker count. "
    "An entry applies while the task's fingerprint matches."
)


def slice_seeds(task_id: str) -> list[int]:
    """The evaluation slice's seeds of a task."""
    if task_id in EXPERT_TASKS:
        return list(EXPERT_HELD_OUT_SEEDS)
    return list(SCENARIO_SEEDS if "/" not in task_id else HELD_OUT_SEEDS)


def compute_planner_entries(
    targets: Iterable[tuple[str, int]], progress: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    entries = []
    for task_id, seed in targets:
        entry = compute_planner_score(task_id, seed, None)
        entries.append(entry)
        if progress is not None:
            progress(entry)
    return entries


def merge_planner_entries(
    shipped: Sequence[dict[str, Any]], computed: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Computed entries replace the shipped ones of the same task and seed; others are kept."""
    fresh = {(e["task_id"], e["seed"]) for e in computed}
    return [e for e in shipped if (e["task_id"], e["seed"]) not in fresh] + list(computed)


def write_planner_entries(entries: Sequence[dict[str, Any]], path: Path = PLANNER_SCORES_PATH) -> None:
    ordered = sorted(entries, key=lambda e: (e["task_id"], e["seed"]))
    rows = [json.dumps(entry, separators=(",", ":")) for entry in ordered]
    lines = [
        "{",
        f' "description": {json.dumps(DESCRIPTION)},',
        f' "command": {json.dumps(COMMAND)},',
        ' "entries": [',
        ",\n".join("  " + row for row in rows),
        " ]",
        "}",
    ]
    path.write_text("\n".join(lines) + "\n")


def missing_hindsight(tasks: Sequence[str], registry: TaskRegistry, seconds: float) -> list[Target]:
    """The slice's seeds without a current shipped best score."""
    targets = []
    for task_id in tasks:
        if task_id in EXPERT_TASKS:
            continue  # the oracle does not model them
        for seed in slice_seeds(task_id):
            resolved = registry.resolve(task_id, seed)
            if shipped_entry(resolved.spec, resolved.seed) is None:
                targets.append(Target(task_id, seed, seconds))
    return targets


def ship_hindsight(targets: Sequence[Target], registry: TaskRegistry, progress: Callable[[Any], None]) -> list[str]:
    """Solve the targets and merge them into best_scores.json; the notes of the merge."""
    entries = compute_entries(targets, registry, progress=progress)
    merged, notes = merge_best_entries(load_entries(), entries)
    write_best_entries(merged)
    return notes


# ----------------------------------------------------------------- the table


def bootstrap_interval(values: Sequence[float], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the mean."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    rng = random.Random(seed)
    n = len(values)
    means = sorted(statistics.fmean(rng.choices(values, k=n)) for _ in range(draws))
    return means[int(0.025 * draws)], means[min(draws - 1, int(0.975 * draws))]


REFERENCE_POLICIES = ("random", "greedy", "heuristic", "slack")


def reference_table(
    tasks: Sequence[str], registry: TaskRegistry | None = None, policies: Sequence[str] = REFERENCE_POLICIES
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per task of the slice: each built-in policy's mean grade, the planner's and the
    hindsight best's (the shipped references), each with its 95% bootstrap interval
    and the number of seeds it covers."""
    registry = registry or default_registry()
    seeds = {task_id: slice_seeds(task_id) for task_id in tasks}
    results = play_policies(policies, tasks, seeds, registry=registry)
    scores: dict[str, dict[str, list[float]]] = {task_id: {} for task_id in tasks}
    for result in results:
        if result.score is not None:
            scores[result.task_id].setdefault(result.model, []).append(result.score)
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for task_id in tasks:
        row: dict[str, list[float]] = {name: scores[task_id].get(name, []) for name in policies}
        planner: list[float] = []
        hindsight: list[float] = []
        for seed in seeds[task_id]:
            compiled = registry.resolve(task_id, seed).compiled
            if seed in compiled.planner_scores:
                planner.append(compiled.planner_scores[seed])
            best = compiled.best_scores.get(seed)
            if best is not None:
                hindsight.append(best.score)
        row["planner"] = planner
        row["hindsight_best"] = hindsight
        table[task_id] = {
            name: {
                "mean": round(statistics.fmean(values), 4) if values else None,
                "ci95": [round(x, 4) for x in bootstrap_interval(values)] if values else None,
                "seeds": len(values),
            }
            for name, values in row.items()
        }
    return table


def markdown_reference_table(table: dict[str, dict[str, dict[str, Any]]]) -> str:
    columns = list(next(iter(table.values())))
    lines = ["| task | seeds | " + " | ".join(columns) + " |", "|---|---|" + "---:|" * len(columns)]
    for task_id, row in table.items():
        seeds = slice_seeds(task_id)
        cells = []
        for name in columns:
            cell = row[name]
            if cell["mean"] is None:
                cells.append("n/a")
            else:
                low, high = cell["ci95"]
                partial = "" if cell["seeds"] == len(seeds) else f" ({cell['seeds']} seeds)"
                cells.append(f"{cell['mean']:.3f} [{low:.3f}, {high:.3f}]{partial}")
        lines.append(f"| {task_id} | {seeds[0]}-{seeds[-1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


__all__ = [
    "COMMAND",
    "EXPERT_HELD_OUT_SEEDS",
    "HELD_OUT_SEEDS",
    "SLICE_TASKS",
    "compute_planner_entries",
    "load_planner_entries",
    "merge_planner_entries",
    "missing_hindsight",
    "reference_table",
    "ship_hindsight",
    "slice_seeds",
    "write_planner_entries",
]
