"""The shaped reward cannot be farmed: a detour earns strictly less return than the
same work done without it (issue 13, item 2).

Abort-restart (each running subtask aborted once and restarted), churn (three
times) and trap-retry (a permanent failure retried on the same agent three more
times) are the heuristic with a detour. On fresh seeds (never tuned on), every
episode in which the detour was taken must earn strictly less shaped return than
the heuristic on the same seed, on at least 95% of them, on every task.
"""

from __future__ import annotations

import pytest

from tests.support.exploits import AbortRestartPolicy, ChurnPolicy, TrapRetryPolicy
from workflow_orchestrator.server.core.policies import HeuristicPolicy, Policy
from workflow_orchestrator.server.inprocess import WorkflowEnv

TASKS = (
    "easy",
    "medium",
    "hard",
    "expert",
    "generated/easy",
    "generated/medium",
    "generated/hard",
    "arena/easy",
    "arena/medium",
    "arena/hard",
)
SEEDS = range(5000, 5050)


def shaped_return(env: WorkflowEnv, policy: Policy, task_id: str, seed: int) -> float:
    policy.reset(seed)
    observation = env.reset(task_id, seed=seed)
    total = 0.0
    while not observation["done"]:
        observation = env.step(policy.act(observation))
        total += observation["reward"]
    return total


@pytest.mark.parametrize("task_id", TASKS)
def test_detours_earn_less_shaped_return_than_the_heuristic(task_id: str) -> None:
    env = WorkflowEnv()
    heuristic = {seed: shaped_return(env, HeuristicPolicy(), task_id, seed) for seed in SEEDS}
    for make in (AbortRestartPolicy, ChurnPolicy, TrapRetryPolicy):
        detoured = less = 0
        worst: list[tuple[int, float, float]] = []
        for seed in SEEDS:
            policy = make()
            earned = shaped_return(env, policy, task_id, seed)
            if policy.detours == 0:
                continue  # nothing to abort or no permanent failure: the heuristic's own episode
            detoured += 1
            if earned < heuristic[seed]:
                less += 1
            else:
                worst.append((seed, earned, heuristic[seed]))
        assert less >= 0.95 * detoured, (make.name, task_id, worst)


def test_the_detour_policies_take_their_detours() -> None:
    """Guards the test above against policies that never detour (it would pass vacuously)."""
    env = WorkflowEnv()
    for make, task_id in ((AbortRestartPolicy, "medium"), (ChurnPolicy, "arena/hard"), (TrapRetryPolicy, "hard")):
        policy = make()
        shaped_return(env, policy, task_id, 5000)
        assert policy.detours > 0, (make.name, task_id)
