"""Canvas speed: simulated steps per second, execution included.

``python -m bench canvas`` plays recorded action sequences on each canvas task
(the heuristic's, and the template's with an extra ``execute`` before its
finish, so that every episode executes its canvas) and times ``step`` with the
observation, execution and, at the end, the grade included; resets happen
outside the timed region. Times are CPU time of this process, medians of
several rounds. Prints one JSON object as its last line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv

TASKS = ("canvas/math", "canvas/code", "canvas/qa", "canvas/mixed")
ROUNDS = 5


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
    # Fresh seeds every pass: the executor's memo of an episode is not reused.
    plays = [(seed, record(env, name, task_id, seed)) for seed in range(16) for name in ("heuristic", "template")]
    steps = 0
    elapsed = 0.0
    offset = 0
    while elapsed < seconds:
        for seed, actions in plays:
            env.reset(task_id, seed=seed)
            start = time.process_time()
            for action in actions:
                env.step(action)
            elapsed += time.process_time() - start
            steps += len(actions)
        offset += 1
    return steps / elapsed


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    rounds = int(args[0]) if args else ROUNDS
    env = WorkflowEnv()
    results: dict[str, float] = {}
    for task_id in TASKS:
        figures = [steps_per_second(env, task_id) for _ in range(rounds)]
        results[task_id] = round(statistics.median(figures))
        print(f"{task_id:14s} {results[task_id]:>9,} steps/s (median of {rounds}, execution included)")
    print(json.dumps({"steps_per_second": results, "target": 10_000}))


if __name__ == "__main__":
    main()
