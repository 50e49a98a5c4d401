"""OpenEnv's task API over the task registry: splits of (task, seed) pairs.

openenv serves ``GET /{env_name}/splits`` and ``POST /{env_name}/tasks``,
``/num_tasks``, ``/task`` and ``/task_range`` when the environment has the
methods of its ``TaskProvider`` protocol; harnesses (e.g. ``verifiers``'
OpenEnv taskset) read them to build their datasets. Here a task spec is what
``reset`` takes: ``{"task_id": ..., "seed": ...}``.

Two splits, the same for every task:

- ``train``: seeds ``0 … 1,999,999,999`` (``tasks.arena.TRAINING_SEEDS``);
- ``test``: the held-out seeds ``2,000,000,000 … 2,000,099,999``
  (``EVALUATION_SEEDS``), for evaluation only.

Index ``i`` of a split is task ``i mod T`` (tasks in the registry's order, T
of them) at the split's ``(i div T)``-th seed, so any prefix of a split covers
every task evenly. ``list_tasks`` returns a bounded preview (the first
``PREVIEW`` specs); ``num_tasks`` is the true size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS, TRAINING_SEEDS
from workflow_orchestrator.server.tasks.registry import TaskRegistry

PREVIEW = 1000


@dataclass(frozen=True, slots=True)
class Split:
    name: str
    type: str
    seeds: range
    description: str

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "first_seed": self.seeds.start,
            "last_seed": self.seeds.stop - 1,
            "description": self.description,
        }


SPLITS = {
    "train": Split("train", "train", TRAINING_SEEDS, "every task at the training seeds"),
    "test": Split("test", "test", EVALUATION_SEEDS, "every task at the held-out seeds: evaluate here, never train"),
}


class UnknownSplitError(ValueError):
    def __init__(self, name: object) -> None:
        super().__init__(f"unknown split {name!r}; known: {', '.join(SPLITS)}")


class TaskCatalogue:
    """The splits of one registry (its tasks are fixed when it is built)."""

    def __init__(self, registry: TaskRegistry) -> None:
        self._task_ids = tuple(registry.task_ids())

    def splits(self) -> list[dict[str, Any]]:
        return [split.describe() for split in SPLITS.values()]

    def size(self, split: str) -> int:
        return len(self._task_ids) * len(_split(split).seeds)

    def task(self, split: str, index: int) -> dict[str, Any]:
        chosen = _split(split)
        size = len(self._task_ids) * len(chosen.seeds)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise IndexError(f"index {index!r} outside 0..{size - 1} of split {split!r}")
        tasks = len(self._task_ids)
        return {
            "task_id": self._task_ids[index % tasks],
            "seed": chosen.seeds[index // tasks],
            "split": chosen.name,
            "index": index,
        }

    def task_range(self, split: str, start: int | None = None, stop: int | None = None) -> list[dict[str, Any]]:
        first, last, _ = slice(start, stop).indices(self.size(split))
        if last - first > PREVIEW:
            raise IndexError(f"a range holds at most {PREVIEW} tasks; ask for {first}..{first + PREVIEW} and on")
        return [self.task(split, index) for index in range(first, last)]

    def preview(self, split: str) -> list[dict[str, Any]]:
        return self.task_range(split, 0, min(PREVIEW, self.size(split)))


def _split(name: object) -> Split:
    if not isinstance(name, str) or name not in SPLITS:
        raise UnknownSplitError(name)
    return SPLITS[name]
