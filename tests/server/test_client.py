"""The Python client against a live server: typed results, async and sync, grading."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.server_fixtures import RunningServer
from workflow_orchestrator import WorkflowAction, WorkflowClient, WorkflowObservation, WorkflowState
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry


def test_sync_client_plays_an_episode_like_the_core(live_server: RunningServer) -> None:
    core = WorkflowEnv(registry=default_registry())
    expected = core.reset(task_id="medium", seed=21)
    with WorkflowClient(live_server.url).sync() as env:
        result = env.reset(task_id="medium", seed=21)
        assert isinstance(result.observation, WorkflowObservation)
        assert result.observation.episode_id and env.episode_id == result.observation.episode_id
        steps = 0
        while not result.done:
            legal = result.observation.legal_actions
            action = WorkflowAction(**legal[0]) if legal else WorkflowAction(action_type="wait")
            result = env.step(action)
            expected = core.step(action.to_core())
            assert result.reward == expected["reward"]
            steps += 1
        assert result.observation.grade is not None
        assert result.observation.grade.score == expected["grade"]["score"]
        state = env.state()
        assert isinstance(state, WorkflowState) and state.step_count == steps and state.done
        assert env.grade().score == expected["grade"]["score"]


def test_async_client_accepts_plain_dict_actions(live_server: RunningServer) -> None:
    async def run() -> tuple[bool, int]:
        async with WorkflowClient(live_server.url, validate=False) as env:
            result = await env.reset(task_id="easy", seed=3)
            steps = 0
            while not result.done:
                legal = result.observation.legal_actions
                result = await env.step(dict(legal[0]) if legal else {"action_type": "wait"})
                steps += 1
            assert result.observation.grade is not None and 0 <= result.observation.grade.score <= 1
            return result.done, steps

    done, steps = asyncio.run(run())
    assert done and steps > 0


def test_client_errors_are_raised_not_swallowed(live_server: RunningServer) -> None:
    with WorkflowClient(live_server.url).sync() as env:
        with pytest.raises(RuntimeError, match="unknown task_id"):
            env.reset(task_id="no_such_task")
        with pytest.raises(RuntimeError, match="reset"):
            env.grade()


def test_the_client_grades_an_episode_it_named_with_its_secret(live_server: RunningServer) -> None:
    name = f"client-named-{uuid.uuid4().hex[:12]}"
    with WorkflowClient(live_server.url).sync() as env:
        result = env.reset(task_id="easy", seed=4, episode_id=name)
        assert result.observation.episode_id == name and env.episode_secret
        while not result.done:
            result = env.step(WorkflowAction(action_type="wait"))
        assert result.observation.grade is not None
        assert env.grade().score == result.observation.grade.score
