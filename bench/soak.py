"""Honest and hostile clients together: ``python -m bench soak [--seconds S]``.

Starts the real server (``--no-web``, default limits) on 127.0.0.1 and
measures, from this process, one honest WebSocket client and one honest HTTP
client stepping heuristic episodes: first alone (``--solo-seconds``), then for
``--seconds`` while a second process attacks the server with

* a flood of the largest invalid action the wire accepts (a dispatch of 64
  unknown pairs of 64-character names) on ``arena/hard``, reading
  ``GET /state`` of that episode every 20 steps;
* WebSocket clients that ask for observations and never read them;
* half-sent requests (slowloris), held open and reopened when closed;
* requests with a 1 MiB header;
* HTTP connections that pipeline requests and never read the answers.

Prints the honest clients' p99 step latency alone and under attack (and the
ratio), their errors, the server's resident memory (at start, highest,
last), what the attackers saw (refusals, drops), and one JSON object as its
last line. The whole run is bounded: about ``solo-seconds + seconds`` plus
the server's start. ``--repeat N`` runs N soaks in a row, each on a fresh
server, and prints the medians of their figures last. The targets: each
honest p99 under attack within ``TARGET_P99_RATIO`` (3) of its value alone,
and the server's highest RSS within ``TARGET_RSS_MB``; the JSON says whether
they were met (``targets``), and the load average before and after, since
the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

import orjson
import websockets

from bench.server import ServerUnderTest, free_port, percentile, record_trajectories

ARENA = "arena/hard"
# The targets: each honest client's p99 under attack within this factor of its p99 alone, and the
# server's highest resident memory during the run within this bound.
TARGET_P99_RATIO = 3.0
TARGET_RSS_MB = 160.0


# --------------------------------------------------------------------------- honest clients


async def honest_ws(url: str, episodes: list[tuple[str, int, list[dict]]], until: float) -> tuple[list[float], int]:
    samples: list[float] = []
    errors = 0
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        while time.monotonic() < until:
            for task_id, seed, actions in episodes:
                if time.monotonic() >= until:
                    break
                await ws.send(orjson.dumps({"type": "reset", "data": {"task_id": task_id, "seed": seed}}).decode())
                if orjson.loads(await ws.recv())["type"] != "observation":
                    errors += 1
                for action in actions:
                    message = orjson.dumps({"type": "step", "data": action}).decode()
                    started = time.perf_counter()
                    await ws.send(message)
                    reply = await ws.recv()
                    samples.append(time.perf_counter() - started)
                    if orjson.loads(reply)["type"] != "observation":
                        errors += 1
    return samples, errors


def honest_http(port: int, episodes: list[tuple[str, int, list[dict]]], until: float) -> tuple[list[float], int]:
    samples: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < until:
        for task_id, seed, actions in episodes:
            if time.monotonic() >= until:
                break
            try:
                connection.request("POST", "/reset", orjson.dumps({"task_id": task_id, "seed": seed}), headers)
                reply = connection.getresponse()
                episode_id = orjson.loads(reply.read())["observation"]["episode_id"]
                for action in actions:
                    body = orjson.dumps({"episode_id": episode_id, "action": action})
                    started = time.perf_counter()
                    connection.request("POST", "/step", body, headers)
                    reply = connection.getresponse()
                    reply.read()
                    samples.append(time.perf_counter() - started)
                    if reply.status != 200:
                        errors += 1
            except (OSError, http.client.HTTPException, KeyError):
                errors += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.close()
    return samples, errors


def run_honest(port: int, episodes: list[tuple[str, int, list[dict]]], seconds: float) -> dict[str, Any]:
    until = time.monotonic() + seconds
    result: dict[str, Any] = {}

    def http_thread() -> None:
        result["http"] = honest_http(port, episodes, until)

    thread = threading.Thread(target=http_thread)
    thread.start()
    result["ws"] = asyncio.run(honest_ws(f"ws://127.0.0.1:{port}/ws", episodes, until))
    thread.join()
    return result


# --------------------------------------------------------------------------- hostile clients (a child process)


def _frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    if len(payload) < 126:
        head = bytes([0x81, 0x80 | len(payload)])
    else:
        head = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def flood(port: int, until: float, counts: dict[str, int]) -> None:
    """The largest invalid dispatch, step after step, and /state of its episode."""
    pairs = [{"subtask_id": f"s{i:02d}".ljust(64, "s"), "agent_name": f"a{i:02d}".ljust(64, "a")} for i in range(64)]
    action = {"action_type": "dispatch", "assignments": pairs}
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            body = orjson.dumps({"task_id": ARENA, "seed": counts["flood_episodes"]})
            writer.write(b"POST /reset HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            _, answer = await _read_response(reader)
            episode_id = orjson.loads(answer)["observation"]["episode_id"]
            counts["flood_episodes"] += 1
            step = orjson.dumps({"episode_id": episode_id, "action": action})
            request = (
                b"POST /step HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            )
            done = False
            while not done and time.monotonic() < until:
                writer.write(request % (len(step), step))
                _, answer = await _read_response(reader)
                done = orjson.loads(answer)["done"]
                counts["flood_steps"] += 1
                if counts["flood_steps"] % 20 == 0:
                    writer.write(b"GET /state?episode_id=%s HTTP/1.1\r\nHost: x\r\n\r\n" % episode_id.encode())
                    _, state = await _read_response(reader)
                    counts["flood_state_bytes_max"] = max(counts["flood_state_bytes_max"], len(state))
            writer.close()
        except (OSError, asyncio.IncompleteReadError, ValueError, KeyError):
            counts["flood_errors"] += 1
            await asyncio.sleep(0.1)


async def stuck_reader(port: int, until: float, counts: dict[str, int]) -> None:
    """A WebSocket client that asks for observations and never reads them; reconnects when dropped."""
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    reset = _frame(json.dumps({"type": "reset", "data": {"task_id": ARENA, "seed": 1}}))
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
            sock = writer.get_extra_info("socket")
            writer.write(handshake)
            await reader.readuntil(b"\r\n\r\n")
            counts["stuck_connections"] += 1
            writer.transport.pause_reading()  # never read again
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            while time.monotonic() < until:
                if writer.transport.is_closing():
                    break
                writer.write(reset)
                await asyncio.wait_for(writer.drain(), 1.0)
                await asyncio.sleep(0.02)
            writer.transport.abort()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            counts["stuck_dropped"] += 1
            await asyncio.sleep(0.1)


async def slowloris(port: int, until: float, counts: dict[str, int], connections: int = 200) -> None:
    """Half-sent requests, held open; each closed one is counted and reopened."""

    async def one() -> None:
        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                counts["slowloris_opened"] += 1
                while time.monotonic() < until:
                    try:
                        data = await asyncio.wait_for(reader.read(1024), 1.0)
                    except TimeoutError:
                        writer.write(b"a")
                        continue
                    if data.startswith(b"HTTP/1.1 408"):
                        counts["slowloris_408"] += 1
                    elif data.startswith(b"HTTP/1.1 503"):
                        counts["slowloris_503"] += 1
                    break
                writer.transport.abort()
            except OSError:
                counts["slowloris_refused"] += 1
                await asyncio.sleep(0.2)

    await asyncio.gather(*(one() for _ in range(connections)))


async def big_headers(port: int, until: float, counts: dict[str, int]) -> None:
    header = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024) + b"\r\n\r\n"
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(header)
            answer = await asyncio.wait_for(reader.read(64), 10)
            counts["big_header_431" if answer.startswith(b"HTTP/1.1 431") else "big_header_other"] += 1
            writer.transport.abort()
        except (OSError, TimeoutError):
            counts["big_header_dropped"] += 1
        await asyncio.sleep(0.5)


async def unread_pipeline(port: int, until: float, counts: dict[str, int]) -> None:
    """Pipelined requests whose answers are never read; reconnects when dropped."""
    requests = b"GET /tasks HTTP/1.1\r\nHost: x\r\n\r\n" * 500
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
            writer.transport.pause_reading()
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            writer.write(requests)
            counts["unread_connections"] += 1
            while time.monotonic() < until and not writer.transport.is_closing():
                await asyncio.sleep(0.5)
                writer.write(b"GET /tasks HTTP/1.1\r\nHost: x\r\n\r\n")
                await asyncio.wait_for(writer.drain(), 1.0)
            writer.transport.abort()
        except (OSError, TimeoutError):
            counts["unread_dropped"] += 1
            await asyncio.sleep(0.1)


async def attack(port: int, seconds: float) -> dict[str, int]:
    until = time.monotonic() + seconds
    counts: dict[str, int] = {
        name: 0
        for name in (
            "flood_episodes",
            "flood_steps",
            "flood_state_bytes_max",
            "flood_errors",
            "stuck_connections",
            "stuck_dropped",
            "slowloris_opened",
            "slowloris_408",
            "slowloris_503",
            "slowloris_refused",
            "big_header_431",
            "big_header_other",
            "big_header_dropped",
            "unread_connections",
            "unread_dropped",
        )
    }
    await asyncio.gather(
        flood(port, until, counts),
        *(stuck_reader(port, until, counts) for _ in range(4)),
        slowloris(port, until, counts),
        big_headers(port, until, counts),
        *(unread_pipeline(port, until, counts) for _ in range(4)),
    )
    return counts


# --------------------------------------------------------------------------- the run


def summary(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of the attack")
    parser.add_argument("--solo-seconds", type=float, default=8.0, help="duration of the honest clients alone")
    parser.add_argument("--repeat", type=int, default=1, help="soaks in a row (each on a fresh server); medians")
    parser.add_argument("--attacker", nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attacker:
        port, seconds = int(args.attacker[0]), float(args.attacker[1])
        print(json.dumps(asyncio.run(attack(port, seconds))))
        return

    episodes = record_trajectories(count_per_task=4)
    runs = [soak_once(episodes, args.seconds, args.solo_seconds) for _ in range(args.repeat)]
    if len(runs) == 1:
        print(json.dumps(runs[0]))
        return
    # Medians over the runs, each run's figures beside them.
    summary_figures: dict[str, Any] = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
            summary_figures[key] = sorted(values)[len(values) // 2]
    summary_figures["targets"] = targets(summary_figures)
    summary_figures["runs"] = runs
    print(
        f"medians of {len(runs)} runs: p99 x{summary_figures['ws_p99_ratio']:.2f} (WebSocket), "
        f"x{summary_figures['http_p99_ratio']:.2f} (HTTP), highest RSS {summary_figures['rss_max_mb']:.1f} MB; "
        f"targets {'met' if summary_figures['targets']['met'] else 'NOT met'}"
    )
    print(json.dumps(summary_figures))


def targets(figures: dict[str, Any]) -> dict[str, Any]:
    """Whether the soak's targets hold: each honest p99 within TARGET_P99_RATIO of its solo value, RSS bounded."""
    verdict: dict[str, Any] = {
        "p99_ratio_max": TARGET_P99_RATIO,
        "rss_max_mb": TARGET_RSS_MB,
        "ws_p99_met": figures["ws_p99_ratio"] <= TARGET_P99_RATIO,
        "http_p99_met": figures["http_p99_ratio"] <= TARGET_P99_RATIO,
        "rss_met": figures["rss_max_mb"] <= TARGET_RSS_MB,
    }
    verdict["met"] = verdict["ws_p99_met"] and verdict["http_p99_met"] and verdict["rss_met"]
    return verdict


