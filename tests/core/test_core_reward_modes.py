"""Reward modes chosen at reset (issue 13, item 2): ``shaped`` (the default table),
``grade`` (dense, potential-based: the rewards sum to the grade) and ``sparse``
(the grade at the last step)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.test_core_golden import CASES
from tests.support.exploits import PerturbedHeuristicPolicy
from workflow_orchestrator.server.core.policies import HeuristicPolicy, RandomPolicy
from workflow_orchestrator.server.core.rewards import SCENARIO_CHANNELS, ScenarioRewards
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.vocabulary import REWARD_MODES


def play(
    env: WorkflowEnv, task_id: str, seed: int, actions: Any, reward_mode: str
) -> tuple[list[float], dict[str, Any]]:
    observation = env.reset(task_id, seed=seed, reward_mode=reward_mode)
    rewards = []
    for action in actions:
        observation = env.step(action)
        rewards.append(observation["reward"])
    return rewards, observation


def play_policy(env: WorkflowEnv, policy: Any, task_id: str, seed: int, reward_mode: str) -> tuple[float, float]:
    observation = env.reset(task_id, seed=seed, reward_mode=reward_mode)
    total = 0.0
    while not observation["done"]:
        observation = env.step(policy.act(observation))
        total += observation["reward"]
    return total, observation["grade"]["score"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_grade_mode_rewards_sum_to_the_grade_on_every_golden_episode(name: str) -> None:
    task_id, seed, actions = CASES[name]
    rewards, last = play(WorkflowEnv(), task_id, seed, actions, "grade")
    assert last["done"]
    assert abs(sum(rewards) - last["grade"]["score"]) <= 1e-9
    assert list(last["reward_breakdown"]) == ["grade"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_reward_mode_changes_rewards_only(name: str) -> None:
    """Same actions, same events and grade in every mode; shaped is the default."""
    task_id, seed, actions = CASES[name]
    env = WorkflowEnv()
    shaped, last = play(env, task_id, seed, actions, "shaped")
    events = env.episode.log.records
    env.reset(task_id, seed=seed)
    assert [env.step(action)["reward"] for action in actions] == shaped
    for mode in ("grade", "sparse"):
        _, other = play(env, task_id, seed, actions, mode)
        assert env.episode.log.records == events
        assert other["grade"] == last["grade"]


@pytest.mark.parametrize("task_id", ["easy", "hard", "generated/medium", "arena/hard"])
def test_sparse_mode_pays_the_grade_once_at_the_end(task_id: str) -> None:
    env = WorkflowEnv()
    policy = RandomPolicy()
    policy.reset(5003)
    observation = env.reset(task_id, seed=5003, reward_mode="sparse")
    rewards = []
    while not observation["done"]:
        observation = env.step(policy.act(observation))
        rewards.append(observation["reward"])
    assert all(reward == 0.0 for reward in rewards[:-1])
    assert rewards[-1] == observation["grade"]["score"]


@pytest.mark.parametrize("task_id", ["medium", "hard", "expert", "generated/hard", "arena/medium"])
def test_grade_mode_sums_to_the_grade_for_random_play_and_pays_its_changes(task_id: str) -> None:
    env = WorkflowEnv()
    for seed in range(5000, 5010):
        policy = RandomPolicy()
        policy.reset(seed)
        observation = env.reset(task_id, seed=seed, reward_mode="grade")
        total = 0.0
        while not observation["done"]:
            observation = env.step(policy.act(observation))
            total += observation["reward"]
            # The potential: the grade as if the episode ended now.
            assert total == pytest.approx(env.grade()["score"], abs=1e-9)
        assert abs(total - observation["grade"]["score"]) <= 1e-9


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / (vx * vy) ** 0.5 if vx and vy else 1.0


@pytest.mark.parametrize("task_id", ["medium", "hard", "expert", "generated/medium", "generated/hard", "arena/hard"])
def test_grade_mode_return_ranks_episodes_as_the_grade_does(task_id: str) -> None:
    """Within a seed, ε-perturbed heuristics (ε from 0 to 0.6) rank by return as by grade."""
    env = WorkflowEnv()
    for seed in (5000, 5001, 5002):
        returns, grades = [], []
        for k, epsilon in enumerate((0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6) * 2):
            policy = PerturbedHeuristicPolicy(epsilon)
            policy.reset(seed * 100 + k)
            earned, grade = play_policy(env, policy, task_id, seed, "grade")
            returns.append(earned)
            grades.append(grade)
        assert spearman(returns, grades) >= 0.9, (seed, returns, grades)


def test_an_unknown_reward_mode_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="shaped, grade, sparse"):
        WorkflowEnv().reset("easy", reward_mode="dense")
    assert REWARD_MODES == ("shaped", "grade", "sparse", "published")


class DearestAgentPolicy(HeuristicPolicy):
    """The heuristic, choosing the dearest able agent: it spends more than the least cost
    early, where the cost efficiency of a mid-episode grade falls below 1."""

    def _pick(self, observation: Any, subtask: Any, options: list[dict[str, Any]], tails: Any) -> str:
        return str(max(options, key=lambda agent: (agent["cost"], agent["name"]))["name"])


@pytest.mark.parametrize("task_id", ["medium", "hard", "generated/medium", "generated/hard"])
def test_grade_mode_rewards_tell_of_no_outcome_before_it_happens(task_id: str) -> None:
    """Under two outcome secrets, while the two episodes have seen the same things, the
    dense rewards of ``reward_mode="grade"`` are the same: a mid-episode grade measures
    cost against public facts, not against the hindsight bound of the seeded outcomes."""
    compared = 0
    for seed in range(12):
        envs = [WorkflowEnv(outcome_secret=secret) for secret in ("first secret", "second secret")]
        observations = [env.reset(task_id, seed=seed, reward_mode="grade") for env in envs]
        policy = DearestAgentPolicy()
        policy.reset(seed)
        while not observations[0]["done"]:
            action = policy.act(observations[0])
            observations = [env.step(action) for env in envs]
            seen = [{k: v for k, v in o.items() if k not in ("reward", "reward_breakdown")} for o in observations]
            if seen[0] != seen[1] or observations[0]["done"]:
                break
            assert observations[0]["reward"] == observations[1]["reward"], (seed, observations[0]["step_count"])
            compared += 1
    assert compared >= 8  # the comparison happened (it ends at the first outcome that differs)


class _SameTable(ScenarioRewards):
    """The scenario table through step_reward (a subclass takes the episode's general path, which
    sums the breakdown; the plain table sums its channels and builds the breakdown when read)."""


SHAPED_TASKS = ("easy", "medium", "hard", "expert", "generated/medium", "generated/hard")


def _plays(task_id: str, seed: int) -> list[Any]:
    """Random legal actions, with an invalid one every fifth step (so that every channel is paid)."""
    env, policy = WorkflowEnv(), RandomPolicy(seed)
    observation = env.reset(task_id, seed=seed)
    actions: list[Any] = []
    while not observation["done"]:
        if len(actions) % 5 == 4:
            action: Any = {"action_type": "delegate", "subtask_id": "nowhere", "agent_name": "nobody"}
        else:
            action = policy.act(observation)
        actions.append(action)
        observation = env.step(action)
    return actions


@pytest.mark.parametrize(
    ("task_id", "seed", "actions"),
    [pytest.param(*CASES[name], id=name) for name in sorted(CASES)]
    + [pytest.param(task_id, seed, None, id=f"{task_id}-random-{seed}") for task_id in SHAPED_TASKS for seed in (1, 2)],
)
def test_the_scenario_table_pays_the_sum_of_its_breakdown_whether_read_or_not(
    task_id: str, seed: int, actions: Any
) -> None:
    lazy, eager, unread = WorkflowEnv(), WorkflowEnv(), WorkflowEnv()
    for env in (lazy, eager, unread):
        env.reset(task_id, seed=seed)
    model = lazy.episode.reward_model
    if type(model) is not ScenarioRewards:
        pytest.skip(f"{task_id} is not rewarded by the scenario table")
    eager.episode.use_reward_model(_SameTable(model.table))
    paid: set[str] = set()
    for action in _plays(task_id, seed) if actions is None else actions:
        read, summed = lazy.step(action), eager.step(action)
        unread.episode.step(action)  # no observation: its breakdown is never built
        assert read["reward"] == summed["reward"] == unread.episode.last_reward
        assert read["reward"] == sum(read["reward_breakdown"].values())
        assert list(read["reward_breakdown"].items()) == list(summed["reward_breakdown"].items())
        assert list(read["reward_breakdown"]) == list(SCENARIO_CHANNELS)
        paid.update(channel for channel, value in read["reward_breakdown"].items() if value)
    assert unread.episode.rewards == lazy.episode.rewards
    if actions is None:
        assert "invalid_action" in paid and "delegation" in paid


def test_an_observation_keeps_its_reward_breakdown_after_later_steps() -> None:
    env = WorkflowEnv()
    observation = env.reset("hard", seed=3)
    seen: list[tuple[dict[str, Any], dict[str, float]]] = []
    while not observation["done"]:
        observation = env.step(HeuristicPolicy().act(observation))
        seen.append((observation, dict(observation["reward_breakdown"])))
    assert len({tuple(copy.items()) for _, copy in seen}) > 1  # the breakdowns differ from step to step
    for observation, copy in seen:
        assert observation["reward_breakdown"] == copy


def test_observations_do_not_share_their_errors() -> None:
    env = WorkflowEnv()
    env.reset("hard", seed=3)
    first = env.step({"action_type": "wait"})
    second = env.step({"action_type": "wait"})
    first["errors"].append({"code": "MINE", "message": "a note of the caller's"})
    assert second["errors"] == [] and env.step({"action_type": "wait"})["errors"] == []
