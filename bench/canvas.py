"""Canvas speed: simulated steps per second, execution included.

``python -m bench canvas`` plays recorded action sequences on each canvas task
(the heuristic's, and the template's with an extra ``execute`` before its
finish, so that every episode executes its canvas) and times ``step`` with the
observation, execution and, at the end, the grade included; resets happen
outside the timed region. Times are CPU time of this process, medians of
several rounds. Then the exact oracle (oracle/canvas.py) on the first seeds of
each preset (``python -m bench canvas [rounds] [oracle seeds]``, 2 by default):
its CPU time per instance (the units, the bound's tables and the search, within
its 10 s budget), median and max, and how many it proved optimal. Prints one
JSON object as its last line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from bench.replay import replay_rates
from workflow_orchestrator.oracle.canvas import oracle_for
from workflow_orchestrator.oracle.solver import OPTIMAL
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry

TASKS = ("canvas/math", "canvas/code", "canvas/qa", "canvas/mixed")
ROUNDS = 5
ORACLE_SEEDS = 2
ORACLE_SECONDS = 10.0


def record(env: WorkflowEnv, name: str, task_id: str, seed: int) -> list[dict[str, Any]]:
    policy = make_policy(name, seed)
    observation = env.reset(task_id, seed=seed)
    actions = []
    while not observation["done"]:
        action = policy.act(observation)
        if action["action_type"] == "finish":
            actions.append({"action_type": "execute"})
            observation = env.step(actions[-1])
        actions.append(action)
        observation = env.step(action)
    return actions


def steps_per_second(env: WorkflowEnv, task_id: str, seconds: float = 0.4) -> float:
    """Steps only (resets outside the timed region), the heuristic's and the template's plays of 16 seeds."""
    plays = [(seed, record(env, name, task_id, seed)) for seed in range(16) for name in ("heuristic", "template")]
    return replay_rates(env, task_id, plays, seconds)[0]


def oracle_times(seeds: int) -> dict[str, Any]:
    """The oracle's CPU seconds per instance on the first ``seeds`` seeds of every preset."""
    registry = default_registry()
    times: list[float] = []
    proven = 0
    for task_id in TASKS:
        for seed in range(seeds):
            compiled = registry.resolve(task_id, seed=seed).compiled
            start = time.process_time()
            result = oracle_for(compiled, seed).solve(ORACLE_SECONDS)
            times.append(time.process_time() - start)
            proven += result.status == OPTIMAL
            print(
                f"  oracle {task_id:14s} seed {seed}: {times[-1]:6.2f} s  {result.status:10s} "
                f"best {result.best_score:.4f} bound {result.upper_bound:.4f}  {result.dsl}"
            )
    return {
        "instances": len(times),
        "median_s": round(statistics.median(times), 2),
        "max_s": round(max(times), 2),
        "proven": proven,
        "budget_s": ORACLE_SECONDS,
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    rounds = int(args[0]) if args else ROUNDS
    seeds = int(args[1]) if len(args) > 1 else ORACLE_SEEDS
    env = WorkflowEnv()
    results: dict[str, float] = {}
    for task_id in TASKS:
        figures = [steps_per_second(env, task_id) for _ in range(rounds)]
        results[task_id] = round(statistics.median(figures))
        print(f"{task_id:14s} {results[task_id]:>9,} steps/s (median of {rounds}, execution included)")
    oracle = oracle_times(seeds)
    print(
        f"oracle: {oracle['instances']} instances, CPU s per instance median {oracle['median_s']}, "
        f"max {oracle['max_s']} (budget {ORACLE_SECONDS:.0f} s); {oracle['proven']} proved optimal"
    )
    print(json.dumps({"steps_per_second": results, "target": 10_000, "oracle": oracle}))


if __name__ == "__main__":
    main()
