"""A short MaskablePPO run: training runs and evaluation grades it (the learning figure is `bench learn`)."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sb3_contrib") is None or importlib.util.find_spec("torch") is None,
    reason="needs the learn extra (sb3-contrib and torch): bash .ci/install-extras learn",
)


def test_a_short_training_run_is_graded_on_held_out_seeds() -> None:
    from workflow_orchestrator.learn import held_out_seeds, train_and_evaluate
    from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS

    result = train_and_evaluate(
        "generated/easy",
        timesteps=2048,
        evaluations=2,
        evaluation_seeds=3,
        final_seeds=4,
        envs=2,
        baselines=("random",),
    )
    assert result.timesteps >= 2048
    assert [steps for steps, _ in result.curve] == [0, 1024, 2048]
    assert all(0.0 <= score <= 1.0 for _, score in result.curve)
    assert 0.0 < result.final_score <= 1.0
    assert set(result.baselines) == {"random"}
    assert result.evaluation_seeds == held_out_seeds(4)
    assert all(seed in EVALUATION_SEEDS for seed in result.evaluation_seeds)
