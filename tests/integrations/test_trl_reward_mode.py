"""The TRL adapter's reward mode: a factory option and a dataset column (no trl needed)."""

from __future__ import annotations

import pytest

from workflow_orchestrator.integrations.trl import WorkflowEnvFactory


def test_the_return_of_grade_mode_is_the_grade_and_a_row_may_choose_the_mode() -> None:
    factory = WorkflowEnvFactory(reward="return", reward_mode="grade")
    env = factory()
    env.reset(task_id="easy", seed=5000)
    env.delegate("technical_design", "tech_lead")
    env.delegate("implement_backend", "backend_dev")
    assert env._observation is not None
    grade_so_far = env._observation["reward_breakdown"]["grade"]
    assert env.get_reward() > grade_so_far >= 0.0
    answer = env.reset(task_id="easy", seed=5000, reward_mode="sparse")
    assert answer
    assert env.delegate("technical_design", "tech_lead").startswith("Reward +0.000.")
    with pytest.raises(ValueError, match="reward_mode"):
        env.reset(task_id="easy", seed=5000, reward_mode="dense")
    with pytest.raises(ValueError, match="reward_mode"):
        WorkflowEnvFactory(reward_mode="dense")
