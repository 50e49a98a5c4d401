"""The router: one entry point in front of several server replicas, a raw ASGI app.

* ``/ws``: each WebSocket session is placed, when it connects, on the live
  replica with the fewest sessions (ties in turn) and relayed there for its
  life, frame by frame. A replica that answers the session's first message
  with the session capacity error (``CAPACITY_REACHED`` with
  ``max_sessions``) is passed over and the message sent to the next one;
  only when every replica is full does the client get that error.
* with ``ws_redirect``, ``/ws`` is answered with a ``307`` redirect to the
  replica's own ``/ws`` instead (placed on the live replica with the fewest
  sessions that has room, from its ``/health``): the client then talks to the
  replica directly and the router adds nothing to a step;
* ``POST /reset`` goes to the least-loaded live replica; the episode id its
  replica makes starts with the replica's name and a dot (``r0-1f3a.9c...``,
  the server's ``--replica-name``), so ``POST /step``, ``GET /state``,
  ``POST /grader`` and ``GET /episodes/{id}`` are forwarded to the replica the
  id names, with nothing remembered here. An id the client chose (no
  replica's name) goes to a replica picked by a hash of the id, the same on
  every request.
* ``GET /health`` answers for the whole set (every replica, live or not);
  ``/tasks``, ``/metadata``, ``/schema`` and the rest are forwarded to any
  live replica (they answer the same).

Faults (the codes are in the README):

* a request for an episode of a replica that is down gets ``503
  replica_unavailable`` at once (no wait for a timeout);
* ``/step`` or ``/state`` of an episode of a replica that restarted since
  gets ``410 episode_lost`` (its in-flight episodes died with it; finished
  ones are still graded from its archive);
* a WebSocket session whose replica goes down gets an error frame (code
  ``SESSION_ERROR``, ``reason`` ``replica_unavailable``) and a close with
  code 1011 at once; a new session goes to a live replica.

The replicas come from a :class:`ReplicaSource`: a fixed list of URLs
(:class:`StaticReplicas`) or Ray actors (``cluster.ray``). A background task
checks each replica's ``/health`` every ``health_interval_s`` and asks the
source for a restarted replica's new address.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

import httpx
import orjson
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

logger = logging.getLogger("workflow_orchestrator.cluster")

JSON = [(b"content-type", b"application/json")]
# Routes that carry an episode id, and where it is.
EPISODE_BODY_PATHS = frozenset({"/step", "/grader"})
# Hop-by-hop headers, never forwarded.
HOP_HEADERS = frozenset(
    {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"content-length", b"te", b"trailer"}
)
HEALTH_TIMEOUT_S = 2.0
# The WebSocket close code for a session whose replica went away (RFC 6455: internal error).
REPLICA_LOST_CLOSE = 1011


@dataclass(frozen=True, slots=True)
class ReplicaAddress:
    """Where a replica answers, and the name its episode ids start with (``name`` or ``name-incarnation``)."""

    name: str
    url: str
    prefix: str
    pid: int | None = None


class ReplicaSource(Protocol):
    """Where the router learns the replicas' addresses."""

    def names(self) -> list[str]: ...

    async def address(self, name: str) -> ReplicaAddress | None:
        """The replica's current address, or None while it is not up."""
        ...


@dataclass(slots=True)
class StaticReplicas:
    """Replicas at fixed URLs, each started with ``--replica-name`` its name (``NAME=URL`` on the command line)."""

    urls: dict[str, str]

    def names(self) -> list[str]:
        return list(self.urls)

    async def address(self, name: str) -> ReplicaAddress | None:
        return ReplicaAddress(name, self.urls[name].rstrip("/"), name)


