"""A dashboard server whose only task has names made of HTML and template syntax.

Run as ``python tests/support/dashboard_hostile_server.py PORT``: the browser tests
open its ``/web`` and check that every name is shown as text and that no
injected script or handler runs.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from workflow_orchestrator.server.core import AgentSpec, SubtaskSpec, TaskSpec, TimeModel
from workflow_orchestrator.server.dashboard import mount_dashboard
from workflow_orchestrator.server.environment import EpisodeStore, StoreLimits
from workflow_orchestrator.server.tasks import TaskRegistry

SCRIPT_SUBTASK = "<script>window.__pwned=1</script>"
BOLD_SUBTASK = "<b>bold</b>${7*7}{{value}}"
IMAGE_AGENT = '<img src=x onerror="window.__pwned=2">'


def hostile_task() -> TaskSpec:
    return TaskSpec(
        task_id="hostile",
        title='<i>title</i><img src=x onerror="window.__pwned=3">',
        description="Names that are HTML.",
        family="scenario",
        difficulty="test",
        time_model=TimeModel.TICK,
        time_limit=10,
        capacity=2,
        budget=10.0,
        subtasks=(
            SubtaskSpec(SCRIPT_SUBTASK, "alpha"),
            SubtaskSpec(BOLD_SUBTASK, "beta", (SCRIPT_SUBTASK,), deadline=4),
        ),
        agents=(
            AgentSpec(IMAGE_AGENT, frozenset({"alpha"}), speed=1, cost=1.0),
            AgentSpec("<u>under</u>", frozenset({"beta"}), speed=1, cost=2.0),
        ),
        grade_weights={"completion": 1.0},
        activity_gate=1.0,
    )


def build() -> FastAPI:
    registry = TaskRegistry()
    registry.add_scenario(hostile_task())
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    mount_dashboard(app, EpisodeStore(registry, StoreLimits()))
    return app


if __name__ == "__main__":
    uvicorn.run(build(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
