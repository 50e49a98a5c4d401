"""The Gymnasium interface: the checker, registered ids, seeding, masks, vector envs."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from workflow_orchestrator import WorkflowEnv
from workflow_orchestrator.gym_env import WorkflowGymEnv, env_id, env_ids, gym_task_ids
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS, TRAINING_SEEDS

# Every task with a workflow of named agents (a canvas task has its own action space)
# but arena/expert and generated/expert, which no family layout holds.
TASKS = gym_task_ids()


def test_every_task_has_a_registered_id() -> None:
    assert env_ids() == [env_id(t) for t in TASKS]
    assert set(default_registry().task_ids()) - set(TASKS) == {
        "canvas/math",
        "canvas/code",
        "canvas/qa",
        "canvas/mixed",
        "arena/expert",
        "generated/expert",
    }
    with pytest.raises(ValueError, match="no workflow of named agents"):
        WorkflowGymEnv("canvas/math")
    assert "WorkflowOrchestrator/arena-hard-v0" in env_ids()
    assert "WorkflowOrchestrator/generated-easy-v0" in env_ids()
    assert "WorkflowOrchestrator/easy-v0" in env_ids()
    for name in env_ids():
        assert name in gymnasium.registry


@pytest.mark.parametrize("task_id", TASKS)
def test_the_gymnasium_checker_passes(task_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings count as failures too
        check_env(gymnasium.make(env_id(task_id), render_mode="ansi").unwrapped)


@pytest.mark.parametrize("task_id", ["hard", "arena/hard", "generated/medium"])
def test_the_checker_passes_in_text_mode(task_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gymnasium.make(env_id(task_id), observation_mode="text").unwrapped)


def test_make_imports_the_module_by_itself() -> None:
    env = gymnasium.make("workflow_orchestrator.gym_env:WorkflowOrchestrator/arena-medium-v0")
    observation, info = env.reset(seed=1)
    assert env.observation_space.contains(observation)
    assert info["action_mask"].any()


def legal_set(actions: list[dict[str, Any]]) -> set[str]:
    return {repr(sorted(a.items())) for a in actions}


@pytest.mark.parametrize("task_id", TASKS)
def test_masks_match_the_legal_actions(task_id: str) -> None:
    env = WorkflowGymEnv(task_id)
    rng = np.random.default_rng(0)
    for seed in (5, 6):
        _, info = env.reset(seed=seed)
        done = False
        while not done:
            mask = info["action_mask"]
            np.testing.assert_array_equal(env.action_masks(), mask)
            decoded = [env.decode_action(int(i)) for i in np.flatnonzero(mask)]
            assert legal_set(decoded) == legal_set(env.observation["legal_actions"])
            assert len(decoded) == len(env.observation["legal_actions"])
            observation, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(mask))))
            assert env.observation_space.contains(observation)
            done = terminated or truncated
        assert not info["action_mask"].any()
        assert info["score"] == env.observation["grade"]["score"]
        assert 0.0 <= info["score"] <= 1.0


@pytest.mark.parametrize("task_id", ["medium", "arena/hard", "generated/hard"])
def test_an_episode_is_the_core_episode_with_that_seed(task_id: str) -> None:
    env = WorkflowGymEnv(task_id)
    core = WorkflowEnv()
    observation = core.reset(task_id, seed=42)
    _, info = env.reset(seed=42)
    assert env.observation == observation
    assert info["task_seed"] == 42
    policy = make_policy("random", 3)
    done = False
    while not done:
        action = policy.act(observation)
        observation = core.step(action)
        _, reward, terminated, truncated, info = env.step(env.action_index(action))
        assert env.observation == observation
        assert reward == observation["reward"]
        assert (terminated, truncated) == (observation["terminated"], observation["truncated"])
        done = terminated or truncated
    assert env.observation["grade"] == observation["grade"]
    assert info["score"] == observation["grade"]["score"]
    assert env.core.state()["events"] == core.state()["events"]


def test_reset_seed_is_the_only_seeding_path() -> None:
    first, second = WorkflowGymEnv("generated/easy"), WorkflowGymEnv("generated/easy")
    a, _ = first.reset(seed=9)
    b, _ = second.reset(seed=9)
    np.testing.assert_array_equal(a, b)
    drawn = [first.reset()[1]["task_seed"] for _ in range(3)]
    assert drawn == [second.reset()[1]["task_seed"] for _ in range(3)]
    assert all(seed in TRAINING_SEEDS for seed in drawn) and len(set(drawn)) == 3
    held_out = WorkflowGymEnv("generated/easy", seeds="evaluation")
    held_out.reset(seed=1)
    assert all(held_out.reset()[1]["task_seed"] in EVALUATION_SEEDS for _ in range(3))


def test_terminated_and_truncated_are_distinct() -> None:
    env = WorkflowGymEnv("easy")
    _, info = env.reset(seed=0)
    wait = env.action_index({"action_type": "wait"})
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(wait)
    assert truncated and not terminated
    policy = make_policy("greedy")
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(env.action_index(policy.act(env.observation)))
    assert terminated and not truncated
    assert info["score"] > 0.5


@pytest.mark.parametrize("task_id", ["easy", "arena/easy"])
def test_an_index_outside_the_mask_is_an_invalid_action(task_id: str) -> None:
    env = WorkflowGymEnv(task_id)
    _, info = env.reset(seed=0)
    illegal = int(np.flatnonzero(~info["action_mask"])[-2])
    _, reward, terminated, truncated, info = env.step(illegal)
    assert reward < 0 and info["errors"] and not (terminated or truncated)
    with pytest.raises(ValueError, match="action index"):
        env.step(env.action_space.n)


def test_a_task_larger_than_the_layout_is_refused() -> None:
    env = WorkflowGymEnv("arena/hard", worker_count=16)
    env.reset(seed=0)
    assert len(env.observation["agents"]) == 16
    env.layout = type(env.layout)(env.layout.max_subtasks, 4, env.layout.types, True)
    with pytest.raises(ValueError, match="this layout holds"):
        env.reset(seed=0)


def test_gymnasium_vector_envs_step_with_masks() -> None:
    vec = gymnasium.make_vec("WorkflowOrchestrator/arena-medium-v0", num_envs=4, vectorization_mode="sync")
    observations, info = vec.reset(seed=3)
    assert observations.shape == (4, vec.single_observation_space.shape[0])
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(200):
        masks = info["action_mask"]
        actions = np.array([rng.choice(np.flatnonzero(m)) if m.any() else 0 for m in masks])
        observations, rewards, terminated, truncated, info = vec.step(actions)
        ended = terminated | truncated
        finished += int(np.sum(ended))
        if ended.any():
            np.testing.assert_array_equal(info["_score"], ended)
            assert np.all(info["score"][ended] > 0)
    assert finished > 4
    vec.close()


@pytest.mark.parametrize("task_id", ["hard", "arena/medium"])
def test_the_reward_mode_is_a_constructor_and_reset_option(task_id: str) -> None:
    def episode_return(env: WorkflowGymEnv, **reset: Any) -> tuple[float, float]:
        _, info = env.reset(seed=5000, **reset)
        total, done = 0.0, False
        while not done:
            action = int(np.flatnonzero(info["action_mask"])[0])
            _, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
        return total, float(info["score"])

    total, score = episode_return(WorkflowGymEnv(task_id, reward_mode="grade"))
    assert abs(total - score) <= 1e-9
    total, score = episode_return(WorkflowGymEnv(task_id), options={"reward_mode": "sparse"})
    assert total == score
    with pytest.raises(ValueError, match="reward_mode"):
        WorkflowGymEnv(task_id, reward_mode="dense")
