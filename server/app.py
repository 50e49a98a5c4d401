"""The HTTP and WebSocket server: openenv-core's app plus the routes that keep episodes.

openenv-core's app creates a fresh environment for every HTTP request, so a
plain HTTP client could never play an episode. This server keeps openenv's
app (``/health``, ``/mcp``, the OpenAPI documents) and replaces the routes
that need episodes:

* ``POST /reset`` starts an episode in a bounded store and returns its
  ``episode_id`` in the observation; ``POST /step`` and ``GET /state``
  continue it by that id.
* ``/ws`` speaks openenv's session protocol, one episode per connection, up
  to ``max_concurrent_envs`` connections; a dropped connection frees its slot
  at once and an idle one is closed after ``session_idle_timeout_s``.
* ``GET /tasks``, ``POST /grader``, ``GET /episodes/{id}``, ``POST /baseline``,
  ``GET /schema`` (our state schema), ``GET /metadata`` (with the README).

Each step builds the observation once, as plain data from the core, and
serialises it once. Bad input of any kind gets a 4xx whose body says what to
send. With a token configured, every route but ``/health`` needs it.

Run it with the ``server`` script (``uv run server``), ``python -m
workflow_orchestrator.server.app``, or ``uvicorn
workflow_orchestrator.server.app:app`` (settings from the environment).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import hmac
import importlib.resources
import importlib.util
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import uvicorn
from fastapi import Body, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from openenv.core.env_server.exceptions import SessionCapacityError
from openenv.core.env_server.http_server import create_fastapi_app
from openenv.core.env_server.types import (
    ConcurrencyConfig,
    EnvironmentMetadata,
    SchemaResponse,
    WSErrorCode,
)
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflow_orchestrator.models import (
    EpisodeRecord,
    ErrorResponse,
    GradeRequest,
    GradeResponse,
    IncomingMessage,
    ResetMessage,
    ResetRequest,
    StateMessage,
    StepMessage,
    StepRequest,
    StepResponse,
    TaskList,
    WorkflowAction,
    WorkflowObservation,
    WorkflowState,
)
from workflow_orchestrator.server.environment import (
    DuplicateEpisodeError,
    EpisodeNotFinishedError,
    EpisodeNotFoundError,
    EpisodeStore,
    StoredEpisode,
    StoreLimits,
    WorkflowEnvironment,
    envelope,
    episode_state,
)
from workflow_orchestrator.server.tasks import UnknownTaskError, default_registry

logger = logging.getLogger("workflow_orchestrator.server")

ENV_NAME = "workflow_orchestrator"
VERSION = "0.1.0"
TOKEN_VARIABLE = "WORKFLOW_ORCHESTRATOR_TOKEN"
DASHBOARD_MODULE = "workflow_orchestrator.server.dashboard"


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything the server can be told; see ``server --help`` and the README."""

    host: str = "127.0.0.1"
    port: int = 8000
    enable_web: bool = True
    max_concurrent_envs: int = 64
    session_idle_timeout_s: float = 300.0
    max_episodes: int = 256
    episode_idle_timeout_s: float = 900.0
    max_body_bytes: int = 64 * 1024
    api_token: str | None = field(default=None, repr=False)
    # permessage-deflate costs more CPU per step than it saves on a fast
    # link; worth turning on only for clients far away.
    ws_compression: bool = False
    access_log: bool = False
    log_level: str = "info"


# Environment variables, read by settings_from_environment() (never at import).
_VARIABLES: dict[str, tuple[str, type]] = {
    "ENABLE_WEB_INTERFACE": ("enable_web", bool),
    "WORKFLOW_ORCHESTRATOR_MAX_SESSIONS": ("max_concurrent_envs", int),
    "WORKFLOW_ORCHESTRATOR_SESSION_IDLE_TIMEOUT": ("session_idle_timeout_s", float),
    "WORKFLOW_ORCHESTRATOR_MAX_EPISODES": ("max_episodes", int),
    "WORKFLOW_ORCHESTRATOR_EPISODE_IDLE_TIMEOUT": ("episode_idle_timeout_s", float),
    "WORKFLOW_ORCHESTRATOR_MAX_BODY_BYTES": ("max_body_bytes", int),
    TOKEN_VARIABLE: ("api_token", str),
}


