"""ASGI middleware: the request body size limit, the bearer token check and HEAD.

All are plain ASGI wrappers (no per-request objects) and refuse with the
same JSON error bodies as the routes.
"""

from __future__ import annotations

import hmac

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflow_orchestrator.server.http.responses import error_body, send_json


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
                    await send_json(
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


class BearerTokenMiddleware:
    """When a token is configured, every route but ``/health`` needs ``Authorization: Bearer <token>``.

    A request without it, or with a wrong one, gets 401 and nothing else;
    a WebSocket handshake is refused with 401 before it is accepted.
    """

    OPEN_PATHS = frozenset({"/health"})

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                # The scheme's name is case-insensitive (RFC 7235); the token is not.
                scheme, _, credentials = value.strip().partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._expected)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.OPEN_PATHS or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        refusal = error_body("unauthorized", "missing or wrong bearer token")
        if scope["type"] == "http":
            await send_json(send, 401, refusal, [(b"www-authenticate", b"Bearer")])
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


class HeadMiddleware:
    """``HEAD`` on every ``GET`` route: the ``GET`` answer's status and headers, without its body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_head(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_head)
