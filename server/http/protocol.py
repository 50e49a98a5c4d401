"""The server's connections: uvicorn's HTTP and WebSocket protocols with bounds of their own.

uvicorn leaves a connection's limits to whoever deploys it; these subclasses
set them in the server, from :class:`ConnectionLimits`:

* a request's head (request line and headers) is at most ``max_header_bytes``:
  a longer one is answered 431 and the connection closed, counted as the bytes
  arrive (httptools would otherwise gather a header of any size in memory);
* a request must arrive whole (head and body) within ``read_timeout_s`` of its
  first byte, and a new connection must send its first byte within that time:
  otherwise 408 (or, with the body half sent, the connection is closed);
* a connection whose write buffer makes no progress for ``send_timeout_s`` is
  aborted (a client that stops reading, over HTTP or WebSocket): its buffer is
  freed, a send waiting on it fails at once, and its slot is given back. The
  buffer counts as full from its first byte that the kernel did not take, so a
  close that waits on a stuck client is aborted too.

``server/app.py`` passes :func:`protocol_classes` to uvicorn along with its own
options (``limit_concurrency``, ``timeout_keep_alive``, ``timeout_graceful_shutdown``).
Under uvicorn's own command line, ``--http`` and ``--ws`` name the classes here
(:data:`UVICORN_OPTIONS`), which then take their limits from the server's
environment variables when the app is loaded (:func:`use_limits`), and cap
open connections at ``max_connections`` when uvicorn's ``--limit-concurrency``
is not given.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from workflow_orchestrator.server.http.responses import error_body


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024
    read_timeout_s: float = 15.0
    send_timeout_s: float = 20.0
    # Open connections (HTTP and WebSocket) when uvicorn was given no limit_concurrency.
    max_connections: int = 512


class StallGuard:
    """Aborts a transport whose write buffer stays non-empty without shrinking for ``timeout_s``."""

    __slots__ = ("_handle", "_last_size", "_loop", "_timeout_s", "_transport")

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, timeout_s: float) -> None:
        self._loop = loop
        self._transport = transport
        self._timeout_s = timeout_s
        self._handle: asyncio.TimerHandle | None = None
        self._last_size = 0
        # Paused from the first byte the kernel did not take (see the module's docstring).
        transport.set_write_buffer_limits(high=0, low=0)

    def paused(self) -> None:
        if self._handle is None:
            self._last_size = self._transport.get_write_buffer_size()
            self._handle = self._loop.call_later(self._timeout_s, self._check)

    def resumed(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        size = self._transport.get_write_buffer_size()
        if size == 0:
            return
        if size < self._last_size:  # slow, but reading: give it another period
            self._last_size = size
            self._handle = self._loop.call_later(self._timeout_s, self._check)
            return
        self._transport.abort()


class QuietTransport:
    """A transport whose writes after it began closing are dropped rather than raised.

    When a connection is dropped (by the stall guard, a timeout, or the client)
    while an answer is being written, uvicorn marks only its latest request as
    disconnected; an earlier pipelined request still running wrote to the closed
    uvloop handle, which raised, and the server logged a traceback for a client
    that was already gone. Everything else is the wrapped transport's.
    """

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadTooLarge(Exception):
    """Raised in a parser callback to stop at a request head over the limit."""


def _refusal(status: int, reason: str, error: str, message: str) -> bytes:
    body = orjson.dumps(error_body(error, message))
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head size limit, a read timeout and a stall guard."""

    limits = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.limit_concurrency is None:
            self.limit_concurrency = self.limits.max_connections
        # Bytes received while a request's head is incomplete (a bound on what
        # the parser holds), and the size of the head parsed so far.
        self._reading_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._oversized = False
        self._read_timer: asyncio.TimerHandle | None = None
        self._stall: StallGuard | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Every answer is written through it (uvicorn hands self.transport to each request).
        self.transport = QuietTransport(transport)  # type: ignore[assignment]
        self._stall = StallGuard(self.loop, transport, self.limits.send_timeout_s)
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        if self._stall is not None:
            self._stall.resumed()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(self._too_large())

    def send_400_response(self, msg: str) -> None:
        # The parser stops at a callback's exception; ours is raised for an oversized head.
        if self._oversized:
            self._refuse(self._too_large())
        else:
            super().send_400_response(msg)

    def _too_large(self) -> bytes:
        return _refusal(
            431,
            "Request Header Fields Too Large",
            "headers_too_large",
            f"a request's line and headers are limited to {self.limits.max_header_bytes} bytes",
        )

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_header_bytes:
            self._oversized = True
            raise HeadTooLarge

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0
        if self._read_timer is None:
            self._arm_read_timer()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel_read_timer()
        self._reading_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._cancel_read_timer()
        if self._stall is not None:
            self._stall.resumed()
        self._reading_head = False
        # uvicorn applies limit_concurrency to requests but upgrades before its
        # check; an upgrade over the cap is refused here, as a request would be.
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) > limit:  # itself included: at most `limit` open
            self._refuse(
                _refusal(
                    503,
                    "Service Unavailable",
                    "too_many_connections",
                    f"the server holds its limit of {limit} open connections; try again later",
                )
            )
            return
        super().handle_websocket_upgrade()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is not None:
            self._stall.paused()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall is not None:
            self._stall.resumed()

    def _arm_read_timer(self) -> None:
        self._read_timer = self.loop.call_later(self.limits.read_timeout_s, self._read_timed_out)

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self._reading_head:
            self._refuse(
                _refusal(
                    408,
                    "Request Timeout",
                    "request_timeout",
                    f"a request must arrive whole within {self.limits.read_timeout_s:g} s",
                )
            )
        else:
            # The body is half sent and the app is waiting for it: it sees a disconnect.
            self.transport.close()

    def _refuse(self, answer: bytes) -> None:
        self._cancel_read_timer()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol with the stall guard: a client that stops reading is dropped."""

    limits = ConnectionLimits()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._stall = StallGuard(self.loop, self.transport, self.limits.send_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stall.resumed()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stall.paused()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._stall.resumed()


def protocol_classes(limits: ConnectionLimits) -> tuple[type[BoundedHttpProtocol], type[BoundedWebSocketProtocol]]:
    """The HTTP and WebSocket protocol classes for uvicorn's ``http`` and ``ws`` options, with these limits."""
    http = type("BoundedHttpProtocol", (BoundedHttpProtocol,), {"limits": limits})
    ws = type("BoundedWebSocketProtocol", (BoundedWebSocketProtocol,), {"limits": limits})
    return http, ws


# uvicorn's own command line with these protocols: ``uvicorn workflow_orchestrator.server.app:app`` + these.
UVICORN_OPTIONS = (
    "--http",
    f"{__name__}:BoundedHttpProtocol",
    "--ws",
    f"{__name__}:BoundedWebSocketProtocol",
)


def use_limits(limits: ConnectionLimits) -> None:
    """Give the importable classes (named by :data:`UVICORN_OPTIONS`) these limits."""
    BoundedHttpProtocol.limits = limits
    BoundedWebSocketProtocol.limits = limits
