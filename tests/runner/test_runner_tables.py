"""The runner's policy tables: play_policies plays what an episode loop by hand plays,
and mean_table averages it per task and player."""

from __future__ import annotations

import statistics

import pytest

from workflow_orchestrator.runner.episodes import EpisodeResult
from workflow_orchestrator.runner.errors import EpisodeFailure
from workflow_orchestrator.runner.reports import mean_table
from workflow_orchestrator.runner.run import play_policies
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv


def _by_hand(policy: str, task_id: str, seed: int) -> tuple[dict, list[float]]:
    env = WorkflowEnv()
    policy_object = make_policy(policy, seed)
    observation = env.reset(task_id, seed=seed)
    rewards = []
    while not observation["done"]:
        observation = env.step(policy_object.act(observation))
        rewards.append(observation["reward"])
    return env.grade(), rewards


def test_play_policies_plays_each_policy_task_and_seed_as_a_loop_by_hand() -> None:
    seeds = {"easy": [0, 1], "arena/easy": [3]}
    results = play_policies(["random", "greedy"], ["easy", "arena/easy"], seeds)
    assert [(r.model, r.task_id, r.seed) for r in results] == [
        (policy, task_id, seed) for policy in ("random", "greedy") for task_id in seeds for seed in seeds[task_id]
    ]
    for result in results:
        grade, rewards = _by_hand(result.model, result.task_id, result.seed or 0)
        assert result.error is None and result.score == grade["score"]
        assert result.normalized_score == grade["normalized_score"]
        assert result.rewards == rewards


def test_play_policies_raises_when_an_episode_fails() -> None:
    with pytest.raises(EpisodeFailure, match="no-such-task"):
        play_policies(["noop"], ["no-such-task"], {"no-such-task": [0]})


def test_mean_table_means_per_task_and_player_rounded() -> None:
    def result(model: str, task_id: str, score: float, normalized: float | None) -> EpisodeResult:
        return EpisodeResult(model=model, task_id=task_id, seed=0, score=score, normalized_score=normalized)

    results = [
        result("a", "t", 0.1, 0.2),
        result("a", "t", 0.2, 0.4),
        result("b", "t", 0.5, None),
        result("b", "t", 0.7, 0.9),
        result("a", "u", 1 / 3, 1.0),
    ]
    table = mean_table(results, 3)
    assert list(table) == ["t", "u"] and list(table["t"]) == ["a", "b"]
    assert table["t"]["a"] == {"score": round(statistics.mean([0.1, 0.2]), 3), "normalized": 0.3}
    assert table["t"]["b"] == {"score": 0.6, "normalized": None}  # not every episode has a best score
    assert table["u"]["a"] == {"score": 0.333, "normalized": 1.0}
    with pytest.raises(ValueError, match="has no grade"):
        mean_table([EpisodeResult(model="a", task_id="t", seed=0)], 3)
