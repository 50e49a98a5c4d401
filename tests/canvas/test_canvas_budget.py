"""The canvas token budget depends on the executor: the task's budget (sized for the
simulated executor's token costs) times the executor's ``budget_scale``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_model import COMPLETION_TOKENS, PROMPT_TOKENS, ScriptedModel
from workflow_orchestrator.executors.model import DEFAULT_BUDGET_SCALE, ModelExecutor, settings_from_environ
from workflow_orchestrator.server.core.canvas import Problem
from workflow_orchestrator.server.core.canvas.simulator import SimulatedExecutor
from workflow_orchestrator.server.inprocess import WorkflowEnv

CALL = PROMPT_TOKENS + COMPLETION_TOKENS


class Scaled(SimulatedExecutor):
    """The simulated executor, declaring a budget scale."""

    budget_scale = 2.5


def test_an_executor_without_a_scale_keeps_the_tasks_budget_and_a_scale_multiplies_it() -> None:
    env = WorkflowEnv()
    plain = env.reset("canvas/math", seed=3)
    budget = plain["budget"]
    assert budget == env.episode.tables.budget
    same = env.reset("canvas/math", seed=3, executor=lambda problem: SimulatedExecutor(problem, env.episode.seed_key))
    assert same["budget"] == budget
    scaled = env.reset("canvas/math", seed=3, executor=lambda problem: Scaled(problem, 0))
    assert scaled["budget"] == scaled["budget_remaining"] == round(2.5 * budget)
    for node in ("AnswerGenerate", "Verify"):
        env.step({"action_type": "add", "operator": node})
    observation = env.step({"action_type": "finish"})
    grade = observation["grade"]
    spent = grade["counts"]["tokens_used"]
    assert grade["counts"]["budget"] == round(2.5 * budget)
    assert grade["breakdown"]["cost"] == round(1 - spent / round(2.5 * budget), 6)
    with pytest.raises(ValueError, match="budget_scale"):

        class Broken(SimulatedExecutor):
            budget_scale = 0.0

        env.reset("canvas/math", seed=3, executor=lambda problem: Broken(problem, 0))


def test_the_model_executor_scales_the_budget_by_its_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def script(messages: list[dict[str, Any]]) -> str:
        return "<answer>42</answer>\nVERDICT: CORRECT"

    with ScriptedModel(script) as model:
        monkeypatch.setenv("API_BASE_URL", model.base_url)
        monkeypatch.setenv("MODEL_NAME", "scripted")
        monkeypatch.setenv("API_KEY", "test-key")
        monkeypatch.setenv("WORKFLOW_ORCHESTRATOR_MODEL_CACHE", str(tmp_path / "cache.sqlite"))
        assert settings_from_environ().budget_scale == DEFAULT_BUDGET_SCALE
        env = WorkflowEnv()
        observation = env.reset("canvas/math", seed=3, executor="openai")
        task_budget = env.episode.tables.budget
        assert isinstance(env.episode.executor, ModelExecutor)
        assert observation["budget"] == round(DEFAULT_BUDGET_SCALE * task_budget)
        monkeypatch.setenv("WORKFLOW_ORCHESTRATOR_CANVAS_BUDGET_SCALE", "0.5")
        observation = env.reset("canvas/math", seed=3, executor="openai")
        assert observation["budget"] == round(0.5 * task_budget)
        assert observation["canvas"]["problem"]["type"] == "math"
        assert isinstance(env.episode.problem, Problem)