@dataclass(slots=True)
class Replica:
    name: str
    address: ReplicaAddress | None = None
    alive: bool = False
    # WebSocket sessions this router holds on it, and HTTP requests under way.
    sessions: int = 0
    requests: int = 0
    # Episodes started over HTTP and WebSocket sessions placed on it through this router.
    started: int = 0
    restarts: int = 0
    down_since: float | None = None
    # Since when its health checks time out (None: they answer).
    slow_since: float | None = None
    http: httpx.AsyncClient | None = None
    # What its last /health said: the WebSocket sessions it held and allows (None: not said), and the
    # sessions sent to it by redirect since that answer (they count until the next answer does).
    reported_sessions: int | None = None
    max_sessions: int | None = None
    redirected: int = 0

    @property
    def load(self) -> int:
        return self.sessions + self.requests

    @property
    def redirect_load(self) -> int:
        """Its sessions as a redirecting router knows them: the last health answer's, plus those sent since."""
        return (self.reported_sessions or 0) + self.redirected + self.requests

    @property
    def full(self) -> bool:
        return self.max_sessions is not None and (self.reported_sessions or 0) + self.redirected >= self.max_sessions

    @property
    def ws_url(self) -> str:
        assert self.address is not None
        url = self.address.url
        return ("wss://" + url[8:] if url.startswith("https://") else "ws://" + url[7:]) + "/ws"


