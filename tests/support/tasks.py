"""A tiny hand-made task, a registry of given tasks, and helpers to build and play actions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workflow_orchestrator.server.core import (
    AgentSpec,
    EventKind,
    ScheduledEvent,
    SubtaskSpec,
    TaskSpec,
    TimeModel,
)
from workflow_orchestrator.server.core.model import PatienceSpec
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import TaskRegistry

SCENARIOS = ("easy", "medium", "hard", "expert")


def tiny_task(**overrides: Any) -> TaskSpec:
    """Three subtasks (a -> b, a -> c), three agents, one trap and one dropout.

    ``solo`` can only do ``alpha`` work; ``pair`` does ``beta`` and accepts
    ``gamma`` but can never complete it; ``flaky`` does ``gamma`` and drops out
    at tick 6.
    """
    fields: dict[str, Any] = dict(
        task_id="tiny",
        title="Tiny",
        description="A three-subtask workflow for tests.",
        family="scenario",
        difficulty="test",
        time_model=TimeModel.TICK,
        time_limit=10,
        capacity=2,
        budget=10.0,
        subtasks=(
            SubtaskSpec("a", "alpha"),
            SubtaskSpec("b", "beta", ("a",), deadline=4),
            SubtaskSpec("c", "gamma", ("a",), tags=("side",)),
        ),
        agents=(
            AgentSpec("solo", frozenset({"alpha"}), speed=1, cost=1.0),
            AgentSpec("pair", frozenset({"beta", "gamma"}), speed=1, cost=2.0, never_succeeds=frozenset({"gamma"})),
            AgentSpec("flaky", frozenset({"gamma"}), speed=2, cost=1.0),
        ),
        events=(ScheduledEvent(6, EventKind.OFFLINE, "flaky"),),
        patience=PatienceSpec("b", 1),
        grade_weights={"completion": 0.5, "deadlines": 0.25, "error_classification": 0.25},
        activity_gate=1.0,
    )
    fields.update(overrides)
    return TaskSpec(**fields)


def registry_of(*tasks: TaskSpec) -> TaskRegistry:
    registry = TaskRegistry()
    for task in tasks:
        registry.add_scenario(task)
    return registry


def act(kind: str, subtask: str | None = None, agent: str | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"action_type": kind}
    if subtask is not None:
        action["subtask_id"] = subtask
    if agent is not None:
        action["agent_name"] = agent
    return action


def dispatch(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"action_type": "dispatch", "assignments": [{"subtask_id": s, "agent_name": a} for s, a in pairs]}


def play(env: WorkflowEnv, task_id: str, actions: Iterable[dict[str, Any]], seed: int | None = None) -> dict[str, Any]:
    """Reset and play the actions; every one must be valid. Returns the last observation."""
    observation = env.reset(task_id, seed=seed)
    for action in actions:
        observation = env.step(action)
        assert observation["errors"] == [], (action, observation["errors"])
    return observation
