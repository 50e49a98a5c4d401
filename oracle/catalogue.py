"""The catalogue of best achievable scores: which tasks and seeds, computed how,
written where (``tasks/best_scores.json``), and checked against replays."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..server.core.compiled import CompiledTask
from ..server.tasks import TaskRegistry, default_registry
from ..server.tasks.best_scores import BEST_SCORES_PATH, load_entries, shipped_entry, task_fingerprint
from .solver import OPTIMAL, OracleResult, replay, solve

SCENARIO_TASKS = ("easy", "medium", "hard", "expert")
ARENA_TASKS = ("arena/easy", "arena/medium", "arena/hard")
GENERATED_TASKS = ("generated/easy", "generated/medium", "generated/hard")
# Presets with hidden reliabilities and workers that differ: the hindsight oracle does not
# model them; their slice ships the planner's score only.
EXPERT_TASKS = ("arena/expert", "generated/expert")
CANVAS_TASKS = ("canvas/math", "canvas/code", "canvas/qa", "canvas/mixed")
SCENARIO_SEEDS = range(0, 20)
ARENA_SEEDS = range(0, 50)
# Seconds the search may spend on one task and seed.
SCENARIO_SECONDS = 60.0
GENERATED_SECONDS = 10.0
CANVAS_SECONDS = 8.0  # CPU seconds of the canvas oracle's search (oracle/canvas.py)

COMMAND = "uv run python -m workflow_orchestrator.oracle best-scores --write"


@dataclass(frozen=True, slots=True)
class Target:
    task_id: str
    seed: int
    seconds: float


def default_targets(registry: TaskRegistry | None = None) -> list[Target]:
    """The shipped set: the scenarios on seeds 0-19 (their canonical seeds among
    them), every arena preset on seeds 0-49, every other generated task (the
    canvas presets among them) on seeds 0-19."""
    registry = registry or default_registry()
    targets: list[Target] = []
    for task_id in registry.task_ids():
        if "/" not in task_id:  # a scenario file, shipped or new
            canonical = registry.resolve(task_id).seed
            seeds = sorted(set(SCENARIO_SEEDS) | {canonical})
            targets.extend(Target(task_id, seed, SCENARIO_SECONDS) for seed in seeds)
        elif task_id in ARENA_TASKS:
            targets.extend(Target(task_id, seed, GENERATED_SECONDS) for seed in ARENA_SEEDS)
        elif task_id in CANVAS_TASKS:
            targets.extend(Target(task_id, seed, CANVAS_SECONDS) for seed in SCENARIO_SEEDS)
        elif "/" in task_id:
            targets.extend(Target(task_id, seed, SCENARIO_SECONDS) for seed in SCENARIO_SEEDS)
    return targets


def best_achievable(
    task_id: str,
    seed: int | None = None,
    worker_count: int | None = None,
    seconds: float = SCENARIO_SECONDS,
    registry: TaskRegistry | None = None,
) -> OracleResult:
    """The best achievable grade of any task and seed: the shipped result when it
    is current, else a search of at most ``seconds`` (never on the grading path)."""
    registry = registry or default_registry()
    resolved = registry.resolve(task_id, seed=seed, worker_count=worker_count)
    entry = shipped_entry(resolved.spec, resolved.seed)
    if entry is not None:
        return OracleResult(
            task_id=task_id,
            seed=resolved.seed,
            status=entry["status"],
            best_score=entry["best_score"],
            upper_bound=entry["upper_bound"],
            plan=entry["plan"],
            seconds=entry["seconds"],
            nodes=entry["nodes"],
            method="shipped",
        )
    return solve(resolved.compiled, resolved.seed, seconds=seconds)


def entry_of(result: OracleResult, compiled: CompiledTask) -> dict[str, Any]:
    return {
        "task_id": result.task_id,
        "seed": result.seed,
        "fingerprint": task_fingerprint(compiled.spec),
        "best_score": result.best_score,
        "status": result.status,
        "upper_bound": result.upper_bound,
        "gap": result.gap,
        "seconds": round(result.seconds, 3),
        "nodes": result.nodes,
        "plan": result.plan,
    }


def compute_entries(
    targets: Iterable[Target],
    registry: TaskRegistry | None = None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Solve every target; ``progress`` (a callable) hears about each result."""
    registry = registry or default_registry()
    entries = []
    for target in targets:
        resolved = registry.resolve(target.task_id, seed=target.seed)
        result = solve(resolved.compiled, resolved.seed, seconds=target.seconds)
        entries.append(entry_of(result, resolved.compiled))
        if progress is not None:
            progress(result)
    return entries