def soak_once(episodes: list[tuple[str, int, list[dict]]], seconds: float, solo_seconds: float) -> dict[str, Any]:
    """One soak against a fresh server: the honest clients alone, then under attack; prints and returns figures."""
    server = ServerUnderTest(free_port())
    rss: list[float] = []
    sampling = threading.Event()
    load_before = os.getloadavg()[0]

    def sample_rss() -> None:
        while not sampling.wait(0.25):
            try:
                rss.append(server.rss_mb())
            except (OSError, RuntimeError):
                return

    try:
        time.sleep(1.0)
        rss_start = server.rss_mb()
        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        solo = run_honest(server.port, episodes, solo_seconds)
        attacker = subprocess.Popen(
            [sys.executable, "-m", "bench", "soak", "--attacker", str(server.port), str(seconds)],
            stdout=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        time.sleep(min(2.0, seconds / 4))  # the attack under way
        under_attack = run_honest(server.port, episodes, seconds - min(2.0, seconds / 4))
        out, _ = attacker.communicate(timeout=seconds + 60)
        hostile = json.loads(out.decode().strip().splitlines()[-1])
        time.sleep(1.0)
        rss_end = server.rss_mb()
        sampling.set()
        health = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        health.request("GET", "/health")
        healthy = health.getresponse().status == 200
    finally:
        sampling.set()
        server.stop()

    figures: dict[str, Any] = {}
    for channel in ("ws", "http"):
        solo_samples, solo_errors = solo[channel]
        soak_samples, soak_errors = under_attack[channel]
        solo_p50, solo_p99 = summary(solo_samples)
        soak_p50, soak_p99 = summary(soak_samples)
        print(
            f"honest {channel:4}: alone p50 {solo_p50:.3f} ms p99 {solo_p99:.3f} ms ({len(solo_samples)} steps); "
            f"under attack p50 {soak_p50:.3f} ms p99 {soak_p99:.3f} ms ({len(soak_samples)} steps); "
            f"p99 x{soak_p99 / solo_p99:.2f}; errors {solo_errors + soak_errors}"
        )
        figures[f"{channel}_solo_p99_ms"] = round(solo_p99, 3)
        figures[f"{channel}_soak_p99_ms"] = round(soak_p99, 3)
        figures[f"{channel}_p99_ratio"] = round(soak_p99 / solo_p99, 2)
        figures[f"{channel}_honest_steps"] = len(solo_samples) + len(soak_samples)
        figures[f"{channel}_honest_errors"] = solo_errors + soak_errors
    rss_max = max(rss + [rss_start, rss_end])
    load_after = os.getloadavg()[0]
    print(f"server RSS: start {rss_start:.1f} MB, highest {rss_max:.1f} MB, end {rss_end:.1f} MB")
    print("attackers: " + ", ".join(f"{name} {value}" for name, value in hostile.items()))
    print(f"/health after the attack: {'200' if healthy else 'failed'}")
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    figures.update(
        {
            "rss_start_mb": round(rss_start, 1),
            "rss_max_mb": round(rss_max, 1),
            "rss_end_mb": round(rss_end, 1),
            "healthy_after": healthy,
            "load_average_before": round(load_before, 2),
            "load_average_after": round(load_after, 2),
            "hostile": hostile,
        }
    )
    figures["targets"] = targets(figures)
    said = {name: "met" if value else "NOT met" for name, value in figures["targets"].items()}
    print(
        f"targets: p99 within x{TARGET_P99_RATIO:g} of alone: WebSocket {said['ws_p99_met']}, "
        f"HTTP {said['http_p99_met']}; highest RSS within {TARGET_RSS_MB:g} MB: {said['rss_met']}"
    )
    return figures


if __name__ == "__main__":
    main()
