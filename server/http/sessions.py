"""``/ws``: openenv's session protocol, one episode per connection, and the cleanup of idle ones.

:class:`SessionEndpoint` is a raw ASGI endpoint that holds the live
sessions; :func:`install_housekeeping` runs one background task that closes
idle sessions and drops idle episodes from the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Response
from openenv.core.env_server.exceptions import SessionCapacityError
from openenv.core.env_server.types import EnvironmentMetadata, WSErrorCode
from pydantic import TypeAdapter, ValidationError
from starlette.types import Message, Receive, Scope, Send

from workflow_orchestrator.models import (
    BatchResetMessage,
    BatchStepMessage,
    IncomingMessage,
    ResetMessage,
    StateMessage,
    StepMessage,
)
from workflow_orchestrator.server.environment import (
    EpisodeStore,
    HistoryPage,
    WorkflowEnvironment,
    note_ignored_options,
)
from workflow_orchestrator.server.http.batch import (
    LOOP_BUDGET_S,
    BatchBudget,
    BatchCapacityError,
    BatchSession,
    finish_step,
    plain_batch_actions,
)
from workflow_orchestrator.server.http.responses import JSON_OPTIONS, describe_validation_errors
from workflow_orchestrator.server.http.routes import archived, used_id_message
from workflow_orchestrator.server.http.settings import ServerSettings
from workflow_orchestrator.server.tasks import UnknownTaskError

logger = logging.getLogger("workflow_orchestrator.server")


_incoming_message = TypeAdapter(IncomingMessage)
# What a batch_step message holds (messages without it are no batch step: read by the models at once).
_BATCH_STEP = '"batch_step"'
_BATCH_STEP_BYTES = b'"batch_step"'


def _ws_error(message: str, code: WSErrorCode, **extra: Any) -> str:
    return orjson.dumps({"type": "error", "data": {"message": message, "code": code.value, **extra}}).decode()


@dataclass(slots=True)
class Session:
    environment: WorkflowEnvironment
    send: Send
    last_active_at: float
    # The task serving the connection, and when its reply now being sent began
    # (0.0: none is), for the housekeeping to stop a send that takes too long.
    task: asyncio.Task[Any] | None = None
    sending_since: float = 0.0
    timed_out: bool = False
    closing: bool = False
    # Its batch of episodes (batch_reset), if it started one.
    batch: BatchSession | None = None


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
        self.send_timeout_s = settings.send_timeout_s
        self.sessions: dict[int, Session] = {}
        self.batch_budget = BatchBudget(settings.max_batch_episodes)
        # Closing notices under way (kept here so that they are not collected mid-send).
        self._closing: set[asyncio.Task[None]] = set()

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
        client = scope.get("client")
        environment = WorkflowEnvironment(self.store, self.metadata, client=client[0] if client else "unknown")
        session = Session(environment, send, time.monotonic(), asyncio.current_task())
        key = id(session)
        self.sessions[key] = session
        try:
            closed_by_client = await self._serve(session, receive, send)
        except OSError:  # the client went away while we were sending
            closed_by_client = True
        except asyncio.CancelledError:
            if not session.timed_out:
                raise
            # Stopped by the housekeeping: the client left a reply unread for too long.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            logger.info("a WebSocket client left a reply unread for %g s; dropped", self.send_timeout_s)
            return
        finally:
            # Free the slot and the episodes at once: a dropped connection must not hold them.
            del self.sessions[key]
            session.environment.close()
            if session.batch is not None:
                session.batch.close()
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
            # A batch step of plain actions skips the models (the same actions, the same answer).
            plain = (
                plain_batch_actions(raw) if (_BATCH_STEP_BYTES if type(raw) is bytes else _BATCH_STEP) in raw else None
            )
            if plain is not None:
                reply: str | None = await self.answer_batch(session, plain)
            else:
                try:
                    incoming = _incoming_message.validate_json(raw)
                except ValidationError as exc:
                    reply = self._validation_reply(exc)
                else:
                    reply = await self._answer_valid(session, environment, incoming)
            if reply is None:
                return False
            episode = environment.episode
            if episode is not None and episode.archived is not None and not episode.archived.done():
                # The episode just finished: its answer goes out once the archive has it.
                await archived(episode)
            session.sending_since = session.last_active_at
            await send({"type": "websocket.send", "text": reply})
            session.sending_since = 0.0

    async def _answer_valid(
        self, session: Session, environment: WorkflowEnvironment, incoming: IncomingMessage
    ) -> str | None:
        if isinstance(incoming, (BatchResetMessage, BatchStepMessage)):
            return await self.answer_batch(session, incoming)
        if isinstance(incoming, ResetMessage) and incoming.data.episode_id is not None:
            # A chosen id is looked up in the archive too (off the event loop), as /reset does.
            used = await used_id_message(self.store, incoming.data.episode_id)
            if used is not None:
                return _ws_error(used, WSErrorCode.EXECUTION_ERROR)
        return self.answer(environment, incoming)

    def answer(self, environment: WorkflowEnvironment, message: IncomingMessage) -> str | None:
        """The reply to one valid message, or None for ``close``."""
        try:
            if isinstance(message, StepMessage):
                return _observation_reply(environment.step_payload(message.data))
            if isinstance(message, ResetMessage):
                data = message.data
                payload = environment.reset_payload(
                    data.task_id, data.seed, data.worker_count, data.episode_id, reward_mode=data.reward_mode
                )
                return _observation_reply(note_ignored_options(payload, data.ignored_options()))
            if isinstance(message, StateMessage):
                try:
                    page = HistoryPage.parse(message.data)
                except ValueError as exc:
                    return _ws_error(f"invalid state message: {exc}", WSErrorCode.VALIDATION_ERROR)
                return orjson.dumps(
                    {"type": "state", "data": environment.state_payload(page)}, option=JSON_OPTIONS
                ).decode()
            return None
        except UnknownTaskError as exc:
            return _ws_error(str(exc), WSErrorCode.VALIDATION_ERROR)
        except (ValueError, RuntimeError) as exc:
            # Parameters the task does not accept, a duplicate episode id, or
            # a step before any reset: the client's to fix.
            return _ws_error(str(exc), WSErrorCode.EXECUTION_ERROR)

    async def answer_batch(
        self, session: Session, message: BatchResetMessage | BatchStepMessage | list[dict[str, Any]]
    ) -> str:
        """The reply to a batch message (or a batch step's plain actions); the session waits for it
        before reading on.

        A batch step runs on the event loop for at most :data:`LOOP_BUDGET_S`, and what is left of
        it (the episodes not yet stepped, then the reply) on a worker thread: a small batch costs no
        trip to a thread and back, and a batch of 256 episodes does not hold the loop. A batch reset
        runs on a worker thread."""
        if session.batch is None:
            session.batch = BatchSession(self.store.registry, self.batch_budget, self.store.outcome_secret)
        batch = session.batch
        try:
            if isinstance(message, BatchResetMessage):
                return await asyncio.to_thread(batch.reset, message.data)
            pending = batch.begin_step(message if isinstance(message, list) else message.data)
            if not pending.run(LOOP_BUDGET_S):
                return await asyncio.to_thread(finish_step, pending)
            return finish_step(pending)
        except UnknownTaskError as exc:
            return _ws_error(str(exc), WSErrorCode.VALIDATION_ERROR)
        except BatchCapacityError as exc:
            return _ws_error(str(exc), WSErrorCode.CAPACITY_REACHED)
        except (ValueError, RuntimeError) as exc:
            return _ws_error(str(exc), WSErrorCode.EXECUTION_ERROR)

    @staticmethod
    def _validation_reply(exc: ValidationError) -> str:
        errors = exc.errors()
        kinds = {error["type"] for error in errors}
        if "json_invalid" in kinds or "json_type" in kinds:
            return _ws_error("message is not valid JSON", WSErrorCode.INVALID_JSON)
        if kinds & {"union_tag_invalid", "union_tag_not_found"}:
            return _ws_error(
                'unknown message type; send {"type": "reset" | "step" | "state" | "close" | "batch_reset" '
                '| "batch_step", "data": {...}}',
                WSErrorCode.UNKNOWN_TYPE,
            )
        summary, cleaned = describe_validation_errors(errors)
        return _ws_error(f"invalid message: {summary}", WSErrorCode.VALIDATION_ERROR, errors=cleaned)

    def close_idle_sessions(self, now: float) -> None:
        """Close idle sessions and stop sends that take too long, waiting on no client.

        Each idle session gets its notice and close from a task of its own,
        bounded by the send timeout, so a client that stopped reading delays
        no one else; a session whose reply has been unread for longer than
        the send timeout is stopped, which frees its slot and its episode.
        """
        for session in list(self.sessions.values()):
            if session.sending_since and now - session.sending_since > self.send_timeout_s:
                if not session.timed_out and session.task is not None:
                    session.timed_out = True
                    session.task.cancel()
            elif not session.closing and now - session.last_active_at > self.idle_timeout_s:
                session.closing = True
                task = asyncio.create_task(self._close_idle(session))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def _close_idle(self, session: Session) -> None:
        notice = _ws_error(f"session idle for more than {self.idle_timeout_s:g} s; closed", WSErrorCode.SESSION_ERROR)
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await _send_quietly(session.send, {"type": "websocket.send", "text": notice})
                await _send_quietly(session.send, {"type": "websocket.close", "code": 1001})
        except TimeoutError:
            if not session.timed_out and session.task is not None:
                session.timed_out = True
                session.task.cancel()


async def _send_quietly(send: Send, message: Message) -> None:
    """Send unless the connection is already gone (then there is no one to tell)."""
    try:
        await send(message)
    except (OSError, RuntimeError):
        pass


def _observation_reply(envelope: dict[str, Any]) -> str:
    return orjson.dumps({"type": "observation", "data": envelope}, option=JSON_OPTIONS).decode()


def add_health_route(app: FastAPI, sessions: SessionEndpoint) -> None:
    """``GET /health``: openenv's answer (``status``) and the WebSocket sessions held and allowed,
    which a router reads to place new sessions (``cluster/router.py``)."""

    @app.get("/health", tags=["Health"], summary="Whether the server is up, and its WebSocket sessions")
    async def health() -> Response:
        body = {"status": "healthy", "sessions": len(sessions.sessions), "max_sessions": sessions.max_sessions}
        return Response(orjson.dumps(body), media_type="application/json")


def install_housekeeping(
    app: FastAPI, store: EpisodeStore, sessions: SessionEndpoint, settings: ServerSettings
) -> None:
    """One background task: drop idle episodes, close idle sessions, stop stuck sends."""
    interval = max(
        0.5, min(settings.episode_idle_timeout_s, settings.session_idle_timeout_s, settings.send_timeout_s) / 4
    )
    task: asyncio.Task[None] | None = None

    async def housekeep() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                store.evict()
                sessions.close_idle_sessions(time.monotonic())
            except Exception:  # keep the loop alive; a failure here must not stop eviction for good
                logger.exception("housekeeping failed")

    async def start() -> None:
        nonlocal task
        task = asyncio.create_task(housekeep())

    async def stop() -> None:
        if task is not None:
            task.cancel()
        if store.archive is not None:
            # Writes already submitted finish first; then the file is closed.
            await asyncio.to_thread(store.archive.close)

    app.router.on_startup.append(start)
    app.router.on_shutdown.append(stop)