DESCRIPTION = (
    "Best achievable grade per task and seed, found by the oracle with hindsight "
    "(status 'optimal' when proven, else 'best_found' with an upper bound), with the "
    "plan that earns it. An entry applies while the task's fingerprint matches."
)


def _rank(entry: dict[str, Any]) -> tuple[bool, float, float]:
    # Proven beats found; then the higher score; then the tighter bound.
    return (entry["status"] == OPTIMAL, entry["best_score"], -entry["upper_bound"])


def replays_to_its_score(entry: dict[str, Any], registry: TaskRegistry | None = None) -> bool:
    """Whether an entry's plan, replayed under today's rules, still earns its recorded score."""
    resolved = (registry or default_registry()).resolve(entry["task_id"], seed=entry["seed"])
    return bool(replay(resolved.compiled, resolved.seed, entry["plan"])[0]["score"] == entry["best_score"])


def merge_entries(
    shipped: Sequence[dict[str, Any]],
    computed: Sequence[dict[str, Any]],
    replays: Callable[[dict[str, Any]], bool] = replays_to_its_score,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The catalogue after a run: every computed entry, except where the shipped
    entry of that task and seed is for the same task definition (fingerprint),
    at least as good (proven over found, then a higher score, then a tighter
    bound) and still earns its score when replayed (``replays``: a rule change
    may have voided it), which is kept; and every shipped entry of other tasks
    and seeds. Returns the entries and a line per kept or replaced entry saying why."""
    old = {(e["task_id"], e["seed"]): e for e in shipped}
    merged: list[dict[str, Any]] = []
    notes: list[str] = []
    for entry in computed:
        key = (entry["task_id"], entry["seed"])
        previous = old.pop(key, None)
        if previous is not None and previous["fingerprint"] == entry["fingerprint"]:
            if _rank(previous) >= _rank(entry):
                if replays(previous):
                    merged.append(previous)
                    if _rank(previous) > _rank(entry):
                        notes.append(
                            f"kept {key[0]} seed {key[1]}: shipped {previous['status']} "
                            f"{previous['best_score']:.4f} over this run's {entry['status']} {entry['best_score']:.4f}"
                        )
                    continue
                notes.append(
                    f"replaced {key[0]} seed {key[1]}: the shipped plan no longer earns its "
                    f"{previous['best_score']:.4f}; this run's {entry['status']} {entry['best_score']:.4f}"
                )
        merged.append(entry)
    return list(old.values()) + merged, notes


def write_entries(entries: Sequence[dict[str, Any]], path: Path = BEST_SCORES_PATH) -> None:
    """Write the catalogue, one entry per line (small, and readable diffs)."""
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


def check_entries(entries: Sequence[dict[str, Any]] | None = None, registry: TaskRegistry | None = None) -> list[str]:
    """Problems with the shipped entries: a task changed since (fingerprint), or a
    plan that no longer earns its recorded score when replayed."""
    registry = registry or default_registry()
    problems = []
    for entry in load_entries() if entries is None else entries:
        resolved = registry.resolve(entry["task_id"], seed=entry["seed"])
        where = f"{entry['task_id']} seed {entry['seed']}"
        if task_fingerprint(resolved.spec) != entry["fingerprint"]:
            problems.append(f"{where}: the task changed since its best score was computed")
            continue
        score = replay(resolved.compiled, resolved.seed, entry["plan"])[0]["score"]
        if score != entry["best_score"]:
            problems.append(f"{where}: the plan now scores {score}, recorded {entry['best_score']}")
    return problems


def summary_table(entries: Sequence[dict[str, Any]]) -> str:
    """Per task: seeds proven optimal, the largest gap, mean best score, solve times."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_task.setdefault(entry["task_id"], []).append(entry)
    lines = [
        "| task | seeds | proven optimal | largest gap | mean best score | mean s | max s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for task_id, rows in by_task.items():
        proven = sum(1 for r in rows if r["status"] == OPTIMAL)
        lines.append(
            f"| {task_id} | {len(rows)} | {proven} | {max(r['gap'] for r in rows):.4f} | "
            f"{statistics.mean(r['best_score'] for r in rows):.4f} | "
            f"{statistics.mean(r['seconds'] for r in rows):.2f} | {max(r['seconds'] for r in rows):.2f} |"
        )
    return "\n".join(lines)
