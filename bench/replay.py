"""Replaying recorded actions in process, timed: the loop the core, arena and canvas benches share."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from workflow_orchestrator.server.inprocess import WorkflowEnv


def replay_rates(
    env: WorkflowEnv, task_id: str, plays: Sequence[tuple[int, Sequence[dict[str, Any]]]], seconds: float
) -> tuple[float, float]:
    """Replays each ``(seed, actions)`` of ``plays`` from its reset, over and over, until ``seconds`` of CPU
    time have passed: steps per second of stepping alone (resets happen outside the timed region), and of
    stepping with each episode's reset counted in. CPU time of this process: steadier than wall time for
    one thread on a shared machine."""
    clock = time.process_time
    steps = 0
    stepping = 0.0
    start = clock()
    while clock() - start < seconds:
        for seed, actions in plays:
            env.reset(task_id, seed=seed)
            begin = clock()
            for action in actions:
                env.step(action)
            stepping += clock() - begin
            steps += len(actions)
    return steps / stepping, steps / (clock() - start)
