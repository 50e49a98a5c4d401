"""Demonstrations: oracle trajectories as (observation text -> action) pairs for
supervised warm starts, one JSON object per line::

    {"task_id": ..., "seed": ..., "step": 1, "prompt": render_text(observation),
     "action": {...}, "final_score": ..., "oracle_status": "optimal"}

The prompt is what a policy sees before the action (``render_text`` of the
observation); ``step`` counts the trajectory's actions from 1. Arena plans
skip doomed attempts with a dispatch and an immediate abort, which takes no
time and only makes sense with hindsight; those pairs are left out unless
asked for (then marked ``"hindsight_skip": true``), and the prompts of the
following steps still show the episode as it was played.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..server.core.families import render_text
from ..server.inprocess import WorkflowEnv
from ..server.tasks import TaskRegistry, default_registry
from ..server.tasks.best_scores import shipped_entry
from .solver import solve


@dataclass(frozen=True, slots=True)
class OraclePlan:
    task_id: str
    seed: int
    plan: list[dict[str, Any]]
    status: str


def oracle_plan(registry: TaskRegistry, task_id: str, seed: int, seconds: float) -> OraclePlan:
    """The shipped plan of this task and seed when it is current, else a fresh solve."""
    resolved = registry.resolve(task_id, seed=seed)
    entry = shipped_entry(resolved.spec, seed)
    if entry is not None:
        return OraclePlan(task_id, seed, entry["plan"], entry["status"])
    result = solve(resolved.compiled, resolved.seed, seconds=seconds)
    return OraclePlan(task_id, seed, result.plan, result.status)


def skip_steps(plan: Sequence[dict[str, Any]], times: Sequence[float]) -> set[int]:
    """Indices of zero-time skips: a dispatch of one subtask aborted at the same time."""
    skips: set[int] = set()
    for i in range(len(plan) - 1):
        action, following = plan[i], plan[i + 1]
        assignments = action.get("assignments") or []
        if (
            action.get("action_type") == "dispatch"
            and len(assignments) == 1
            and following.get("action_type") == "abort"
            and following.get("subtask_id") == assignments[0]["subtask_id"]
            and times[i] == times[i + 1]
        ):
            skips.update((i, i + 1))
    return skips


def demonstration_lines(
    registry: TaskRegistry, oracle: OraclePlan, keep_skips: bool = False
) -> Iterator[dict[str, Any]]:
    """Play the plan in the in-process environment and yield one record per action."""
    env = WorkflowEnv(registry=registry)
    observation = env.reset(oracle.task_id, seed=oracle.seed)
    prompts: list[str] = []
    times: list[float] = []
    for action in oracle.plan:
        prompts.append(render_text(observation))
        times.append(observation["time_used"])
        observation = env.step(action)
    final_score = env.grade()["score"]
    skips = skip_steps(oracle.plan, times)
    for i, (prompt, action) in enumerate(zip(prompts, oracle.plan, strict=True)):
        if i in skips and not keep_skips:
            continue
        record: dict[str, Any] = {
            "task_id": oracle.task_id,
            "seed": oracle.seed,
            "step": i + 1,
            "prompt": prompt,
            "action": action,
            "final_score": final_score,
            "oracle_status": oracle.status,
        }
        if i in skips:
            record["hindsight_skip"] = True
        yield record


def write_demonstrations(
    out: TextIO,
    tasks: Sequence[str],
    seeds: Sequence[int],
    count: int,
    seconds: float = 10.0,
    keep_skips: bool = False,
    registry: TaskRegistry | None = None,
) -> tuple[int, int]:
    """Write ``count`` trajectories, taking the tasks in turn over the seeds.
    Returns (trajectories, lines)."""
    registry = registry or default_registry()
    trajectories = lines = 0
    pairs = [(task_id, seed) for seed in seeds for task_id in tasks]
    for task_id, seed in pairs[:count]:
        oracle = oracle_plan(registry, task_id, seed, seconds)
        for record in demonstration_lines(registry, oracle, keep_skips):
            out.write(json.dumps(record) + "\n")
            lines += 1
        trajectories += 1
    return trajectories, lines


def export(path: Path, **options: Any) -> tuple[int, int]:
    with path.open("w") as out:
        return write_demonstrations(out, **options)
