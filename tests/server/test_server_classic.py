"""``/classic``: a client of the published environment's schema plays and grades all four tasks.

The models below restate the published environment's wire schema (its field
names and types, and its ``extra="forbid"``, as openenv's base types
forbid unknown fields too); the client is an openenv ``EnvClient`` over
them, used as the published ``inference.py`` uses its client: base URL,
``reset(task_id=...)``, ``step(action)``, then ``POST /grader`` with the
task id on the same base URL.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import httpx
import pytest
from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient
from openenv.core.env_server.types import Action, Observation, State
from pydantic import BaseModel, ConfigDict

from tests.support.server_fixtures import RunningServer


class ClassicSubtask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    type: str
    status: Literal["pending", "ready", "in_progress", "completed", "failed"]
    dependencies: list[str]
    dependencies_met: bool
    assigned_to: str | None = None
    output: str | None = None
    error: str | None = None
    steps_remaining: int | None = None
    attempt_count: int = 0


class ClassicAgent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    capabilities: list[str]
    status: Literal["idle", "working", "failed", "offline"]
    current_task: str | None = None
    reliability: float
    speed: int
    cost_per_step: float


class ClassicAction(Action):
    action_type: Literal["delegate", "retry", "wait", "synthesize", "abort"]
    subtask_id: str | None = None
    agent_name: str | None = None
    parameters: dict[str, Any] | None = None


class ClassicObservation(Observation):
    task_description: str
    subtasks: list[ClassicSubtask]
    agents: list[ClassicAgent]
    completed_outputs: dict[str, str]
    errors: list[str]
    time_remaining: int
    time_elapsed: int
    capacity_limit: int
    active_task_count: int
    budget_remaining: float | None = None
    budget_used: float = 0.0
    available_actions: list[str]
    hint: str | None = None
    sla_milestones: dict[str, int] | None = None
    failures_occurred: int = 0
    failures_recovered: int = 0


class ClassicState(State):
    task_id: str
    task_name: str
    difficulty: str
    subtask_statuses: dict[str, str]
    agent_statuses: dict[str, str]
    completed_outputs: dict[str, str]
    total_reward: float
    failures_occurred: int
    failures_recovered: int
    parallelism_events: int
    capacity_violations: int
    budget_total: float | None = None
    budget_used: float = 0.0


class ClassicClient(EnvClient[ClassicAction, ClassicObservation, ClassicState]):
    def _step_payload(self, action: ClassicAction) -> dict[str, Any]:
        return action.model_dump(exclude_none=True)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[ClassicObservation]:
        observation = ClassicObservation(**payload.get("observation", {}))
        return StepResult(observation=observation, reward=payload.get("reward"), done=payload.get("done", False))

    def _parse_state(self, payload: dict[str, Any]) -> ClassicState:
        return ClassicState(**payload)


def choose(observation: ClassicObservation, banned: set[tuple[str, str]]) -> ClassicAction:
    """Synthesize when all is done; else start ready or failed work on a capable idle agent; else wait."""
    if all(subtask.status == "completed" for subtask in observation.subtasks):
        return ClassicAction(action_type="synthesize")
    idle = [agent for agent in observation.agents if agent.status == "idle"]
    if observation.active_task_count < observation.capacity_limit:
        for subtask in observation.subtasks:
            if subtask.status not in ("ready", "failed"):
                continue
            for agent in sorted(idle, key=lambda a: (a.cost_per_step, -a.reliability)):
                if subtask.type in agent.capabilities and (subtask.id, agent.name) not in banned:
                    kind = "retry" if subtask.status == "failed" else "delegate"
                    return ClassicAction(action_type=kind, subtask_id=subtask.id, agent_name=agent.name)
    return ClassicAction(action_type="wait")


async def play(base_url: str, task_id: str) -> tuple[ClassicState, dict[str, Any]]:
    async with ClassicClient(base_url=base_url) as env:
        result = await env.reset(task_id=task_id)
        assert result.observation.task_description and result.observation.subtasks
        banned: set[tuple[str, str]] = set()
        for _ in range(200):
            if result.done:
                break
            result = await env.step(choose(result.observation, banned))
            for subtask in result.observation.subtasks:
                if subtask.status == "failed" and subtask.error and "permanent" in subtask.error:
                    agent = subtask.error.split(": ", 1)[1].split(" ", 1)[0]
                    banned.add((subtask.id, agent))
        assert result.done
        state = await env.state()
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0, trust_env=False) as http:
        grade = (await http.post("/grader", json={"task_id": task_id})).json()
    return state, grade


@pytest.mark.parametrize("task_id", ["easy", "medium", "hard", "expert"])
def test_a_client_of_the_published_schema_plays_and_grades(live_server: RunningServer, task_id: str) -> None:
    state, grade = asyncio.run(play(f"{live_server.url}/classic", task_id))
    assert state.task_id == task_id and state.step_count > 0
    assert set(state.subtask_statuses.values()) == {"completed"}
    assert 0.5 < grade["score"] <= 1.0 and grade["breakdown"]


def test_the_classic_task_list_and_unknown_routes(http: httpx.Client) -> None:
    tasks = http.get("/classic/tasks").json()
    assert {task["task_id"] for task in tasks} >= {"easy", "medium", "hard", "expert"}
    fields = {"task_id", "name", "difficulty", "description", "subtask_count", "agent_count"}
    assert all(set(task) == fields for task in tasks)
    assert http.get("/classic/health").json()["status"] == "healthy"
    missing = http.post("/classic/step", json={"action": {"action_type": "wait"}})
    assert missing.status_code == 404 and "/classic/ws" in missing.json()["message"]
