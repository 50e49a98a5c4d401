"""``/classic``: the published environment's schema over this server's episodes.

A client written for the first public workflow_orchestrator (its typed
``EnvClient`` over ``/ws``, its ``inference.py``) points its base URL at
``http://host:8000/classic`` and plays as it did there:

- ``WS /classic/ws``: this server's ``/ws`` sessions, with every observation
  and state frame rewritten into the published fields
  (:mod:`workflow_orchestrator.server.classic`) and the published action's
  ``parameters`` field dropped;
- ``POST /classic/grader`` (``{"task_id"}`` or ``{"episode_id"}``), ``GET
  /classic/tasks`` (the published list of tasks), ``GET /classic/health``,
  ``POST /classic/baseline``: this server's routes, the task list reshaped.

Anything else under ``/classic`` gets a 404 that says what is served. The
layer is plain ASGI around the app, so the session limits, timeouts, auth
and the episode store are the same as for every other client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflow_orchestrator.server.classic import classic_observation, classic_state

PREFIX = "/classic"
# Routes under the prefix and the routes of this server that answer them.
HTTP_ROUTES = {
    ("POST", "/grader"): "/grader",
    ("GET", "/tasks"): "/tasks",
    ("GET", "/health"): "/health",
    ("HEAD", "/health"): "/health",
    ("POST", "/baseline"): "/baseline",
}


class ClassicSchemaMiddleware:
    """Serves ``/classic/...`` from the app's own routes, in the published schema."""

    def __init__(self, app: ASGIApp, tasks: list[dict[str, Any]]) -> None:
        self.app = app
        self.tasks = {task["task_id"]: task for task in tasks}
        self.descriptions = {task_id: str(task.get("description", "")) for task_id, task in self.tasks.items()}
        self.task_list = orjson.dumps(
            [
                {
                    "task_id": task["task_id"],
                    "name": task.get("title", task["task_id"]),
                    "difficulty": task.get("difficulty", ""),
                    "description": task.get("description", ""),
                    "subtask_count": task.get("parameters", {}).get("subtasks", 0),
                    "agent_count": task.get("parameters", {}).get("agents", 0),
                }
                for task in tasks
                if task.get("family", "scenario") == "scenario"
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] not in ("http", "websocket") or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        inner = path[len(PREFIX) :] or "/"
        if scope["type"] == "websocket":
            if inner != "/ws":
                await send({"type": "websocket.close", "code": 4404, "reason": "only /classic/ws is served"})
                return
            await self.app(_moved(scope, "/ws"), self._receive_actions(receive), self._send_frames(send))
            return
        method = scope.get("method", "GET")
        if (method, inner) == ("GET", "/tasks"):
            await _answer(send, 200, self.task_list)
            return
        target = HTTP_ROUTES.get((method, inner))
        if target is None:
            served = ", ".join(f"{m} {PREFIX}{p}" for m, p in HTTP_ROUTES) + f", WS {PREFIX}/ws"
            body = orjson.dumps(
                {"error": "not_found", "message": f"{method} {path} is not served; served here: {served}"}
            )
            await _answer(send, 404, body)
            return
        await self.app(_moved(scope, target), receive, send)

    def _receive_actions(self, receive: Receive) -> Receive:
        async def receive_action() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                raw = message.get("text") or message.get("bytes")
                frame = _loads(raw)
                if isinstance(frame, dict) and frame.get("type") == "step" and isinstance(frame.get("data"), dict):
                    frame["data"].pop("parameters", None)
                    return {"type": "websocket.receive", "text": orjson.dumps(frame).decode()}
            return message

        return receive_action

    def _send_frames(self, send: Send) -> Send:
        async def send_frame(message: Message) -> None:
            if message["type"] == "websocket.send":
                raw = message.get("text") or message.get("bytes")
                frame = _loads(raw)
                if isinstance(frame, dict):
                    rewritten = self._rewrite(frame)
                    if rewritten is not None:
                        message = {"type": "websocket.send", "text": orjson.dumps(rewritten).decode()}
            await send(message)

        return send_frame

    def _rewrite(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        data = frame.get("data")
        if not isinstance(data, Mapping):
            return None
        if frame.get("type") == "observation" and isinstance(data.get("observation"), Mapping):
            observation = {**data["observation"], "reward": data.get("reward"), "done": data.get("done", False)}
            return {**frame, "data": {**data, "observation": classic_observation(observation, self.descriptions)}}
        if frame.get("type") == "state":
            return {**frame, "data": classic_state(data, self.tasks)}
        return None


def _moved(scope: Scope, path: str) -> Scope:
    return {**scope, "path": path, "raw_path": path.encode()}


def _loads(raw: Any) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
