"""Sockets that cannot jam the server: head size limit, read timeouts, a connection cap,
clients that stop reading, and a SIGTERM that ends within its bound.

Every attack is bounded and stays on loopback; each server here has small
limits so that the tests take seconds.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.support.server_fixtures import RunningServer, start_server, start_uvicorn
from workflow_orchestrator.server.http.protocol import UVICORN_OPTIONS

HEADER_LIMIT = 8192
READ_TIMEOUT = 1.5
MAX_CONNECTIONS = 24
SEND_TIMEOUT = 2


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(
        tmp_path_factory.mktemp("limited"),
        "--max-header-bytes",
        str(HEADER_LIMIT),
        "--read-timeout",
        str(READ_TIMEOUT),
        "--max-connections",
        str(MAX_CONNECTIONS),
        "--send-timeout",
        str(SEND_TIMEOUT),
    )
    yield server
    server.stop()


def _raw(server: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server sends until it closes or 10 s pass."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


@pytest.mark.parametrize("size", [HEADER_LIMIT * 2, 16 * 1024 * 1024])
def test_an_oversized_header_is_refused(limited: RunningServer, size: int) -> None:
    sock = _raw(limited)
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused before the whole header was sent
    answer = _answer(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert b'"error":"headers_too_large"' in answer


def test_many_headers_over_the_limit_are_refused_and_a_normal_request_is_not(limited: RunningServer) -> None:
    sock = _raw(limited)
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"b" * 60) for i in range(200))
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert _answer(sock).startswith(b"HTTP/1.1 431 ")
    sock.close()
    response = httpx.get(f"{limited.url}/health", headers={"X-Fine": "a" * 4000}, timeout=10)
    assert response.status_code == 200


def test_half_sent_and_silent_connections_are_closed(limited: RunningServer) -> None:
    half_heads = [_raw(limited) for _ in range(6)]
    for sock in half_heads:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    half_bodies = [_raw(limited) for _ in range(6)]
    for sock in half_bodies:
        sock.sendall(b'POST /reset HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"task_id"')
    silent = [_raw(limited) for _ in range(6)]
    started = time.monotonic()
    for sock in half_heads:
        assert _answer(sock).startswith(b"HTTP/1.1 408 ")
    for sock in half_bodies + silent:
        _answer(sock)
    elapsed = time.monotonic() - started
    for sock in half_heads + half_bodies + silent:
        sock.close()
    assert elapsed < READ_TIMEOUT + 6, elapsed


def test_connections_over_the_cap_get_503(limited: RunningServer) -> None:
    held = [_raw(limited) for _ in range(MAX_CONNECTIONS)]
    for sock in held:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    extra = _raw(limited)
    extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = _answer(extra)
    extra.close()
    for sock in held:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 503 "), answer[:80]
    # Once they are gone the server answers again.
    deadline = time.monotonic() + 10
    while httpx.get(f"{limited.url}/health", timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_websocket_upgrades_count_against_the_cap(limited: RunningServer) -> None:
    """WebSocket connections fill the cap like any other, and an upgrade over it gets 503 (uvicorn
    upgrades before its own check, so without ours every upgrade was accepted)."""
    url = limited.url.replace("http://", "ws://") + "/ws"
    held = [connect(url, open_timeout=20) for _ in range(MAX_CONNECTIONS)]
    try:
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=20).close()
        assert refused.value.response.status_code == 503
        assert b"too_many_connections" in refused.value.response.body
        # The sessions already open are served meanwhile.
        held[0].send(json.dumps({"type": "reset", "data": {"task_id": "easy"}}))
        assert json.loads(held[0].recv(timeout=20))["type"] == "observation"
    finally:
        for ws in held:
            ws.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            with connect(url, open_timeout=20):
                break
        except InvalidStatus:
            assert time.monotonic() < deadline
            time.sleep(0.2)


# --------------------------------------------------------------------------- clients that stop reading


def _ws_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _stuck_ws_client(server: RunningServer, messages: int) -> socket.socket:
    """A WebSocket client that sends requests with large answers and never reads them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    reset = _ws_frame(json.dumps({"type": "reset", "data": {"task_id": "arena/hard", "seed": 1}}))
    sock.settimeout(0.5)
    for _ in range(messages):
        try:
            sock.sendall(reset)
        except (TimeoutError, OSError):
            break
    return sock


