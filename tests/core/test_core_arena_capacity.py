"""The arena's usable worker-time from prefix sums equals the sum over every capacity step."""

from __future__ import annotations

import random

from workflow_orchestrator import WorkflowEnv
from workflow_orchestrator.server.core.arena import ArenaTables
from workflow_orchestrator.server.core.states import RUNNING
from workflow_orchestrator.server.tasks import default_registry


def reference(steps: tuple[tuple[int, int], ...], start: int, end: int) -> int:
    total = 0
    for k, (at, capacity) in enumerate(steps):
        until = steps[k + 1][0] if k + 1 < len(steps) else end
        lo, hi = max(at, start), min(until, end)
        if hi > lo:
            total += capacity * (hi - lo)
    return total


def test_capacity_time_equals_the_sum_over_steps() -> None:
    registry = default_registry()
    rng = random.Random(5)
    checked = 0
    for task_id in ("arena/easy", "arena/medium", "arena/hard"):
        for seed in range(6):
            tables = registry.resolve(task_id, seed=seed).compiled.tables
            assert isinstance(tables, ArenaTables)
            steps = tables.capacity_steps
            horizon = (steps[-1][0] if steps else 0) + 30
            for _ in range(200):
                start = rng.randint(-3, horizon)
                end = rng.randint(-3, horizon)
                assert tables.capacity_time(start, end) == reference(steps, start, end)
                checked += 1
    assert checked == 3600


def test_the_running_subtasks_are_those_in_progress() -> None:
    """What busy_worker_time sums over (the running map) is every subtask in progress."""
    env = WorkflowEnv()
    for seed in range(4):
        observation = env.reset("arena/hard", seed=seed)
        while not observation["done"]:
            observation = env.step(observation["legal_actions"][0])
            episode = env.episode
            assert sorted(episode.running) == [s for s, st in enumerate(episode.status) if st == RUNNING]
