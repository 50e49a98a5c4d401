"""Server speed and memory: ``python -m bench server``.

Starts the real server (``--no-web``) on 127.0.0.1 in a child process and
measures it from this process, so client and server share the machine:

* ``ws_p50_ms`` / ``ws_p99_ms``: one WebSocket session, time from sending a
  step to receiving its observation;
* ``ws_steps_per_second_16`` / ``_64``: steps per second summed over that many
  concurrent sessions (each waits for its reply before the next step). The
  sessions are driven by a minimal RFC 6455 client (:class:`LoadSession`), as
  a load generator would be, so that the client's share of the two cores
  stays small; latency is measured with the ``websockets`` library, as a
  user's client would see it;
* ``http_p50_ms`` / ``http_p99_ms``: ``POST /step`` over one keep-alive connection;
* ``rss_idle_mb``: the server's resident memory after start-up, before any
  traffic; ``rss_after_10k_episodes_mb``: after 10,000 more complete episodes;
* ``ownership_ns``: what the ownership check adds to finding an episode by id
  (in this process, on the store the server uses, CPU time): the lookup without the
  check (as before episodes had owners) and with it, for an id the server
  made (no secret sent) and for a client-chosen id (its secret compared);
* ``archive``: what the archive costs per finished episode (in this process):
  whole heuristic episodes played through the store without an archive and
  with one (the default SQLite file, WAL, synchronous FULL), each finishing
  step waiting for its write as ``/step`` does; wall and CPU time per
  episode, and the bytes written.

The actions are the built-in heuristic policy's, recorded beforehand so that
no policy runs while timing; requests are serialised beforehand too. Prints
figures, and one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import websockets

from workflow_orchestrator.evaluation import record_policy_actions
from workflow_orchestrator.server.archive import Archive
from workflow_orchestrator.server.environment import EpisodeStore, StoreLimits
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry

TASKS = ("easy", "medium", "hard", "expert")
REPO_ROOT = Path(__file__).resolve().parent.parent

Trajectory = tuple[str, int, list[str]]  # task, seed, serialised step messages


def record_trajectories(count_per_task: int) -> list[tuple[str, int, list[dict]]]:
    """The heuristic policy's actions for a few episodes of every task."""
    env = WorkflowEnv()
    recorded = []
    for task_id in TASKS:
        for seed in range(count_per_task):
            recorded.append((task_id, seed, record_policy_actions(env, "heuristic", task_id, seed)))
    return recorded


def ws_messages(recorded: list[tuple[str, int, list[dict]]]) -> list[tuple[str, list[str]]]:
    return [
        (
            orjson.dumps({"type": "reset", "data": {"task_id": task_id, "seed": seed}}).decode(),
            [orjson.dumps({"type": "step", "data": action}).decode() for action in actions],
        )
        for task_id, seed, actions in recorded
    ]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# --------------------------------------------------------------------------- the server


class ServerUnderTest:
    def __init__(self, port: int, pythonpath: str | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        self.archive_dir = tempfile.TemporaryDirectory(prefix="bench-archive-")
        env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOW_ORCHESTRATOR_")}
        env.pop("ENABLE_WEB_INTERFACE", None)
        if pythonpath is not None:  # another build of the package (bench vector --compare-builds)
            env["PYTHONPATH"] = pythonpath
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workflow_orchestrator.server.app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-web",
                "--log-level",
                "warning",
                # The default archive, in a folder of its own rather than the repository.
                "--archive-path",
                str(Path(self.archive_dir.name) / "archive.sqlite3"),
            ],
            cwd=REPO_ROOT,
            env=env,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the server did not start within 90 s")
            time.sleep(0.1)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.archive_dir.cleanup()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- a lean load generator


