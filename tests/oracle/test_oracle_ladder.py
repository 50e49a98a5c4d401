"""The ladder: noop < random < greedy <= heuristic <= oracle on every task, in
mean grade over the shipped seeds (the oracle's plans are the shipped ones)."""

from __future__ import annotations

import pytest

from tests.support.tasks import SCENARIOS
from workflow_orchestrator.oracle.ladder import ladder_means

ARENA = ("arena/easy", "arena/medium", "arena/hard")
GENERATED = ("generated/easy", "generated/medium", "generated/hard")
TASKS = (*SCENARIOS, *ARENA, *GENERATED)
SEEDS = {task_id: list(range(20)) for task_id in TASKS}

# Where greedy falls below random: greedy retries the agent that just failed,
# whatever the failure said, so a permanent trap on its path stalls it for good.
GREEDY_BELOW_RANDOM = {"hard", "generated/medium", "generated/hard"}


@pytest.fixture(scope="module")
def ladder() -> dict[str, dict[str, dict[str, float | None]]]:
    return ladder_means(TASKS, SEEDS)


def _score(ladder: dict, task_id: str, rung: str) -> float:
    return ladder[task_id][rung]["score"]


@pytest.mark.parametrize("task_id", TASKS)
def test_noop_scores_below_random(ladder: dict, task_id: str) -> None:
    assert _score(ladder, task_id, "noop") < _score(ladder, task_id, "random")


@pytest.mark.parametrize(
    "task_id",
    [
        pytest.param(t, marks=pytest.mark.xfail(strict=True, reason="greedy retries trapped agents"))
        if t in GREEDY_BELOW_RANDOM
        else t
        for t in TASKS
    ],
)
def test_random_scores_below_greedy(ladder: dict, task_id: str) -> None:
    assert _score(ladder, task_id, "random") < _score(ladder, task_id, "greedy")


@pytest.mark.parametrize("task_id", TASKS)
def test_greedy_heuristic_oracle_in_order(ladder: dict, task_id: str) -> None:
    greedy, heuristic, oracle = (_score(ladder, task_id, rung) for rung in ("greedy", "heuristic", "oracle"))
    assert greedy <= heuristic <= oracle


@pytest.mark.parametrize("task_id", TASKS)
def test_the_oracle_earns_the_best_achievable_score_on_every_seed(ladder: dict, task_id: str) -> None:
    oracle = ladder[task_id]["oracle"]["normalized"]
    if task_id in GENERATED and oracle is None:
        pytest.skip("a best score of this generated task is only a best found (see best_scores.json)")
    assert oracle == 1.0
    for rung in ("noop", "random", "greedy", "heuristic"):
        normalized = ladder[task_id][rung]["normalized"]
        assert normalized is not None and 0.0 <= normalized <= 1.0