def _reset(url: str) -> dict:
    with connect(url, open_timeout=20) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"task_id": "easy"}}))
        return json.loads(ws.recv(timeout=20))


def test_a_client_that_stops_reading_jams_nothing_and_sigterm_ends_in_time(tmp_path: Path) -> None:
    server = start_server(
        tmp_path,
        "--max-sessions",
        "3",
        "--session-idle-timeout",
        "1",
        "--send-timeout",
        "3",
        "--shutdown-timeout",
        "3",
    )
    try:
        stuck = _stuck_ws_client(server, 400)
        # A session opened after it goes idle: the cleanup closes it although the stuck one is first in line.
        with connect(server.ws_url, open_timeout=20) as honest:
            honest.send(json.dumps({"type": "reset", "data": {"task_id": "easy"}}))
            assert json.loads(honest.recv(timeout=20))["type"] == "observation"
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                while True:
                    notice = json.loads(honest.recv(timeout=15))
                    assert notice["data"]["code"] == "SESSION_ERROR"
            assert time.monotonic() - started < 10
        # The stuck client loses its slot after the send timeout: three new sessions fit.
        time.sleep(5)
        with connect(server.ws_url, open_timeout=20) as a, connect(server.ws_url, open_timeout=20) as b:
            for ws in (a, b):
                ws.send(json.dumps({"type": "reset", "data": {"task_id": "easy"}}))
                assert json.loads(ws.recv(timeout=20))["type"] == "observation"
            assert _reset(server.ws_url)["type"] == "observation"
        stuck.close()
        # SIGTERM with another stuck client connected: the server exits within its bounds.
        again = _stuck_ws_client(server, 400)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        assert time.monotonic() - started < 15
        again.close()
    finally:
        server.stop()


def test_an_http_client_that_stops_reading_is_dropped(limited: RunningServer) -> None:
    """Answers left unread: the connection is aborted after the send timeout, and the server stays responsive.
    The answer being written and the queued ones go nowhere, quietly (uvloop raised on the closed transport
    and the log took a traceback for a client that was gone)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", limited.port))
    sock.sendall(b"GET /tasks HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
    assert httpx.get(f"{limited.url}/health", timeout=10).status_code == 200
    time.sleep(SEND_TIMEOUT + 3)
    answers = _answer(sock)
    sock.close()
    assert 0 < answers.count(b"HTTP/1.1 200 OK") < 2000
    time.sleep(0.5)
    log = limited.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


# --------------------------------------------------------------------------- uvicorn's own command line


def _oversized_and_half_sent(server: RunningServer) -> tuple[bytes, bytes]:
    big = _raw(server)
    big.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (HEADER_LIMIT * 2) + b"\r\n\r\n")
    half = _raw(server)
    half.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    answers = _answer(big), _answer(half)
    big.close()
    half.close()
    return answers


def test_uvicorn_with_the_protocol_options_gets_the_limits_from_the_environment(tmp_path: Path) -> None:
    """`uvicorn workflow_orchestrator.server.app:app` plus UVICORN_OPTIONS (as the README says) is bounded
    like `server`, with the limits of the environment variables; without them it warns at start."""
    env = {
        "WORKFLOW_ORCHESTRATOR_MAX_HEADER_BYTES": str(HEADER_LIMIT),
        "WORKFLOW_ORCHESTRATOR_READ_TIMEOUT": str(READ_TIMEOUT),
    }
    bounded = start_uvicorn(tmp_path, *UVICORN_OPTIONS, env=env)
    try:
        oversized, half_sent = _oversized_and_half_sent(bounded)
        assert oversized.startswith(b"HTTP/1.1 431 "), oversized[:80]
        assert half_sent.startswith(b"HTTP/1.1 408 "), half_sent[:80]
        assert "without the server's connection limits" not in bounded.log()
    finally:
        bounded.stop()
    plain = start_uvicorn(tmp_path, env=env)
    try:
        assert "without the server's connection limits" in plain.log()
        assert " ".join(UVICORN_OPTIONS) in plain.log()
    finally:
        plain.stop()
