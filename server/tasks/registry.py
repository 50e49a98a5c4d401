"""The task registry: scenario files, and families of generated tasks.

Scenario tasks are TOML files in ``scenarios/``; a new scenario is a new file.
Generated families (the arena, generated scenarios) register a factory under a
prefix, so ``arena/hard`` with a seed and a worker count names one instance.
"""

from __future__ import annotations

import hashlib
import threading
import tomllib
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from ..core.compiled import CompiledTask
from ..core.dag import WorkflowDefinitionError
from ..core.families import compile_task
from ..core.model import TaskSpec
from .arena import ArenaFamily
from .best_scores import attach_best_scores
from .canvas import CanvasTaskFamily
from .generated import GeneratedFamily
from .references import References, attach_planner_scores
from .schema import task_from_file
from .variation import variation_of, vary_scenario

SCENARIO_DIR = Path(__file__).with_name("scenarios")

MAX_SEED = 2**31 - 1
GENERATED_CACHE_SIZE = 64


class UnknownTaskError(KeyError):
    def __init__(self, task_id: str, known: list[str]) -> None:
        super().__init__(task_id)
        self.task_id = task_id
        self.known = known

    def __str__(self) -> str:
        return f"unknown task_id {self.task_id!r}; known tasks: {', '.join(self.known)}"


class TaskFamily(Protocol):
    """A generator of tasks named ``<prefix>/<variant>``."""

    prefix: str

    def variants(self) -> list[str]: ...

    def describe(self, variant: str) -> dict[str, Any]: ...

    def build(self, variant: str, seed: int, worker_count: int | None) -> TaskSpec:
        """The task of a variant and seed. A family that draws hidden facts
        (traps, dropouts, outages) also takes ``secret=`` (bytes): keyed by it,
        those draws are sealed (``core.outcomes.sealed_seed``); it is passed only
        when there is one."""
        ...


@dataclass(frozen=True, slots=True)
class ResolvedTask:
    compiled: CompiledTask
    seed: int

    @property
    def spec(self) -> TaskSpec:
        return self.compiled.spec


def load_scenario_file(path: Path) -> TaskSpec:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowDefinitionError(str(path), [f"not valid TOML: {exc}"]) from None
    return task_from_file(data, path)


