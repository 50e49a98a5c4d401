"""The planner's reference scores: shipped, cached, or computed on request.

One place resolves the planner's score of a (task, seed, worker count), for
grading (through ``CompiledTask.references``), the server and the runner
(which read it from the grade):

1. the shipped file ``planner_scores.json`` beside this module, written by
   ``python -m workflow_orchestrator.oracle planner-scores --write`` for the
   documented evaluation slice (an entry applies while the task's fingerprint
   matches, as a best score's does);
2. the memory cache, then the on-disk cache (``cache_dir``, one small JSON
   file per entry), of scores computed earlier;
3. on request (``on_request``): the planner is run in a worker process (never
   on the caller's thread or the server's event loop), one job at a time,
   within ``budget_seconds``; until it answers the status is ``pending``, and
   ``unknown`` when it ran over the budget or failed.

The default registry reads its settings from the environment:
``WORKFLOW_ORCHESTRATOR_REFERENCES`` (``on-request`` to compute missing scores; off by
default), ``WORKFLOW_ORCHESTRATOR_REFERENCE_CACHE`` (the cache directory) and
``WORKFLOW_ORCHESTRATOR_REFERENCE_BUDGET`` (seconds, 60 by default).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.compiled import CompiledTask
from ..core.model import TaskSpec
from .best_scores import by_task, entries_for, load_entries, task_fingerprint

PLANNER_SCORES_PATH = Path(__file__).with_name("planner_scores.json")
DEFAULT_BUDGET_SECONDS = 60.0

KNOWN = "known"
PENDING = "pending"
UNKNOWN = "unknown"


def load_planner_entries(path: Path = PLANNER_SCORES_PATH) -> list[dict[str, Any]]:
    """The shipped entries (an empty list when the file is missing)."""
    return load_entries(path)


@lru_cache(maxsize=1)
def _entries_by_task() -> dict[str, list[dict[str, Any]]]:
    return by_task(load_planner_entries())


def planner_scores_for(spec: TaskSpec, seed: int | None = None) -> dict[int, float]:
    """The shipped planner scores of this exact task definition, by seed (only the
    given seed's, when one is)."""
    return {entry["seed"]: entry["planner_score"] for entry in entries_for(_entries_by_task(), spec, seed)}


def compute_planner_score(
    task_id: str, seed: int, worker_count: int | None, budget_seconds: float | None = None
) -> dict[str, Any]:
    """Play the planner on one unsealed seed (in whatever process calls this): its
    score, the seconds it took, the fingerprint of the task it played."""
    from .planner import plan_episode
    from .registry import default_registry

    registry = default_registry()
    started = time.perf_counter()
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    played = plan_episode(task_id, seed, worker_count, registry=registry, deadline=deadline)
    spec = registry.resolve(task_id, seed, worker_count).compiled.spec
    return {
        "task_id": task_id,
        "seed": seed,
        "worker_count": worker_count,
        "fingerprint": task_fingerprint(spec),
        "planner_score": played["grade"]["score"],
        "seconds": round(time.perf_counter() - started, 3),
    }


def _cache_name(task_id: str, seed: int, worker_count: int | None, fingerprint: str) -> str:
    return f"{task_id.replace('/', '-')}_{seed}_{worker_count or 'default'}_{fingerprint}.json"


class References:
    """Resolves the planner's reference of a compiled task and seed (see the module docstring)."""

    def __init__(
        self,
        *,
        on_request: bool = False,
        cache_dir: Path | str | None = None,
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    ) -> None:
        self.on_request = on_request
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.budget_seconds = budget_seconds
        self._lock = threading.Lock()
        self._memory: dict[tuple[str, int, int | None, str], float] = {}
        self._failed: set[tuple[str, int, int | None, str]] = set()
        self._jobs: dict[tuple[str, int, int | None, str], Future[dict[str, Any]]] = {}
        self._pool: ProcessPoolExecutor | None = None

    @classmethod
    def from_environment(cls) -> References:
        budget = os.environ.get("WORKFLOW_ORCHESTRATOR_REFERENCE_BUDGET")
        return cls(
            on_request=os.environ.get("WORKFLOW_ORCHESTRATOR_REFERENCES", "") == "on-request",
            cache_dir=os.environ.get("WORKFLOW_ORCHESTRATOR_REFERENCE_CACHE") or None,
            budget_seconds=float(budget) if budget else DEFAULT_BUDGET_SECONDS,
        )

    def planner_status(self, compiled: CompiledTask, seed: int) -> tuple[float | None, str]:
        """The planner's score and its status; starts the computation when it may."""
        spec = compiled.spec
        worker_count = _worker_count(spec)
        key = (spec.task_id, seed, worker_count, task_fingerprint(spec))
        with self._lock:
            known = self._memory.get(key)
            if known is None:
                known = self._read_disk(key)
            if known is not None:
                compiled.planner_scores[seed] = known
                return known, KNOWN
            if key in self._failed:
                return None, UNKNOWN
            if key in self._jobs:
                return None, PENDING
            if not self.on_request:
                return None, UNKNOWN
            self._start(key)
            return None, PENDING

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the jobs started so far (tests and scripts)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            try:
                job.result(timeout)
            except Exception:  # noqa: BLE001 (recorded by _done)
                pass

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ internals

    def _start(self, key: tuple[str, int, int | None, str]) -> None:
        if self._pool is None:
            # A fresh interpreter (spawn): a fork of a threaded server is not safe.
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        task_id, seed, worker_count, _ = key
        job = self._pool.submit(compute_planner_score, task_id, seed, worker_count, self.budget_seconds)
        self._jobs[key] = job
        job.add_done_callback(lambda done: self._done(key, done))

    def _done(self, key: tuple[str, int, int | None, str], job: Future[dict[str, Any]]) -> None:
        try:
            entry = job.result()
        except Exception:  # noqa: BLE001 (over the budget, or the planner failed: unknown)
            entry = None
        with self._lock:
            self._jobs.pop(key, None)
            if entry is None or entry["fingerprint"] != key[3]:
                self._failed.add(key)
                return
            self._memory[key] = entry["planner_score"]
            self._write_disk(key, entry)

    def _read_disk(self, key: tuple[str, int, int | None, str]) -> float | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / _cache_name(*key)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        score = entry.get("planner_score") if isinstance(entry, dict) else None
        if not isinstance(score, (int, float)):
            return None
        self._memory[key] = float(score)
        return float(score)

    def _write_disk(self, key: tuple[str, int, int | None, str], entry: dict[str, Any]) -> None:
        if self.cache_dir is None:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            path = self.cache_dir / _cache_name(*key)
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps(entry, sort_keys=True))
            partial.replace(path)
        except OSError:
            pass  # the memory cache still has it


def _worker_count(spec: TaskSpec) -> int | None:
    value = spec.parameters.get("worker_count") if spec.parameters else None
    return value if isinstance(value, int) else None


def attach_planner_scores(
    compiled: CompiledTask, references: References | None, seed: int | None = None
) -> CompiledTask:
    """Give a compiled task its shipped planner scores (every seed's, or ``seed``'s for a
    task generated for one seed) and the object that resolves the others."""
    compiled.planner_scores.update(planner_scores_for(compiled.spec, seed))
    compiled.references = references
    return compiled
