"""A schedule of the arena model as actions on named workers.

The search's schedule says which subtasks start at which event; this module
plays it through a real episode, giving each start to the idle worker with the
fewest doomed attempts ahead and skipping those attempts (a dispatch followed
at once by an abort costs two steps and no time in the event model). The
episode it plays is the real one, so the plan it returns is one the episode
accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...server.core.compiled import CompiledTask
from ...server.core.episode import Episode
from ...server.core.families import new_episode
from ...server.core.outcomes import decide_attempt, episode_key
from ...server.core.states import IDLE

# The most doomed attempts the plan will skip for one start.
MAX_SKIPPED_ATTEMPTS = 64


def realise(compiled: CompiledTask, seed: int, schedule: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn a schedule (dispatches of ``task_ids`` and waits) into actions on named
    workers, skipping doomed attempts as the module docstring explains."""
    episode: Episode = new_episode(compiled, seed)
    seed_key = episode_key(compiled.spec.task_id, seed)
    spec = compiled.spec
    cap = spec.retry_cap
    index = compiled.dag.index
    plan: list[dict[str, Any]] = []

    def take(action: dict[str, Any]) -> None:
        plan.append(action)
        episode.step(action)

    for action in schedule:
        if episode.done:
            break
        if action["action_type"] == "dispatch":
            taken: set[int] = set()
            batch: list[dict[str, str]] = []
            for subtask_id in action["task_ids"]:
                s = index[subtask_id]
                worker, skips = _best_worker(episode, seed_key, s, taken, cap)
                assignment = {"subtask_id": subtask_id, "agent_name": spec.agents[worker].name}
                for _ in range(skips):
                    take({"action_type": "dispatch", "assignments": [dict(assignment)]})
                    take({"action_type": "abort", "subtask_id": subtask_id})
                taken.add(worker)
                batch.append(assignment)
            take({"action_type": "dispatch", "assignments": batch})
        else:
            # A skipped attempt leaves its completion in the clock's queue: a wait can stop
            # there with nothing happening, and then the schedule's wait continues.
            while True:
                before = len(episode.log)
                take({"action_type": "wait"})
                happened = any(
                    row[0] in ("completed", "failed", "capacity_changed") for row in episode.log.rows[before:]
                )
                if happened or episode.done:
                    break
    return plan


def _best_worker(episode: Episode, seed_key: int, s: int, taken: set[int], cap: int | None) -> tuple[int, int]:
    """The idle worker with the fewest doomed attempts at ``s`` ahead, and that number."""
    spec = episode.task
    subtask = spec.subtasks[s]
    best, best_skips = -1, MAX_SKIPPED_ATTEMPTS + 1
    for a, agent in enumerate(spec.agents):
        if a in taken or episode.agent_status[a] != IDLE or subtask.type not in agent.capabilities:
            continue
        first = episode.pair_attempt_count(s, a)
        for skips in range(min(best_skips, MAX_SKIPPED_ATTEMPTS + 1)):
            if decide_attempt(seed_key, subtask, agent, first + skips, episode.failure_count[s], cap) is None:
                if skips < best_skips:
                    best, best_skips = a, skips
                break
    if best < 0:
        # No succeeding attempt within reach: start the first idle worker anyway.
        best = next(a for a in range(len(spec.agents)) if a not in taken and episode.agent_status[a] == IDLE)
        best_skips = 0
    return best, best_skips