class TaskRegistry:
    def __init__(self, references: References | None = None) -> None:
        # What resolves the planner's reference of a seed not shipped (references.py).
        self.references = references
        self._scenarios: dict[str, CompiledTask] = {}
        self._families: dict[str, TaskFamily] = {}
        self._generated: OrderedDict[tuple[str, str, int, int | None, bytes | None], CompiledTask] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -------------------------------------------------------------- building

    def add_scenario(self, spec: TaskSpec) -> None:
        if spec.task_id in self._scenarios:
            raise ValueError(f"duplicate task id {spec.task_id!r}")
        self._scenarios[spec.task_id] = attach_planner_scores(attach_best_scores(compile_task(spec)), self.references)

    def load_directory(self, directory: Path) -> None:
        for path in sorted(directory.glob("*.toml")):
            self.add_scenario(load_scenario_file(path))

    def add_family(self, family: TaskFamily) -> None:
        self._families[family.prefix] = family

    # -------------------------------------------------------------- queries

    def task_ids(self) -> list[str]:
        ids = list(self._scenarios)
        for prefix, family in self._families.items():
            ids.extend(f"{prefix}/{variant}" for variant in family.variants())
        return ids

    def list_tasks(self) -> list[dict[str, Any]]:
        out = []
        for compiled in self._scenarios.values():
            out.append(describe_scenario(compiled))
        for family in self._families.values():
            for variant in family.variants():
                out.append(family.describe(variant))
        return out

    def resolve(
        self, task_id: str, seed: int | None = None, worker_count: int | None = None, secret: bytes | None = None
    ) -> ResolvedTask:
        """The task to play and the seed to play it with; with an outcome
        ``secret``, a generated task's hidden facts are drawn under it.

        Raises :class:`UnknownTaskError`, or ``ValueError`` for parameters
        the task does not accept.
        """
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
        if task_id in self._scenarios:
            if worker_count is not None:
                raise ValueError(f"task {task_id!r} has named agents; worker_count applies to generated tasks only")
            compiled = self._scenarios[task_id]
            if seed is not None and seed != compiled.spec.canonical_seed and variation_of(compiled.spec):
                compiled = self._compile_variant(compiled.spec, seed)
            return ResolvedTask(compiled, compiled.spec.canonical_seed if seed is None else seed)
        prefix, _, variant = task_id.partition("/")
        family = self._families.get(prefix)
        if family is None or variant not in family.variants():
            raise UnknownTaskError(task_id, self.task_ids())
        compiled = self._compile_generated(family, variant, 0 if seed is None else seed, worker_count, secret)
        return ResolvedTask(compiled, compiled.spec.canonical_seed if seed is None else seed)

    def _compile_variant(self, spec: TaskSpec, seed: int) -> CompiledTask:
        """A scenario's seeded variant (``variation.py``), kept in the generated tasks' cache."""
        key = ("scenario", spec.task_id, seed, None, None)
        with self._cache_lock:
            compiled = self._generated.get(key)
            if compiled is not None:
                self._generated.move_to_end(key)
                return compiled
        compiled = attach_best_scores(compile_task(vary_scenario(spec, seed)), seed)
        attach_planner_scores(compiled, self.references, seed)
        with self._cache_lock:
            self._generated[key] = compiled
            if len(self._generated) > GENERATED_CACHE_SIZE:
                self._generated.popitem(last=False)
        return compiled

    def _compile_generated(
        self, family: TaskFamily, variant: str, seed: int, worker_count: int | None, secret: bytes | None = None
    ) -> CompiledTask:
        """Generated tasks are built once per (task, seed, worker count, seal) and kept in a
        small LRU cache: evaluation loops replay the same seeds, training rarely does."""
        # The cache is keyed by a digest of the secret, not by the secret itself.
        seal = None if secret is None else hashlib.blake2b(secret, digest_size=16).digest()
        key = (family.prefix, variant, seed, worker_count, seal)
        cache = self._generated
        # Under the lock: the server's WebSocket batches resolve tasks on worker threads.
        with self._cache_lock:
            compiled = cache.get(key)
            if compiled is not None:
                cache.move_to_end(key)
                return compiled
        if secret is None:
            spec = family.build(variant, seed, worker_count)
            compiled = attach_best_scores(compile_task(spec), spec.canonical_seed)
            # The planner plays workflows of named agents: a family without them has no planner reference.
            references = self.references if getattr(compiled.family, "planner_reference", True) else None
            attach_planner_scores(compiled, references, spec.canonical_seed)
        else:
            # Best scores are proven on unsealed tasks: a sealed one has none.
            compiled = compile_task(family.build(variant, seed, worker_count, secret=secret))  # type: ignore[call-arg]
        with self._cache_lock:
            cache[key] = compiled
            if len(cache) > GENERATED_CACHE_SIZE:
                cache.popitem(last=False)
        return compiled


def describe_scenario(compiled: CompiledTask) -> dict[str, Any]:
    spec, dag = compiled.spec, compiled.dag
    return {
        "task_id": spec.task_id,
        "title": spec.title,
        "family": spec.family,
        "difficulty": spec.difficulty,
        "time_model": spec.time_model.value,
        "description": spec.description,
        "parameters": {
            "subtasks": len(spec.subtasks),
            "agents": len(spec.agents),
            "time_limit": spec.time_limit,
            "capacity": spec.capacity,
            "budget": spec.budget,
            "deadlines": {s.id: s.deadline for s in spec.subtasks if s.deadline is not None},
            "critical_path_length": dag.critical_path_length,
            "canonical_seed": spec.canonical_seed,
            "grade_weights": dict(spec.grade_weights),
        },
    }


def builtin_families() -> list[TaskFamily]:
    """The generated families every default registry offers."""
    return [ArenaFamily(), GeneratedFamily(), CanvasTaskFamily()]


@lru_cache(maxsize=1)
def default_registry() -> TaskRegistry:
    """The registry the server and the in-process API use (built once)."""
    registry = TaskRegistry(References.from_environment())
    registry.load_directory(SCENARIO_DIR)
    for family in builtin_families():
        registry.add_family(family)
    return registry
