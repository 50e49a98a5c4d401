"""The best achievable grades, precomputed by the oracle and shipped with the tasks.

``best_scores.json`` beside this module is written by
``python -m workflow_orchestrator.oracle best-scores --write`` (never
by hand). Each entry holds a task id, a seed, the task's fingerprint, the
oracle's result (``optimal``, or ``best_found`` with an upper bound) and the
plan that earns it. An entry applies only while the task is unchanged: its
fingerprint is a hash of the whole task definition, so an edited scenario
file or generator makes its entries unknown until they are recomputed.

The task registry attaches the entries of each task it builds to the
compiled task (``CompiledTask.best_scores``); the grade reads them from there
and never runs a solver.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.compiled import CompiledTask
from ..core.grading import BestScore
from ..core.model import TaskSpec

BEST_SCORES_PATH = Path(__file__).with_name("best_scores.json")


def task_fingerprint(spec: TaskSpec) -> str:
    """A stable hash of everything in a task definition."""
    text = json.dumps(_canonical(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda item: str(item[0]))}
    return value


def load_entries(path: Path = BEST_SCORES_PATH) -> list[dict[str, Any]]:
    """The shipped entries of a reference file (an empty list when the file is missing)."""
    if not path.exists():
        return []
    return list(json.loads(path.read_text())["entries"])


def by_task(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Entries grouped by their task id, in file order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        grouped.setdefault(entry["task_id"], []).append(entry)
    return grouped


def entries_for(
    grouped: Mapping[str, list[dict[str, Any]]], spec: TaskSpec, seed: int | None = None
) -> list[dict[str, Any]]:
    """The entries of this exact task definition (only the given seed's, when one is). A generated
    task is built for one seed: only that seed's entry can match, and the fingerprint is computed
    only when some entry could."""
    entries = grouped.get(spec.task_id, [])
    if seed is not None:
        entries = [entry for entry in entries if entry["seed"] == seed]
    if not entries:
        return []
    fingerprint = task_fingerprint(spec)
    return [entry for entry in entries if entry["fingerprint"] == fingerprint]


@lru_cache(maxsize=1)
def _entries_by_task() -> dict[str, list[dict[str, Any]]]:
    return by_task(load_entries())


def shipped_entry(spec: TaskSpec, seed: int) -> dict[str, Any] | None:
    """The shipped entry (with its plan) of this exact task definition and seed."""
    matching = entries_for(_entries_by_task(), spec, seed)
    return matching[0] if matching else None


def best_scores_for(spec: TaskSpec, seed: int | None = None) -> dict[int, BestScore]:
    """The shipped best scores of this exact task definition, by seed (only the
    given seed's, when one is)."""
    return {
        entry["seed"]: BestScore(entry["best_score"], entry["status"], entry["upper_bound"])
        for entry in entries_for(_entries_by_task(), spec, seed)
    }


def attach_best_scores(compiled: CompiledTask, seed: int | None = None) -> CompiledTask:
    """Give a compiled task its shipped best scores (see ``grade_episode``): every
    seed's, or only ``seed``'s for a task generated for that seed."""
    compiled.best_scores.update(best_scores_for(compiled.spec, seed))
    return compiled