class ReplicaError(Exception):
    """A replica cannot take a request: the answer to give the client instead."""

    def __init__(self, status: int, code: str, message: str, replica: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.replica = replica

    def body(self) -> bytes:
        return orjson.dumps({"error": self.code, "message": str(self), "replica": self.replica})


class Router:
    """The ASGI app. ``health_interval_s``: how often each replica's ``/health`` is read;
    ``hang_timeout_s``: how long a replica may leave it unanswered before it is taken for down."""

    def __init__(
        self,
        source: ReplicaSource,
        *,
        health_interval_s: float = 0.5,
        request_timeout_s: float = 60.0,
        max_message_bytes: int = 16 * 1024 * 1024,
        max_body_bytes: int = 1024 * 1024,
        hang_timeout_s: float = 15.0,
        ws_redirect: bool = False,
    ) -> None:
        self.source = source
        self.replicas = {name: Replica(name) for name in source.names()}
        if not self.replicas:
            raise ValueError("the router needs at least one replica")
        self.names = list(self.replicas)
        self.health_interval_s = health_interval_s
        self.request_timeout_s = request_timeout_s
        self.max_message_bytes = max_message_bytes
        self.max_body_bytes = max_body_bytes
        self.hang_timeout_s = hang_timeout_s
        # Send each new WebSocket session to its replica with a redirect (the client then talks to the
        # replica directly) rather than relaying its frames; see _redirect.
        self.ws_redirect = ws_redirect
        self._turn = itertools.count()
        self._health_task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    # ------------------------------------------------------------------ replicas

    def live(self) -> list[Replica]:
        return [replica for replica in self.replicas.values() if replica.alive and replica.address is not None]

    def least_loaded(self, exclude: Sequence[str] = ()) -> Replica | None:
        """The live replica with the lowest load, ties broken in turn."""
        candidates = [replica for replica in self.live() if replica.name not in exclude]
        if not candidates:
            return None
        lowest = min(replica.load for replica in candidates)
        tied = [replica for replica in candidates if replica.load == lowest]
        return tied[next(self._turn) % len(tied)]

    def replica_of(self, episode_id: str, *, current_only: bool) -> Replica:
        """The replica that holds ``episode_id`` (see the module's docstring), or the ReplicaError to answer."""
        prefix, dot, _ = episode_id.partition(".")
        if dot:
            for replica in self.replicas.values():
                if replica.address is not None and replica.address.prefix == prefix:
                    return self._checked(replica, episode_id)
            name = prefix.rsplit("-", 1)[0]
            replica_named = self.replicas.get(name)
            if replica_named is not None:
                # An earlier incarnation of this replica made the episode.
                if current_only:
                    raise ReplicaError(
                        410,
                        "episode_lost",
                        f"episode {episode_id!r} was in flight on replica {name!r}, which has restarted since: "
                        "the episode is lost; start another with POST /reset",
                        name,
                    )
                return self._checked(replica_named, episode_id)
        # An id the client chose: the replica a hash of it picks, the same every time.
        return self._checked(self.replicas[self.names[zlib.crc32(episode_id.encode()) % len(self.names)]], episode_id)

    def _checked(self, replica: Replica, episode_id: str) -> Replica:
        if not replica.alive or replica.address is None:
            raise ReplicaError(
                503,
                "replica_unavailable",
                f"replica {replica.name!r}, which holds episode {episode_id!r}, is down: its episodes in flight "
                "are lost (finished ones can be graded once it is back); start another with POST /reset",
                replica.name,
            )
        return replica

    async def refresh(self) -> None:
        """Read every replica's health once; a replica found down is marked so and its sessions closed."""
        await asyncio.gather(*(self._refresh_one(replica) for replica in self.replicas.values()))

    async def _refresh_one(self, replica: Replica) -> None:
        if replica.address is None or not replica.alive:
            try:
                address = await asyncio.wait_for(
                    self.source.address(replica.name), timeout=max(1.0, self.health_interval_s)
                )
            except Exception:  # the source cannot say yet (a restarting actor)
                address = None
            if address is None:
                return
            if replica.address is not None and address.prefix != replica.address.prefix:
                replica.restarts += 1
            if replica.address is None or address.url != replica.address.url:
                await self._set_address(replica, address)
            replica.address = address
        assert replica.http is not None
        try:
            response = await replica.http.get("/health", timeout=HEALTH_TIMEOUT_S)
            healthy = response.status_code == 200
            replica.slow_since = None
        except httpx.TimeoutException:
            # Busy is not down: a replica is taken for down only when slow this long (a process
            # that died refuses or drops the connection at once).
            now = time.monotonic()
            replica.slow_since = replica.slow_since or now
            healthy = replica.alive and now - replica.slow_since < self.hang_timeout_s
        except httpx.HTTPError:
            healthy = False
        else:
            if healthy:
                _read_load(replica, response.content)
        if healthy and not replica.alive:
            logger.info("replica %s is up at %s", replica.name, replica.address.url if replica.address else "?")
            replica.down_since = None
        elif not healthy and replica.alive:
            self.mark_down(replica)
        replica.alive = healthy

    async def _set_address(self, replica: Replica, address: ReplicaAddress) -> None:
        if replica.http is not None:
            await replica.http.aclose()
        replica.http = httpx.AsyncClient(
            base_url=address.url,
            timeout=self.request_timeout_s,
            trust_env=False,
            # Idle connections are dropped well before the replica's keep-alive timeout (5 s by default)
            # closes them: a request sent on a connection the replica is closing would be lost.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256, keepalive_expiry=2.0),
        )

    def mark_down(self, replica: Replica) -> None:
        if replica.alive:
            logger.warning("replica %s is down", replica.name)
        replica.alive = False
        replica.down_since = replica.down_since or time.monotonic()

    async def _health_loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # keep checking; one failure must not stop it for good
                logger.exception("checking the replicas failed")
            await asyncio.sleep(self.health_interval_s)

    async def wait_ready(self, count: int | None = None, timeout_s: float = 60.0) -> None:
        """Wait until ``count`` replicas (default: all) are live."""
        wanted = len(self.replicas) if count is None else count
        deadline = time.monotonic() + timeout_s
        while len(self.live()) < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.live())} of {wanted} replicas live after {timeout_s:g} s")
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.refresh()
                self._health_task = asyncio.create_task(self._health_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            self._health_task = None
        for replica in self.replicas.values():
            if replica.http is not None:
                await replica.http.aclose()
                replica.http = None

    # ------------------------------------------------------------------ HTTP

    async def _http(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/health" and method in ("GET", "HEAD"):
            await _answer(send, 200, self.health())
            return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await _answer(send, 413, ReplicaError(413, "body_too_large", "request body too large").body())
            return
        replica: Replica
        try:
            if path == "/reset" and method == "POST":
                replica = self._reset_target(body)
            elif path in EPISODE_BODY_PATHS and method == "POST":
                target = self._body_target(body, current_only=path == "/step")
                if target is None:  # /grader by task_id: the replicas' latest
                    await self._grade_latest(scope, body, send)
                    return
                replica = target
            elif path == "/state" and method in ("GET", "HEAD"):
                episode_ids = parse_qs(scope.get("query_string", b"").decode()).get("episode_id")
                replica = self.replica_of(episode_ids[0], current_only=True) if episode_ids else self._any_live()
            elif path.startswith("/episodes/") and method in ("GET", "HEAD"):
                replica = self.replica_of(unquote(path[len("/episodes/") :]), current_only=False)
            else:
                replica = self._any_live()
            status, headers, content = await self._forward(replica, scope, body)
        except ReplicaError as error:
            if error.status != 503 or error.replica is None or not self._placed_anywhere(path, body):
                await _answer(send, error.status, error.body())
                return
            # A replica that went down before the health check saw it: another one starts the episode.
            try:
                replica, (status, headers, content) = await self._forward_elsewhere(scope, body, [error.replica])
            except ReplicaError as again:
                await _answer(send, again.status, again.body())
                return
        if path == "/reset" and status == 200:
            replica.started += 1
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _placed_anywhere(self, path: str, body: bytes) -> bool:
        """Whether the request may go to any replica (no episode of one): a reset without a chosen id,
        or a route every replica answers alike."""
        if path == "/reset":
            return not _field(body, "episode_id")
        return path not in EPISODE_BODY_PATHS and path != "/state" and not path.startswith("/episodes/")

    async def _forward_elsewhere(
        self, scope: dict[str, Any], body: bytes, tried: list[str]
    ) -> tuple[Replica, tuple[int, list[Any], bytes]]:
        while True:
            replica = self.least_loaded(exclude=tried)
            if replica is None:
                raise ReplicaError(503, "no_replica", "no replica is up; try again shortly")
            try:
                return replica, await self._forward(replica, scope, body)
            except ReplicaError as error:
                if error.status != 503:
                    raise
                tried.append(replica.name)

    def _any_live(self) -> Replica:
        replica = self.least_loaded()
        if replica is None:
            raise ReplicaError(503, "no_replica", "no replica is up; try again shortly")
        return replica

    def _reset_target(self, body: bytes) -> Replica:
        episode_id = _field(body, "episode_id")
        if isinstance(episode_id, str) and episode_id:
            return self.replica_of(episode_id, current_only=True)
        return self._any_live()

    def _body_target(self, body: bytes, *, current_only: bool) -> Replica | None:
        episode_id = _field(body, "episode_id")
        if isinstance(episode_id, str) and episode_id:
            return self.replica_of(episode_id, current_only=current_only)
        if _field(body, "task_id") is not None:
            return None
        return self._any_live()  # a malformed request: any replica says what is wrong

    async def _forward(self, replica: Replica, scope: dict[str, Any], body: bytes) -> tuple[int, list[Any], bytes]:
        assert replica.http is not None
        headers = [(name, value) for name, value in scope["headers"] if name not in HOP_HEADERS]
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", client[0].encode()))
        query = scope.get("query_string", b"")
        url = scope["raw_path"].decode() if scope.get("raw_path") else scope["path"]
        if query:
            url += "?" + query.decode()
        replica.requests += 1
        try:
            response = await replica.http.request(scope["method"], url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise ReplicaError(
                504, "replica_timeout", f"replica {replica.name!r} did not answer in time", replica.name
            ) from None
        except httpx.TransportError as exc:
            logger.warning("replica %s: %s: %s", replica.name, type(exc).__name__, exc)
            self.mark_down(replica)
            raise ReplicaError(
                503,
                "replica_unavailable",
                f"replica {replica.name!r} went down: its episodes in flight are lost; start another with POST /reset",
                replica.name,
            ) from None
        finally:
            replica.requests -= 1
        out = [(name, value) for name, value in response.headers.raw if name.lower() not in HOP_HEADERS]
        return response.status_code, out, response.content

    async def _grade_latest(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        """``/grader`` by task_id: every live replica is asked; a grade wins over a refusal."""
        answers = await asyncio.gather(
            *(self._forward(replica, scope, body) for replica in self.live()), return_exceptions=True
        )
        found = [answer for answer in answers if not isinstance(answer, BaseException)]
        if not found:
            await _answer(send, 503, ReplicaError(503, "no_replica", "no replica is up; try again shortly").body())
            return
        status, headers, content = min(found, key=lambda answer: answer[0] != 200)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def health(self) -> bytes:
        live = self.live()
        return orjson.dumps(
            {
                "status": "healthy" if len(live) == len(self.replicas) else ("degraded" if live else "unhealthy"),
                "replicas_live": len(live),
                "replicas": [
                    {
                        "name": replica.name,
                        "url": replica.address.url if replica.address else None,
                        "prefix": replica.address.prefix if replica.address else None,
                        "pid": replica.address.pid if replica.address else None,
                        "alive": replica.alive,
                        "sessions": replica.sessions,
                        # What the replica itself last said (sessions of every client, relayed or not).
                        "sessions_held": replica.reported_sessions,
                        "max_sessions": replica.max_sessions,
                        "episodes_started": replica.started,
                        "restarts": replica.restarts,
                    }
                    for replica in self.replicas.values()
                ],
            }
        )

    # ------------------------------------------------------------------ WebSocket

    async def _websocket(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if scope["path"] != "/ws":
            await send({"type": "websocket.close", "code": 4404, "reason": "only /ws is served here"})
            return
        if self.ws_redirect and "websocket.http.response" in scope.get("extensions", {}):
            replica = self.least_loaded_with_room()
            if replica is not None:
                await self._redirect(scope, replica, send)
                return
            # Every replica full or down: the client gets the relay's answer (the capacity error or "none up").
        await send({"type": "websocket.accept"})
        upstream, replica = await self._place(receive, send)
        if upstream is None or replica is None:
            return
        replica.sessions += 1
        replica.started += 1
        try:
            await self._relay(upstream, replica, receive, send)
        finally:
            replica.sessions -= 1

    def least_loaded_with_room(self) -> Replica | None:
        """For a redirect: the live replica with the fewest sessions that has room for one more, ties in turn."""
        candidates = [replica for replica in self.live() if not replica.full]
        if not candidates:
            return None
        lowest = min(replica.redirect_load for replica in candidates)
        tied = [replica for replica in candidates if replica.redirect_load == lowest]
        return tied[next(self._turn) % len(tied)]

    async def _redirect(self, scope: dict[str, Any], replica: Replica, send: Any) -> None:
        """Answer the WebSocket handshake with ``307`` to the replica's ``/ws``: a client that follows redirects
        (the ``websockets`` library does, and with it this project's client) then talks to the replica directly,
        so the router adds nothing to a step. The replicas must be reachable at the addresses the router uses."""
        replica.redirected += 1
        replica.started += 1
        location = replica.ws_url
        query = scope.get("query_string") or b""
        if query:
            location += "?" + query.decode("latin-1")
        headers = [
            (b"location", location.encode("latin-1")),
            (b"content-length", b"0"),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "websocket.http.response.start", "status": 307, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b""})

    async def _place(
        self, receive: Callable[[], Awaitable[Any]], send: Any
    ) -> tuple[ClientConnection | None, Replica | None]:
        """Connect upstream on the least-loaded replica that has room for the session.

        The client's first message is held until a replica accepts it: a full
        replica answers it with the capacity error, and the next one is tried.
        """
        tried: list[str] = []
        first: str | bytes | None = None
        first_read = False
        last_error: str | None = None
        while True:
            replica = self.least_loaded(exclude=tried)
            if replica is None:
                refusal = last_error or _ws_error("no replica is up; connect again shortly", "SESSION_ERROR")
                await _send_quietly(send, {"type": "websocket.send", "text": refusal})
                await _send_quietly(send, {"type": "websocket.close", "code": 1013})
                return None, None
            tried.append(replica.name)
            try:
                upstream = await ws_connect(
                    replica.ws_url,
                    compression=None,
                    max_size=self.max_message_bytes,
                    open_timeout=10.0,
                    ping_interval=None,
                    proxy=None,
                )
            except (OSError, TimeoutError, ConnectionClosed, Exception):  # noqa: B014 - any failure to connect
                self.mark_down(replica)
                continue
            if not first_read:
                message = await receive()
                if message["type"] != "websocket.receive":
                    await upstream.close()
                    return None, None
                first = message.get("text")
                if first is None:
                    first = message.get("bytes") or b""
                first_read = True
            assert first is not None
            try:
                await upstream.send(first)
            except ConnectionClosed:
                pass  # a full replica sends its error and closes: it may be waiting to be read
            try:
                reply: str | bytes = await upstream.recv()
            except ConnectionClosed as closed:
                if closed.rcvd is None:  # no close frame: the replica went away
                    self.mark_down(replica)
                continue
            if _is_session_capacity_error(reply):
                last_error = reply if isinstance(reply, str) else reply.decode()
                await upstream.close()
                continue
            await send(
                {"type": "websocket.send", "text": reply}
                if isinstance(reply, str)
                else {"type": "websocket.send", "bytes": reply}
            )
            return upstream, replica

    async def _relay(
        self,
        upstream: ClientConnection,
        replica: Replica,
        receive: Callable[[], Awaitable[Any]],
        send: Any,
    ) -> None:
        client_gone = False

        async def client_to_replica() -> None:
            nonlocal client_gone
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    client_gone = True
                    await upstream.close()
                    return
                text = message.get("text")
                await upstream.send(text if text is not None else (message.get("bytes") or b""))

        forward = asyncio.create_task(client_to_replica())
        try:
            while True:
                try:
                    frame = await upstream.recv()
                except ConnectionClosed as closed:
                    if client_gone:
                        return
                    code = closed.rcvd.code if closed.rcvd is not None else None
                    if code is None:
                        # No close frame: the replica's process went away.
                        self.mark_down(replica)
                        notice = _ws_error(
                            f"replica {replica.name!r} went down: this session's episode is lost; "
                            "connect again for a new session",
                            "SESSION_ERROR",
                            reason="replica_unavailable",
                            replica=replica.name,
                        )
                        await _send_quietly(send, {"type": "websocket.send", "text": notice})
                        await _send_quietly(send, {"type": "websocket.close", "code": REPLICA_LOST_CLOSE})
                    else:
                        await _send_quietly(send, {"type": "websocket.close", "code": code})
                    return
                if isinstance(frame, str):
                    await send({"type": "websocket.send", "text": frame})
                else:
                    await send({"type": "websocket.send", "bytes": frame})
        except OSError:
            return  # the client went away while we were sending
        finally:
            forward.cancel()
            try:
                await forward
            except (asyncio.CancelledError, ConnectionClosed, OSError):
                pass
            await upstream.close()


def _read_load(replica: Replica, body: bytes) -> None:
    """The sessions a replica's /health says it holds and allows (an older server says neither)."""
    try:
        health = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if not isinstance(health, dict):
        return
    sessions, most = health.get("sessions"), health.get("max_sessions")
    replica.reported_sessions = sessions if isinstance(sessions, int) else None
    replica.max_sessions = most if isinstance(most, int) else None
    replica.redirected = 0


def _is_session_capacity_error(reply: str | bytes) -> bool:
    if b"CAPACITY_REACHED" not in (reply.encode() if isinstance(reply, str) else reply):
        return False
    try:
        data = orjson.loads(reply).get("data") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return False
    return data.get("code") == "CAPACITY_REACHED" and "max_sessions" in data


def _ws_error(message: str, code: str, **extra: Any) -> str:
    return orjson.dumps({"type": "error", "data": {"message": message, "code": code, **extra}}).decode()


def _field(body: bytes, name: str) -> Any:
    if not body:
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed.get(name) if isinstance(parsed, dict) else None


async def _read_body(receive: Callable[[], Awaitable[Any]], limit: int) -> bytes | None:
    """The request's body, or None when it is larger than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*JSON, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_quietly(send: Any, message: dict[str, Any]) -> None:
    try:
        await send(message)
    except (OSError, RuntimeError):
        pass