def settings_from_environment(environ: Mapping[str, str], base: ServerSettings | None = None) -> ServerSettings:
    """Settings from environment variables (unset ones keep ``base``'s values)."""
    values: dict[str, Any] = {}
    for variable, (name, kind) in _VARIABLES.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        if kind is bool:
            values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            try:
                values[name] = kind(raw)
            except ValueError:
                raise SystemExit(f"{variable}={raw!r} is not a valid {kind.__name__}") from None
    return replace(base or ServerSettings(), **values)


def parse_settings(argv: Sequence[str] | None, environ: Mapping[str, str]) -> ServerSettings:
    """Command-line options over environment variables over defaults."""
    defaults = settings_from_environment(environ)
    parser = argparse.ArgumentParser(prog="server", description="Run the workflow_orchestrator server.")
    parser.add_argument("--host", default=defaults.host, help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=defaults.port, help="port (default %(default)s)")
    web = parser.add_mutually_exclusive_group()
    web.add_argument(
        "--web",
        dest="enable_web",
        action="store_true",
        default=defaults.enable_web,
        help="serve the dashboard at /web (the default)",
    )
    web.add_argument("--no-web", dest="enable_web", action="store_false", help="no dashboard")
    parser.add_argument(
        "--max-sessions",
        dest="max_concurrent_envs",
        type=int,
        default=defaults.max_concurrent_envs,
        help="concurrent WebSocket sessions (default %(default)s)",
    )
    parser.add_argument(
        "--session-idle-timeout",
        dest="session_idle_timeout_s",
        type=float,
        default=defaults.session_idle_timeout_s,
        help="seconds before an idle WebSocket session is closed (default %(default)s)",
    )
    parser.add_argument(
        "--max-episodes",
        type=int,
        default=defaults.max_episodes,
        help="episodes kept in the store (default %(default)s)",
    )
    parser.add_argument(
        "--episode-idle-timeout",
        dest="episode_idle_timeout_s",
        type=float,
        default=defaults.episode_idle_timeout_s,
        help="seconds before an idle episode is dropped (default %(default)s)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=defaults.max_body_bytes,
        help="largest request body or WebSocket message (default %(default)s)",
    )
    parser.add_argument(
        "--ws-compression", action="store_true", default=defaults.ws_compression, help="offer permessage-deflate on /ws"
    )
    parser.add_argument("--access-log", action="store_true", default=defaults.access_log, help="log every request")
    parser.add_argument(
        "--log-level", default=defaults.log_level, choices=["critical", "error", "warning", "info", "debug"]
    )
    args = parser.parse_args(argv)
    settings = replace(defaults, **vars(args))
    for name in ("max_concurrent_envs", "max_episodes", "max_body_bytes"):
        if getattr(settings, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("session_idle_timeout_s", "episode_idle_timeout_s"):
        if getattr(settings, name) <= 0:
            parser.error(f"{name} must be positive")
    return settings


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A 4xx with a stable error code and a message that says what to send instead."""

    def __init__(self, status: int, error: str, message: str, expected: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.expected = expected


# What each route wants, shown in its 4xx answers.
EXPECTED_FORMS: dict[str, Any] = {
    "/reset": {"task_id": "easy", "seed": 7},
    "/step": {
        "episode_id": "<episode_id from POST /reset>",
        "action": {"action_type": "delegate", "subtask_id": "<subtask id>", "agent_name": "<agent name>"},
    },
    "/state": "GET /state?episode_id=<episode_id from POST /reset>",
    "/grader": {"episode_id": "<episode_id>"},
    "/episodes": "GET /episodes/<episode_id>",
}

# The core produces string keys only; orjson is twice as fast without OPT_NON_STR_KEYS.
_JSON_OPTIONS = 0


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data, option=_JSON_OPTIONS), status_code=status, media_type="application/json", headers=headers
    )


def error_body(error: str, message: str, expected: Any = None, errors: list[dict[str, Any]] | None = None) -> dict:
    body: dict[str, Any] = {"error": error, "message": message}
    if expected is not None:
        body["expected"] = expected
    if errors is not None:
        body["errors"] = errors
    return body


def expected_form(path: str) -> Any:
    if path.startswith("/episodes/"):
        return EXPECTED_FORMS["/episodes"]
    return EXPECTED_FORMS.get(path)


def describe_validation_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """A one-line summary and the errors without the offending input (which may be huge)."""
    cleaned = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        cleaned.append({"loc": location, "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))})
    summary = "; ".join(f"{'.'.join(item['loc']) or 'body'}: {item['msg']}" for item in cleaned[:5])
    if len(cleaned) > 5:
        summary += f"; and {len(cleaned) - 5} more"
    return summary, cleaned


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: ApiError) -> Response:
        return json_response(error_body(exc.error, exc.message, exc.expected), exc.status)

    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        summary, cleaned = describe_validation_errors(exc.errors())
        path = request.url.path
        if any(item["type"] == "model_attributes_type" and item["loc"] == ["body"] for item in cleaned):
            summary = "the body must be a JSON object"
            if "json" not in request.headers.get("content-type", ""):
                summary += ", sent with the header Content-Type: application/json"
        return json_response(
            error_body("invalid_request", f"{request.method} {path}: {summary}", expected_form(path), cleaned), 422
        )

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        names = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        message = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in message:
            # FastAPI's answer to a body that json.loads cannot take (bad bytes,
            # too deep, a number too long): the same 422 as any other bad JSON.
            return json_response(
                error_body(
                    "invalid_json",
                    "the body could not be parsed as JSON (malformed, not UTF-8, nested too deeply, "
                    "or a number too long)",
                    expected_form(request.url.path),
                ),
                422,
            )
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see GET /docs"
        elif exc.status_code == 405:
            allowed = {k.lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}.get("allow", "")
            message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        error = names.get(exc.status_code, "bad_request" if exc.status_code < 500 else "server_error")
        return json_response(
            error_body(error, message, expected_form(request.url.path)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def on_unexpected_error(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return json_response(error_body("server_error", "internal error; this is a bug in the server"), 500)

    app.add_exception_handler(ApiError, on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected_error)


# --------------------------------------------------------------------------- limits and access control


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with a JSON 413.

    A declared Content-Length over the limit is refused before anything is
    read; a body sent without one is counted as it arrives.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await _send_json(
                        send, 413, error_body("body_too_large", f"request bodies are limited to {self.max_bytes} bytes")
                    )
                    return
                break
        received = 0
        max_bytes = self.max_bytes

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # Raised inside the body read: the app's handler answers it as JSON.
                    raise StarletteHTTPException(413, f"request bodies are limited to {max_bytes} bytes")
            return message

        await self.app(scope, receive_limited, send)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BearerTokenMiddleware:
    """When a token is configured, every route but ``/health`` needs ``Authorization: Bearer <token>``.

    A request without it, or with a wrong one, gets 401 and nothing else;
    a WebSocket handshake is refused with 401 before it is accepted.
    """

    OPEN_PATHS = frozenset({"/health"})

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                return hmac.compare_digest(value, self._expected)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.OPEN_PATHS or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        refusal = error_body("unauthorized", "missing or wrong bearer token")
        if scope["type"] == "http":
            await _send_json(send, 401, refusal, [(b"www-authenticate", b"Bearer")])
            return
        body = orjson.dumps(refusal)
        headers = [
            (b"content-type", b"application/json"),
            (b"www-authenticate", b"Bearer"),
            (b"content-length", str(len(body)).encode()),
        ]
        message = await receive()  # websocket.connect
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            # Servers without the denial-response extension answer 403 to this.
            await send({"type": "websocket.close", "code": 1008})


# --------------------------------------------------------------------------- WebSocket sessions


_incoming_message = TypeAdapter(IncomingMessage)


def _ws_error(message: str, code: WSErrorCode, **extra: Any) -> str:
    return orjson.dumps({"type": "error", "data": {"message": message, "code": code.value, **extra}}).decode()


@dataclass(slots=True)
class Session:
    environment: WorkflowEnvironment
    send: Send
    last_active_at: float


class SessionEndpoint:
    """``/ws``: openenv's session protocol, one episode per connection.

    A raw ASGI endpoint, so that a message goes from the socket to the core
    and back with one validation and one serialisation, on the event loop
    thread, without per-message wrapper objects.
    """

    def __init__(self, store: EpisodeStore, metadata: EnvironmentMetadata, settings: ServerSettings) -> None:
        self.store = store
        self.metadata = metadata
        self.max_sessions = settings.max_concurrent_envs
        self.idle_timeout_s = settings.session_idle_timeout_s
        self.sessions: dict[int, Session] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        if len(self.sessions) >= self.max_sessions:
            # openenv's capacity error, as its own /ws sends it.
            error = SessionCapacityError(active_sessions=len(self.sessions), max_sessions=self.max_sessions)
            reply = _ws_error(
                str(error),
                WSErrorCode.CAPACITY_REACHED,
                active_sessions=error.active_sessions,
                max_sessions=error.max_sessions,
            )
            await _send_quietly(send, {"type": "websocket.send", "text": reply})
            await _send_quietly(send, {"type": "websocket.close", "code": 1013})
            return
        session = Session(WorkflowEnvironment(self.store, self.metadata), send, time.monotonic())
        key = id(session)
        self.sessions[key] = session
        try:
            closed_by_client = await self._serve(session, receive, send)
        except OSError:  # the client went away while we were sending
            closed_by_client = True
        finally:
            # Free the slot and the episode at once: a dropped connection must not hold them.
            del self.sessions[key]
            session.environment.close()
        if not closed_by_client:
            await _send_quietly(send, {"type": "websocket.close", "code": 1000})

    async def _serve(self, session: Session, receive: Receive, send: Send) -> bool:
        """Answer messages until the client closes (True) or asks to (False)."""
        environment = session.environment
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return True
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            session.last_active_at = time.monotonic()
            reply = self.handle(environment, raw)
            if reply is None:
                return False
            await send({"type": "websocket.send", "text": reply})

    def handle(self, environment: WorkflowEnvironment, raw: str | bytes) -> str | None:
        """The reply to one message, or None for ``close``."""
        try:
            message = _incoming_message.validate_json(raw)
        except ValidationError as exc:
            return self._validation_reply(exc)
        try:
            if isinstance(message, StepMessage):
                return _observation_reply(environment.step_payload(message.data))
            if isinstance(message, ResetMessage):
                data = message.data
                return _observation_reply(
                    environment.reset_payload(data.task_id, data.seed, data.worker_count, data.episode_id)
                )
            if isinstance(message, StateMessage):
                return orjson.dumps(
                    {"type": "state", "data": environment.state_payload()}, option=_JSON_OPTIONS
                ).decode()
            return None
        except UnknownTaskError as exc:
            return _ws_error(str(exc), WSErrorCode.VALIDATION_ERROR)
        except (ValueError, RuntimeError) as exc:
            # Parameters the task does not accept, a duplicate episode id, or
            # a step before any reset: the client's to fix.
            return _ws_error(str(exc), WSErrorCode.EXECUTION_ERROR)

    @staticmethod
    def _validation_reply(exc: ValidationError) -> str:
        errors = exc.errors()
        kinds = {error["type"] for error in errors}
        if "json_invalid" in kinds or "json_type" in kinds:
            return _ws_error("message is not valid JSON", WSErrorCode.INVALID_JSON)
        if kinds & {"union_tag_invalid", "union_tag_not_found"}:
            return _ws_error(
                'unknown message type; send {"type": "reset" | "step" | "state" | "close", "data": {...}}',
                WSErrorCode.UNKNOWN_TYPE,
            )
        summary, cleaned = describe_validation_errors(errors)
        return _ws_error(f"invalid message: {summary}", WSErrorCode.VALIDATION_ERROR, errors=cleaned)

    async def close_idle_sessions(self, now: float) -> None:
        for session in list(self.sessions.values()):
            if now - session.last_active_at > self.idle_timeout_s:
                notice = _ws_error(
                    f"session idle for more than {self.idle_timeout_s:g} s; closed", WSErrorCode.SESSION_ERROR
                )
                await _send_quietly(session.send, {"type": "websocket.send", "text": notice})
                await _send_quietly(session.send, {"type": "websocket.close", "code": 1001})


async def _send_quietly(send: Send, message: Message) -> None:
    """Send unless the connection is already gone (then there is no one to tell)."""
    try:
        await send(message)
    except (OSError, RuntimeError):
        pass


def _observation_reply(envelope: dict[str, Any]) -> str:
    return orjson.dumps({"type": "observation", "data": envelope}, option=_JSON_OPTIONS).decode()


# --------------------------------------------------------------------------- the app


def read_package_text(name: str) -> str | None:
    resource = importlib.resources.files("workflow_orchestrator").joinpath(name)
    try:
        return resource.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return None


def build_metadata() -> EnvironmentMetadata:
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
REPLACED_PATHS = frozenset({"/reset", "/step", "/state", "/schema", "/metadata", "/ws"})

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (404, "unknown or expired episode, or nothing to grade"),
        (409, "the episode cannot do this now"),
        (413, "request body too large"),
        (422, "invalid request: the body says what is wrong and what to send"),
    )
}


def build_app(settings: ServerSettings | None = None) -> FastAPI:
    """The whole server as an ASGI app (the dashboard too when ``settings.enable_web``)."""
    settings = settings or ServerSettings()
    registry = default_registry()
    store = EpisodeStore(
        registry, StoreLimits(max_episodes=settings.max_episodes, idle_timeout_s=settings.episode_idle_timeout_s)
    )
    metadata = build_metadata()
    # openenv's create_app() picks between this app and openenv's own Gradio
    # playground (one shared environment) by reading ENABLE_WEB_INTERFACE at
    # call time. This server decides from its settings and mounts its own
    # dashboard, so it takes the API app directly.
    app = create_fastapi_app(
        functools.partial(WorkflowEnvironment, store, metadata),
        WorkflowAction,
        WorkflowObservation,
        concurrency_config=ConcurrencyConfig(
            max_concurrent_envs=settings.max_concurrent_envs,
            session_timeout=settings.session_idle_timeout_s,
        ),
    )
    app.title = "workflow_orchestrator"
    app.version = VERSION
    app.description = metadata.description
    app.router.routes = [route for route in app.router.routes if getattr(route, "path", None) not in REPLACED_PATHS]
    app.state.store = store
    app.state.settings = settings

    sessions = SessionEndpoint(store, metadata, settings)
    app.state.sessions = sessions
    # A raw ASGI endpoint (not a FastAPI route): no dependency injection per connection.
    app.router.routes.append(WebSocketRoute("/ws", sessions))
    add_episode_routes(app, store, metadata)
    install_error_handlers(app)
    install_housekeeping(app, store, sessions, settings)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Added last, so it runs first: an unauthorised request is refused before its body is read.
    if settings.api_token:
        app.add_middleware(BearerTokenMiddleware, token=settings.api_token)
    if settings.enable_web:
        app = mount_dashboard(app, store)
    return app


def mount_dashboard(app: FastAPI, store: EpisodeStore) -> FastAPI:
    """The dashboard at ``/web``, imported only when the web UI is on.

    The dashboard module provides ``mount_dashboard(app, store) -> app``; a
    build without it runs without ``/web`` and says so.
    """
    if importlib.util.find_spec(DASHBOARD_MODULE) is None:
        logger.warning("the dashboard module is not installed; serving without /web")
        return app
    dashboard = importlib.import_module(DASHBOARD_MODULE)
    return dashboard.mount_dashboard(app, store)


def install_housekeeping(
    app: FastAPI, store: EpisodeStore, sessions: SessionEndpoint, settings: ServerSettings
) -> None:
    """One background task: drop idle episodes and close idle sessions."""
    interval = max(0.5, min(settings.episode_idle_timeout_s, settings.session_idle_timeout_s) / 4)
    task: asyncio.Task[None] | None = None

    async def housekeep() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                store.evict()
                await sessions.close_idle_sessions(time.monotonic())
            except Exception:  # keep the loop alive; a failure here must not stop eviction for good
                logger.exception("housekeeping failed")

    async def start() -> None:
        nonlocal task
        task = asyncio.create_task(housekeep())

    async def stop() -> None:
        if task is not None:
            task.cancel()

    app.router.on_startup.append(start)
    app.router.on_shutdown.append(stop)


def add_episode_routes(app: FastAPI, store: EpisodeStore, metadata: EnvironmentMetadata) -> None:
    registry = store.registry
    schema = SchemaResponse(
        action=WorkflowAction.model_json_schema(),
        observation=WorkflowObservation.model_json_schema(),
        state=WorkflowState.model_json_schema(),
    ).model_dump()
    tasks_body = orjson.dumps({"tasks": registry.list_tasks()}, option=_JSON_OPTIONS)

    def lookup(episode_id: str) -> StoredEpisode:
        try:
            return store.get(episode_id)
        except EpisodeNotFoundError as exc:
            raise ApiError(
                404, "episode_expired" if exc.expired else "unknown_episode", str(exc), EXPECTED_FORMS["/reset"]
            ) from None

    @app.post(
        "/reset",
        response_model=StepResponse,
        responses=ERROR_RESPONSES,
        tags=["Environment Control"],
        summary="Start an episode; the observation carries its episode_id",
    )
    async def reset(request: ResetRequest = Body(default_factory=ResetRequest)) -> Response:
        try:
            episode, observation = store.start(request.task_id, request.seed, request.worker_count, request.episode_id)
        except UnknownTaskError as exc:
            raise ApiError(422, "unknown_task", str(exc), {"task_id": registry.task_ids()[0]}) from None
        except DuplicateEpisodeError as exc:
            raise ApiError(409, "duplicate_episode_id", str(exc)) from None
        except ValueError as exc:
            raise ApiError(422, "invalid_parameters", str(exc), EXPECTED_FORMS["/reset"]) from None
        return json_response(envelope(observation, episode.episode_id))

    @app.post(
        "/step",
        response_model=StepResponse,
        responses=ERROR_RESPONSES,
        tags=["Environment Control"],
        summary="Continue the episode episode_id with one action",
    )
    async def step(request: StepRequest) -> Response:
        episode = lookup(request.episode_id)
        if episode.live_sessions:
            raise ApiError(
                409,
                "episode_in_session",
                f"episode {episode.episode_id!r} is being played over a WebSocket session; "
                "step it there, or start your own with POST /reset",
            )
        return json_response(envelope(store.step(episode, request.action.to_core()), episode.episode_id))

    @app.get(
        "/state",
        response_model=WorkflowState,
        responses=ERROR_RESPONSES,
        tags=["State Management"],
        summary="The full state of the episode episode_id",
    )
    async def state(episode_id: str = Query(min_length=1, max_length=64)) -> Response:
        return json_response(episode_state(lookup(episode_id)))

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
    async def grader(request: GradeRequest) -> Response:
        if request.episode_id is None and request.task_id is None:
            raise ApiError(
                422,
                "invalid_request",
                "give episode_id (or task_id for that task's latest finished episode)",
                EXPECTED_FORMS["/grader"],
            )
        if request.episode_id is not None:
            episode = lookup(request.episode_id)
            if request.task_id is not None and request.task_id != episode.task_id:
                raise ApiError(
                    422,
                    "task_mismatch",
                    f"episode {episode.episode_id!r} is of task {episode.task_id!r}, not {request.task_id!r}",
                    EXPECTED_FORMS["/grader"],
                )
        else:
            assert request.task_id is not None
            try:
                episode = store.latest_finished(request.task_id)
            except UnknownTaskError as exc:
                raise ApiError(422, "unknown_task", str(exc), {"task_id": registry.task_ids()[0]}) from None
            except EpisodeNotFoundError:
                raise ApiError(
                    404,
                    "nothing_to_grade",
                    f"no finished episode of task {request.task_id!r} is stored; finish one, or grade by episode_id",
                    EXPECTED_FORMS["/grader"],
                ) from None
        try:
            grade = store.grade(episode)
        except EpisodeNotFinishedError as exc:
            raise ApiError(409, "episode_not_finished", str(exc)) from None
        return json_response(
            {
                **grade,
                "episode_id": episode.episode_id,
                "task_id": episode.task_id,
                "seed": episode.seed,
                "step_count": episode.step_count,
            }
        )

    @app.get(
        "/episodes/{episode_id}",
        response_model=EpisodeRecord,
        responses=ERROR_RESPONSES,
        tags=["State Management"],
        summary="The event log and action trace of an episode",
    )
    async def episode_record(episode_id: str = Path(min_length=1, max_length=64)) -> Response:
        episode = lookup(episode_id)
        core = episode.env.episode
        return json_response(
            {
                "episode_id": episode.episode_id,
                "task_id": episode.task_id,
                "seed": episode.seed,
                "done": episode.finished,
                "step_count": episode.step_count,
                "events": core.log.records,
                "trace": core.trace,
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


# --------------------------------------------------------------------------- entry points


def main(argv: Sequence[str] | None = None) -> None:
    """The ``server`` script: ``server [--host H] [--port P] [--no-web] ...``."""
    settings = parse_settings(argv, os.environ)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    app = build_app(settings)
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_body_bytes,
        ws_per_message_deflate=settings.ws_compression,
        access_log=settings.access_log,
        log_level=settings.log_level,
    )


def tune_garbage_collector() -> None:
    """Keep collection pauses out of step latency.

    Everything built at start-up (modules, the app, the task registry) lives
    as long as the process, so it is frozen out of the collector's scans; a
    step allocates a few hundred short-lived containers, so the youngest
    generation is collected less often than the default every 700.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 50)


def __getattr__(name: str) -> Any:
    # ``uvicorn workflow_orchestrator.server.app:app`` (openenv.yaml's entry):
    # the app is built on first access, with settings from the environment.
    if name == "app":
        application = build_app(settings_from_environment(os.environ))
        globals()["app"] = application
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