class LoadSession:
    """A minimal WebSocket client: text frames out (masked), text frames in, pings answered."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int, path: str = "/ws") -> LoadSession:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {head[:80]!r}")
        return cls(reader, writer)

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        mask = os.urandom(4)
        masked = int.from_bytes(payload, "big") ^ int.from_bytes((mask * (size // 4 + 1))[:size], "big")
        return header + mask + masked.to_bytes(size, "big")

    def send(self, text: str) -> None:
        self.writer.write(self._frame(0x1, text.encode()))

    async def recv(self) -> bytes:
        while True:
            first, second = await self.reader.readexactly(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(size)
            opcode = first & 0x0F
            if opcode == 0x9:  # ping: answer, keep reading
                self.writer.write(self._frame(0xA, payload))
                continue
            if opcode == 0x8:
                raise ConnectionError("the server closed the session")
            return payload

    async def close(self) -> None:
        self.writer.write(self._frame(0x8, struct.pack("!H", 1000)))
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


# --------------------------------------------------------------------------- measurements


async def ws_latency(ws_url: str, episodes: list[tuple[str, list[str]]], steps: int) -> list[float]:
    """Seconds from sending each step message to its answer, over one connection to ``ws_url``, replaying
    the episodes (each a reset message and its step messages) until ``steps`` samples."""
    samples: list[float] = []
    clock = time.perf_counter
    async with websockets.connect(ws_url, compression=None, proxy=None) as ws:
        while len(samples) < steps:
            for reset, step_messages in episodes:
                await ws.send(reset)
                await ws.recv()
                for message in step_messages:
                    started = clock()
                    await ws.send(message)
                    await ws.recv()
                    samples.append(clock() - started)
    return samples


async def ws_throughput(
    server: ServerUnderTest, episodes: list[tuple[str, list[str]]], sessions: int, seconds: float
) -> tuple[float, int]:
    """Steps per second summed over ``sessions`` concurrent sessions; also the episodes finished."""
    stop_at = 0.0
    steps = 0
    finished = 0

    async def session(offset: int) -> None:
        nonlocal steps, finished
        ws = await LoadSession.open("127.0.0.1", server.port)
        index = offset
        while time.perf_counter() < stop_at:
            reset, step_messages = episodes[index % len(episodes)]
            index += 1
            ws.send(reset)
            await ws.recv()
            for message in step_messages:
                ws.send(message)
                await ws.recv()
                steps += 1
            finished += 1
        await ws.close()

    stop_at = time.perf_counter() + 0.5  # warm-up: connections, caches
    await asyncio.gather(*(session(i) for i in range(sessions)))
    steps = finished = 0
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(session(i) for i in range(sessions)))
    return steps / (time.perf_counter() - started), finished


async def ws_episodes(
    server: ServerUnderTest, episodes: list[tuple[str, list[str]]], count: int, sessions: int
) -> None:
    """Play ``count`` complete episodes over ``sessions`` concurrent sessions."""
    remaining = count

    async def session(offset: int) -> None:
        nonlocal remaining
        ws = await LoadSession.open("127.0.0.1", server.port)
        index = offset
        while remaining > 0:
            remaining -= 1
            reset, step_messages = episodes[index % len(episodes)]
            index += sessions
            ws.send(reset)
            await ws.recv()
            for message in step_messages:
                ws.send(message)
                await ws.recv()
        await ws.close()

    await asyncio.gather(*(session(i) for i in range(sessions)))


def http_latency(server: ServerUnderTest, recorded: list[tuple[str, int, list[dict]]], steps: int) -> list[float]:
    samples: list[float] = []
    connection = http.client.HTTPConnection("127.0.0.1", server.port)
    headers = {"Content-Type": "application/json"}
    clock = time.perf_counter
    while len(samples) < steps:
        for task_id, seed, actions in recorded:
            connection.request("POST", "/reset", orjson.dumps({"task_id": task_id, "seed": seed}), headers)
            reply = connection.getresponse()
            episode_id = orjson.loads(reply.read())["observation"]["episode_id"]
            bodies = [orjson.dumps({"episode_id": episode_id, "action": action}) for action in actions]
            for body in bodies:
                started = clock()
                connection.request("POST", "/step", body, headers)
                reply = connection.getresponse()
                reply.read()
                samples.append(clock() - started)
                if reply.status != 200:
                    raise SystemExit(f"/step answered {reply.status}")
    connection.close()
    return samples


def ownership_costs(rounds: int = 9, lookups: int = 20_000) -> dict[str, float]:
    """CPU nanoseconds per lookup of an episode by id: without the ownership check, and with it
    (the cases take turns within each round, so that a busy machine slows them alike; medians)."""
    store = EpisodeStore(default_registry(), StoreLimits())
    made, _ = store.start("easy", 1)
    chosen, _ = store.start("easy", 1, episode_id="a-chosen-id")
    cases = {
        "lookup_without_check": lambda: store.get(made.episode_id),
        "lookup_with_check_server_id": lambda: store.get(made.episode_id, None, check_owner=True),
        "lookup_with_check_chosen_id": lambda: store.get(chosen.episode_id, chosen.secret, check_owner=True),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, call in cases.items():
            started = time.process_time()
            for _ in range(lookups):
                call()
            times[name].append((time.process_time() - started) / lookups * 1e9)
    return {name: round(sorted(values)[len(values) // 2], 1) for name, values in times.items()}


def archive_costs(recorded: list[tuple[str, int, list[dict]]], rounds: int = 3) -> dict[str, float]:
    """Per finished episode: wall and CPU milliseconds without an archive and with one; bytes written."""
    registry = default_registry()

    def play(store: EpisodeStore) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for task_id, seed, actions in recorded:
            episode, _ = store.start(task_id, seed)
            for action in actions:
                store.step(episode, action)
            if episode.archived is not None:
                episode.archived.result()  # the finishing step is answered once the archive has it
        count = len(recorded)
        return (time.perf_counter() - wall) / count * 1000, (time.process_time() - cpu) / count * 1000

    runs: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
    written = 0
    with tempfile.TemporaryDirectory(prefix="bench-archive-cost-") as folder:
        for index in range(rounds):
            runs["without"].append(play(EpisodeStore(registry, StoreLimits())))
            with Archive(Path(folder) / f"archive{index}.sqlite3") as archive:
                runs["with"].append(play(EpisodeStore(registry, StoreLimits(), archive=archive)))
                written = archive.totals_now()[1] // len(recorded)

    def median(values: list[float]) -> float:
        return round(sorted(values)[len(values) // 2], 3)

    figures = {}
    for name, samples in runs.items():
        figures[f"episode_wall_ms_{name}_archive"] = median([wall for wall, _ in samples])
        figures[f"episode_cpu_ms_{name}_archive"] = median([cpu for _, cpu in samples])
    figures["archive_bytes_per_episode"] = written
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-steps", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each throughput run")
    parser.add_argument("--episodes", type=int, default=10_000, help="episodes before the second RSS reading")
    args = parser.parse_args(argv)

    recorded = record_trajectories(count_per_task=8)
    episodes = ws_messages(recorded)

    ownership = ownership_costs()
    print(
        "finding an episode by id: {lookup_without_check} ns without the ownership check, "
        "{lookup_with_check_server_id} ns with it (server-made id), "
        "{lookup_with_check_chosen_id} ns (chosen id, secret compared)".format(**ownership)
    )
    archived = archive_costs(recorded)
    print(
        "per finished episode: {episode_wall_ms_without_archive} ms wall, {episode_cpu_ms_without_archive} ms CPU "
        "without an archive; {episode_wall_ms_with_archive} ms wall, {episode_cpu_ms_with_archive} ms CPU with it "
        "({archive_bytes_per_episode} bytes written)".format(**archived)
    )

    server = ServerUnderTest(free_port())
    try:
        time.sleep(1.0)
        rss_idle = server.rss_mb()
        print(f"RSS idle: {rss_idle:.1f} MB")

        ws_samples = asyncio.run(ws_latency(server.ws_url, episodes, args.latency_steps))
        ws_p50, ws_p99 = percentile(ws_samples, 0.5) * 1000, percentile(ws_samples, 0.99) * 1000
        print(f"WebSocket, one session: p50 {ws_p50:.3f} ms, p99 {ws_p99:.3f} ms over {len(ws_samples)} steps")

        http_samples = http_latency(server, recorded, args.latency_steps)
        http_p50, http_p99 = percentile(http_samples, 0.5) * 1000, percentile(http_samples, 0.99) * 1000
        print(f"HTTP POST /step: p50 {http_p50:.3f} ms, p99 {http_p99:.3f} ms over {len(http_samples)} steps")

        throughput = {}
        for sessions in (16, 64):
            rate, finished = asyncio.run(ws_throughput(server, episodes, sessions, args.seconds))
            throughput[sessions] = rate
            print(f"WebSocket, {sessions} sessions: {rate:,.0f} steps/s ({finished} episodes in {args.seconds:g} s)")

        before = server.rss_mb()
        started = time.perf_counter()
        asyncio.run(ws_episodes(server, episodes, args.episodes, sessions=16))
        rss_after = server.rss_mb()
        print(
            f"{args.episodes:,} more episodes in {time.perf_counter() - started:.1f} s: "
            f"RSS {before:.1f} -> {rss_after:.1f} MB (idle {rss_idle:.1f} MB)"
        )
    finally:
        server.stop()

    figures = {
        "ws_p50_ms": round(ws_p50, 3),
        "ws_p99_ms": round(ws_p99, 3),
        "ws_steps_per_second_16": round(throughput[16]),
        "ws_steps_per_second_64": round(throughput[64]),
        "http_p50_ms": round(http_p50, 3),
        "http_p99_ms": round(http_p99, 3),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_after_10k_episodes_mb": round(rss_after, 1),
        "ownership_ns": ownership,
        "archive": archived,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
