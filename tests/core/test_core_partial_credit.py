"""No cheap partial credit (issue 13, item 3): on every task family, half the work
and then idling scores clearly below finishing it, and a workflow that is never
delivered (no ``synthesize`` where the task ends with one) loses the credit that
delivery earns. Fresh seeds, never tuned on."""

from __future__ import annotations

import statistics

import pytest

from tests.support.exploits import HalfThenIdlePolicy, NeverSynthesizePolicy
from workflow_orchestrator.server.core.policies import HeuristicPolicy, Policy
from workflow_orchestrator.server.inprocess import WorkflowEnv

SEEDS = range(5000, 5030)


def mean_grade(env: WorkflowEnv, make: type[Policy], task_id: str) -> float:
    scores = []
    for seed in SEEDS:
        policy = make()
        policy.reset(seed)
        observation = env.reset(task_id, seed=seed)
        while not observation["done"]:
            observation = env.step(policy.act(observation))
        scores.append(observation["grade"]["score"])
    return statistics.fmean(scores)


@pytest.mark.parametrize(
    "task_id",
    [
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
    ],
)
def test_half_the_work_then_idling_scores_far_below_finishing(task_id: str) -> None:
    env = WorkflowEnv()
    heuristic = mean_grade(env, HeuristicPolicy, task_id)
    half = mean_grade(env, HalfThenIdlePolicy, task_id)
    assert half <= heuristic - 0.3, (half, heuristic)


@pytest.mark.parametrize(
    "task_id", ["easy", "medium", "hard", "expert", "generated/easy", "generated/medium", "generated/hard"]
)
def test_never_synthesizing_loses_the_credit_of_delivery(task_id: str) -> None:
    env = WorkflowEnv()
    heuristic = mean_grade(env, HeuristicPolicy, task_id)
    undelivered = mean_grade(env, NeverSynthesizePolicy, task_id)
    assert undelivered <= heuristic - 0.25, (undelivered, heuristic)


def test_an_undelivered_grade_halves_completion_and_caps_the_gate() -> None:
    env = WorkflowEnv()
    policy = NeverSynthesizePolicy()
    observation = env.reset("medium", seed=5000)
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    grade = observation["grade"]
    assert grade["counts"]["subtasks_completed"] == grade["counts"]["subtasks_total"]
    assert grade["counts"]["delivered"] is False
    assert grade["breakdown"]["completion"] == 0.5
    assert grade["activity_gate"] == 0.5
    assert grade["breakdown"]["time_efficiency"] == 0.0
