"""The routes: episodes over plain HTTP, tasks, grading, event logs, the baseline, schema and metadata.

* ``POST /reset`` starts an episode in the bounded store and returns its
  ``episode_id`` in the observation and its ``episode_secret`` beside it;
  ``POST /step`` and ``GET /state`` continue it by that id (with the secret
  in the header ``X-Episode-Secret`` when the client chose the id; see
  ``environment.py`` for who may use an episode).
* ``GET /tasks``, ``POST /grader``, ``GET /episodes/{id}``, ``POST /baseline``,
  ``GET /schema`` (our state schema), ``GET /metadata`` (with the README).
  ``/grader`` and ``/episodes/{id}`` answer from the archive (``archive.py``)
  for a finished episode that left the store.

Each answer is serialised once, with orjson; a refusal is an
:class:`~workflow_orchestrator.server.http.responses.ApiError`.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
from typing import Any

import orjson
from fastapi import Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import Response
from openenv.core.env_server.types import EnvironmentMetadata, SchemaResponse

from workflow_orchestrator.models import (
    EpisodeRecord,
    ErrorResponse,
    GradeRequest,
    GradeResponse,
    ResetRequest,
    StepRequest,
    StepResponse,
    TaskList,
    WorkflowAction,
    WorkflowObservation,
    WorkflowState,
)
from workflow_orchestrator.server.archive import ArchivedEpisode
from workflow_orchestrator.server.environment import (
    HISTORY_PAGE_ENTRIES,
    DuplicateEpisodeError,
    EpisodeForbiddenError,
    EpisodeNotFinishedError,
    EpisodeNotFoundError,
    EpisodeStore,
    HistoryPage,
    StepCountMismatchError,
    StoredEpisode,
    archived_history,
    archived_owned_by,
    envelope,
    episode_state,
    note_ignored_options,
)
from workflow_orchestrator.server.http.responses import EXPECTED_FORMS, JSON_OPTIONS, ApiError, json_response
from workflow_orchestrator.server.tasks import UnknownTaskError

ENV_NAME = "workflow_orchestrator"
VERSION = "0.1.0"
# The header that carries an episode's secret (see environment.py for who may use an episode).
SECRET_HEADER = "X-Episode-Secret"

logger = logging.getLogger("workflow_orchestrator.server")


def read_package_text(name: str) -> str | None:
    """A text file shipped in the package (the README, the baseline scores), or None if this build lacks it."""
    resource = importlib.resources.files("workflow_orchestrator").joinpath(name)
    try:
        return resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return None


def build_metadata() -> EnvironmentMetadata:
    """What ``GET /metadata`` answers: name, description, version and the README."""
    return EnvironmentMetadata(
        name=ENV_NAME,
        description=(
            "An environment in which a policy orchestrates DAG-shaped workflows over simulated "
            "worker agents: assign subtasks, run work in parallel, recover from failures, meet "
            "deadlines and stay inside cost budgets."
        ),
        readme_content=read_package_text("README.md"),
        version=VERSION,
    )


# openenv's routes that this server replaces with episode-keeping ones.
REPLACED_PATHS = frozenset({"/reset", "/step", "/state", "/schema", "/metadata", "/ws", "/health"})

# The history's paging (see HistoryPage in environment.py), as GET /state and /episodes/{id} take it.
PAGE_HELP = {
    "trace_from": "the first action trace entry of this page (the answer's history.trace_next for the next page)",
    "events_from": "the first event log entry of this page (the answer's history.events_next for the next page)",
    "history_limit": "at most this many entries of each list (0: none); a page also holds at most "
    "256 KiB of each list's JSON",
}


async def history_page(
    trace_from: int = Query(0, ge=0, description=PAGE_HELP["trace_from"]),
    events_from: int = Query(0, ge=0, description=PAGE_HELP["events_from"]),
    history_limit: int = Query(
        HISTORY_PAGE_ENTRIES, ge=0, le=HISTORY_PAGE_ENTRIES, description=PAGE_HELP["history_limit"]
    ),
) -> HistoryPage:
    """The page of history GET /state and /episodes/{id} answer with, from their query (a coroutine,
    so that FastAPI runs it on the event loop rather than on its thread pool)."""
    return HistoryPage(trace_from, events_from, history_limit)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (403, "the episode belongs to another client: send its X-Episode-Secret"),
        (404, "unknown or expired episode, or nothing to grade"),
        (409, "the episode cannot do this now"),
        (413, "request body too large"),
        (422, "invalid request: the body says what is wrong and what to send"),
    )
}


async def archived(episode: StoredEpisode) -> None:
    """Wait for the archive's write of a finished episode (a failed write is logged, not the client's)."""
    if episode.archived is None:
        return
    try:
        await asyncio.wrap_future(episode.archived)
    except Exception:
        logger.exception("archiving episode %s failed", episode.episode_id)


async def used_id_message(store: EpisodeStore, episode_id: str | None) -> str | None:
    """Why a client-chosen id may not be given (it is archived), or None.

    The store itself refuses the ids it remembers; the archive is asked here,
    off the event loop, before the store is.
    """
    if episode_id is None or store.archive is None or store.is_retired(episode_id):
        return None
    if await store.archive.contains(episode_id):
        return f"episode_id {episode_id!r} was used before (the episode is archived); choose another"
    return None


def client_of(request: Request) -> str:
    """The client an HTTP request comes from: its network address (what uvicorn reports, proxies included)."""
    return request.client.host if request.client is not None else "unknown"


def add_episode_routes(app: FastAPI, store: EpisodeStore, metadata: EnvironmentMetadata) -> None:
    """Add every route of this module to ``app``, over ``store``."""
    registry = store.registry
    schema: dict[str, Any] = SchemaResponse(
        action=WorkflowAction.model_json_schema(),
        observation=WorkflowObservation.model_json_schema(),
        state=WorkflowState.model_json_schema(),
    ).model_dump()
    tasks_body = orjson.dumps({"tasks": registry.list_tasks()}, option=JSON_OPTIONS)

    archive = store.archive

    def lookup(episode_id: str, secret: str | None) -> StoredEpisode:
        try:
            return store.get(episode_id, secret, check_owner=True)
        except EpisodeNotFoundError as exc:
            raise ApiError(
                404, "episode_expired" if exc.expired else "unknown_episode", str(exc), EXPECTED_FORMS["/reset"]
            ) from None
        except EpisodeForbiddenError as exc:
            raise ApiError(403, "episode_forbidden", str(exc)) from None

    async def lookup_finished(
        episode_id: str, secret: str | None, history: bool = True
    ) -> StoredEpisode | ArchivedEpisode:
        """A stored episode, else (when it left the store) the archived one (without its trace and
        events unless ``history``); owner checked either way."""
        try:
            return lookup(episode_id, secret)
        except ApiError as error:
            if archive is None or error.status != 404:
                raise
            record = await archive.get(episode_id, history)
            if record is None:
                raise
            if not archived_owned_by(record, secret):
                raise ApiError(
                    403, "episode_forbidden", str(EpisodeForbiddenError(episode_id, secret is not None))
                ) from None
            return record

    @app.post(
        "/reset",
        response_model=StepResponse,
        responses=ERROR_RESPONSES,
        tags=["Environment Control"],
        summary="Start an episode; the observation carries its episode_id, the answer its episode_secret",
    )
    async def reset(http_request: Request, request: ResetRequest = Body(default_factory=ResetRequest)) -> Response:
        used = await used_id_message(store, request.episode_id)
        if used is not None:
            raise ApiError(409, "duplicate_episode_id", used)
        try:
            episode, observation = store.start(
                request.task_id,
                request.seed,
                request.worker_count,
                request.episode_id,
                client=client_of(http_request),
                reward_mode=request.reward_mode,
            )
        except UnknownTaskError as exc:
            raise ApiError(422, "unknown_task", str(exc), {"task_id": registry.task_ids()[0]}) from None
        except DuplicateEpisodeError as exc:
            raise ApiError(409, "duplicate_episode_id", str(exc)) from None
        except ValueError as exc:
            raise ApiError(422, "invalid_parameters", str(exc), EXPECTED_FORMS["/reset"]) from None
        reply = envelope(observation, episode.episode_id, episode.secret)
        return json_response(note_ignored_options(reply, request.ignored_options()))

    @app.post(
        "/step",
        response_model=StepResponse,
        responses=ERROR_RESPONSES,
        tags=["Environment Control"],
        summary="Continue the episode episode_id with one action",
    )
    async def step(
        request: StepRequest, secret: str | None = Header(default=None, alias=SECRET_HEADER, max_length=128)
    ) -> Response:
        episode = lookup(request.episode_id, secret)
        if episode.live_sessions:
            raise ApiError(
                409,
                "episode_in_session",
                f"episode {episode.episode_id!r} is being played over a WebSocket session; "
                "step it there, or start your own with POST /reset",
            )
        if request.expected_step_count is None:
            reply = envelope(store.step(episode, request.action.to_core()), episode.episode_id)
        else:
            try:
                reply = store.step_once(episode, request.action.to_core(), request.expected_step_count)
            except StepCountMismatchError as exc:
                raise ApiError(409, "step_count_mismatch", str(exc)) from None
        # The step that finished the episode is answered once the archive has it.
        await archived(episode)
        return json_response(reply)

    @app.get(
        "/state",
        response_model=WorkflowState,
        responses=ERROR_RESPONSES,
        tags=["State Management"],
        summary="The state of the episode episode_id, with a page of its history (the whole of a normal episode)",
    )
    async def state(
        episode_id: str = Query(min_length=1, max_length=64),
        page: HistoryPage = Depends(history_page),
        secret: str | None = Header(default=None, alias=SECRET_HEADER, max_length=128),
    ) -> Response:
        return json_response(episode_state(lookup(episode_id, secret), page))

    @app.get(
        "/schema",
        response_model=SchemaResponse,
        tags=["Schema"],
        summary="JSON schemas of the action, the observation and the state",
    )
    async def get_schema() -> dict[str, Any]:
        return schema

    @app.get(
        "/metadata",
        response_model=EnvironmentMetadata,
        tags=["Environment Info"],
        summary="Name, description and README",
    )
    async def get_metadata() -> EnvironmentMetadata:
        return metadata

    @app.get("/tasks", response_model=TaskList, tags=["Environment Info"], summary="Every task with its parameters")
    async def tasks() -> Response:
        return Response(tasks_body, media_type="application/json")

    @app.post(
        "/grader",
        response_model=GradeResponse,
        responses=ERROR_RESPONSES,
        tags=["Grading"],
        summary="Grade a finished episode (by episode_id, or a task's latest finished one by task_id)",
    )
    async def grader(
        http_request: Request,
        request: GradeRequest,
        secret: str | None = Header(default=None, alias=SECRET_HEADER, max_length=128),
    ) -> Response:
        if request.episode_id is None and request.task_id is None:
            raise ApiError(
                422,
                "invalid_request",
                "give episode_id (or task_id for that task's latest finished episode)",
                EXPECTED_FORMS["/grader"],
            )
        found: StoredEpisode | ArchivedEpisode
        if request.episode_id is not None:
            found = await lookup_finished(request.episode_id, secret, history=False)
            if request.task_id is not None and request.task_id != found.task_id:
                raise ApiError(
                    422,
                    "task_mismatch",
                    f"episode {found.episode_id!r} is of task {found.task_id!r}, not {request.task_id!r}",
                    EXPECTED_FORMS["/grader"],
                )
        else:
            assert request.task_id is not None
            client = client_of(http_request)
            try:
                found = store.latest_finished(request.task_id, client)
            except UnknownTaskError as exc:
                raise ApiError(422, "unknown_task", str(exc), {"task_id": registry.task_ids()[0]}) from None
            except EpisodeNotFoundError:
                record = await archive.latest(request.task_id, client, history=False) if archive is not None else None
                if record is None:
                    raise ApiError(
                        404,
                        "nothing_to_grade",
                        f"you have no finished episode of task {request.task_id!r}; finish one, or grade by episode_id",
                        EXPECTED_FORMS["/grader"],
                    ) from None
                found = record
            # The caller's own latest episode; one it named still needs its secret.
            owned = found.owned_by(secret) if isinstance(found, StoredEpisode) else archived_owned_by(found, secret)
            if not owned:
                forbidden = EpisodeForbiddenError(found.episode_id, secret is not None)
                raise ApiError(403, "episode_forbidden", str(forbidden))
        if isinstance(found, ArchivedEpisode):
            grade = found.grade
        else:
            try:
                grade = store.grade(found)
            except EpisodeNotFinishedError as exc:
                raise ApiError(409, "episode_not_finished", str(exc)) from None
        return json_response(
            {
                **grade,
                "episode_id": found.episode_id,
                "task_id": found.task_id,
                "seed": found.seed,
                "step_count": found.step_count,
            }
        )

    @app.get(
        "/episodes/{episode_id}",
        response_model=EpisodeRecord,
        responses=ERROR_RESPONSES,
        tags=["State Management"],
        summary="The event log and action trace of an episode, a page at a time (finished ones also from the archive)",
    )
    async def episode_record(
        episode_id: str = Path(min_length=1, max_length=64),
        page: HistoryPage = Depends(history_page),
        secret: str | None = Header(default=None, alias=SECRET_HEADER, max_length=128),
    ) -> Response:
        found = await lookup_finished(episode_id, secret)
        if isinstance(found, ArchivedEpisode):
            done = True
            history = archived_history(found, page)
        else:
            done = found.finished
            history = found.serialized_history().page(page)
        return json_response(
            {
                "episode_id": found.episode_id,
                "task_id": found.task_id,
                "seed": found.seed,
                "done": done,
                "step_count": found.step_count,
                **history,
            }
        )

    @app.post(
        "/baseline",
        responses={404: {"model": ErrorResponse, "description": "no baseline recorded"}},
        tags=["Grading"],
        summary="Scores of the built-in baseline policies (baseline_scores.json)",
    )
    async def baseline() -> Response:
        text = read_package_text("baseline_scores.json")
        if text is None:
            raise ApiError(404, "no_baseline", "no baseline_scores.json has been recorded with this server")
        return Response(text.encode(), media_type="application/json")
