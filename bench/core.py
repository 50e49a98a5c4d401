"""Core speed: steps per second with the heuristic policy's actions (observation
and, at the end of an episode, the grade included) and microseconds per reset
(observation included), per scenario.

``steps_per_second`` counts the time spent in ``step``; resets are timed on their
own as ``reset_us`` (the rate with each episode's reset counted in is printed on
the line of each task as well). Times are CPU time of this process: the machine
is shared, and CPU time is steadier than wall time for one thread. The policy's
own thinking is recorded beforehand and not timed. Prints one JSON object as its
last line."""

from __future__ import annotations

import json
import statistics
import time

from bench.replay import replay_rates
from workflow_orchestrator.evaluation import record_policy_actions
from workflow_orchestrator.server.inprocess import WorkflowEnv

TASKS = ("easy", "medium", "hard", "expert")


def steps_per_second(env: WorkflowEnv, task_id: str, seconds: float = 1.0) -> tuple[float, float]:
    """Steps per second of stepping, and of stepping with each episode's reset counted in."""
    plays = [(seed, record_policy_actions(env, "heuristic", task_id, seed)) for seed in range(8)]
    return replay_rates(env, task_id, plays, seconds)


def reset_microseconds(env: WorkflowEnv, task_id: str, count: int = 2000) -> float:
    start = time.process_time()
    for seed in range(count):
        env.reset(task_id, seed=seed)
    return (time.process_time() - start) / count * 1e6


def main(argv: list[str] | None = None) -> None:
    env = WorkflowEnv()
    rounds = 5
    sps: dict[str, float] = {}
    reset_us: dict[str, float] = {}
    for task_id in TASKS:
        # Medians of several rounds: the machine is shared and noisy.
        rates = [steps_per_second(env, task_id, 0.4) for _ in range(rounds)]
        sps[task_id] = round(statistics.median(rate for rate, _ in rates))
        with_resets = round(statistics.median(rate for _, rate in rates))
        reset_us[task_id] = round(statistics.median(reset_microseconds(env, task_id) for _ in range(rounds)), 2)
        print(f"{task_id}: {sps[task_id]} steps/s ({with_resets} with resets), {reset_us[task_id]} us/reset")
    print(json.dumps({"steps_per_second": sps, "reset_us": reset_us}))


if __name__ == "__main__":
    main()
