"""OpenEnv's task API routes, served over :mod:`workflow_orchestrator.server.taskapi`.

``GET /list_environments``, ``GET /workflow_orchestrator/splits`` and
``POST /workflow_orchestrator/{tasks,num_tasks,task,task_range}``, with the
request bodies of openenv's task API. openenv would serve them under the
name of the environment factory's class and answer an unknown split with a
500; these answer it with a 404 that lists the splits.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import FastAPI, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from workflow_orchestrator.server.http.responses import ApiError, json_response
from workflow_orchestrator.server.taskapi import SPLITS, TaskCatalogue, UnknownSplitError

# openenv's task routes, replaced by the ones below.
TASK_API_PATHS = frozenset(
    {
        "/list_environments",
        "/{env_name}/splits",
        "/{env_name}/tasks",
        "/{env_name}/num_tasks",
        "/{env_name}/task",
        "/{env_name}/task_range",
    }
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: str = Field(max_length=64, description=f"task split: {', '.join(SPLITS)}")


class SplitRequest(_Request):
    pass


class TaskRequest(_Request):
    index: int = Field(ge=0, description="task index within the split")


class TaskRangeRequest(_Request):
    start: int | None = Field(default=None, description="inclusive start index (Python slice rules)")
    stop: int | None = Field(default=None, description="exclusive stop index (Python slice rules)")


class TaskSpecModel(BaseModel):
    task_id: str
    seed: int
    split: str
    index: int


class SplitModel(BaseModel):
    name: str
    type: str
    first_seed: int
    last_seed: int
    description: str


class TaskListModel(BaseModel):
    tasks: list[TaskSpecModel]
    env_name: str
    num_tasks: int = Field(description="the split's size; `tasks` is its first part when the split is large")


class TaskCountModel(BaseModel):
    num_tasks: int


class OneTaskModel(BaseModel):
    task: TaskSpecModel


class TaskRangeModel(BaseModel):
    tasks: list[TaskSpecModel]


def add_task_routes(app: FastAPI, catalogue: TaskCatalogue, env_name: str) -> None:
    """Add the task API's routes to ``app`` (after removing openenv's own)."""
    app.router.routes = [route for route in app.router.routes if getattr(route, "path", None) not in TASK_API_PATHS]
    errors: dict[int | str, dict[str, Any]] = {
        404: {"description": "unknown environment name or split"},
        422: {"description": "invalid request, or an index outside the split"},
    }
    name = Path(max_length=64, description=f"the environment's name, {env_name!r}")

    def check(requested: str) -> None:
        if requested.lower() != env_name.lower():
            raise ApiError(404, "unknown_environment", f"unknown environment {requested!r}; this is {env_name!r}")

    def answer(work: Any) -> Response:
        try:
            return json_response(work())
        except UnknownSplitError as exc:
            raise ApiError(404, "unknown_split", str(exc), sorted(SPLITS)) from None
        except IndexError as exc:
            raise ApiError(422, "index_out_of_range", str(exc)) from None

    tags: list[str | Enum] = ["Task API"]

    @app.get("/list_environments", response_model=list[str], tags=tags, summary="The environments served here")
    async def list_environments() -> list[str]:
        return [env_name]

    @app.get(
        "/{env_name}/splits", response_model=list[SplitModel], responses=errors, tags=tags, summary="The task splits"
    )
    async def splits(env_name: str = name) -> Response:
        check(env_name)
        return json_response(catalogue.splits())

    @app.post("/{env_name}/tasks", response_model=TaskListModel, responses=errors, tags=tags, summary="A split's tasks")
    async def tasks(request: SplitRequest, env_name: str = name) -> Response:
        check(env_name)
        split = request.split
        return answer(
            lambda: {"tasks": catalogue.preview(split), "env_name": env_name, "num_tasks": catalogue.size(split)}
        )

    @app.post(
        "/{env_name}/num_tasks",
        response_model=TaskCountModel,
        responses=errors,
        tags=tags,
        summary="The number of tasks in a split",
    )
    async def num_tasks(request: SplitRequest, env_name: str = name) -> Response:
        check(env_name)
        return answer(lambda: {"num_tasks": catalogue.size(request.split)})

    @app.post("/{env_name}/task", response_model=OneTaskModel, responses=errors, tags=tags, summary="One task")
    async def task(request: TaskRequest, env_name: str = name) -> Response:
        check(env_name)
        return answer(lambda: {"task": catalogue.task(request.split, request.index)})

    @app.post(
        "/{env_name}/task_range",
        response_model=TaskRangeModel,
        responses=errors,
        tags=tags,
        summary="Tasks start..stop of a split (at most 1000)",
    )
    async def task_range(request: TaskRangeRequest, env_name: str = name) -> Response:
        check(env_name)
        return answer(lambda: {"tasks": catalogue.task_range(request.split, request.start, request.stop)})
