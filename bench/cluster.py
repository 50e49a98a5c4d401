"""Replicas behind the router: ``python -m bench cluster`` (needs the ``ray`` extra).

Starts a local Ray cluster with two server replicas (Ray actors, one CPU
each, no archive), and four routers (``server-router --replica ...``, each in
a child process of its own): over the first replica and over both, relaying
and redirecting. From
this process it measures:

* ``direct_p50_ms`` / ``router_p50_ms``: one WebSocket session's step latency
  (send to reply) straight to a replica and through the router, measured in
  alternating rounds; ``router_added_p50_ms`` is their difference (the
  median of the rounds' differences);
* ``redirect_p50_ms`` / ``redirect_added_p50_ms``: the same session placed by
  a router started with ``--ws-redirect`` (it answers the handshake with a
  redirect to the replica, then is out of the way);
* ``ws_steps_per_second``: steps per second summed over ``--sessions``
  concurrent sessions (the lean load generator of ``bench server``), for
  ``direct_1`` (one replica, no router), ``router_1`` (the router over one
  replica), ``router_2`` (the router over two), ``redirect_2`` (sessions placed
  by a redirecting router over two) and ``direct_2`` (the clients spread over
  both replicas themselves, no router).

Every process shares the machine's cores: on a 2-core machine the two
replicas, the router and the load generator compete for them. Prints figures,
and one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

from bench.server import LoadSession, free_port, percentile, record_trajectories, ws_latency, ws_messages

REPO_ROOT = Path(__file__).resolve().parent.parent


class Endpoint:
    """Where sessions connect: a host and port (a replica or a router)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        host_port = self.url.split("://", 1)[1]
        host, port = host_port.rsplit(":", 1)
        self.host = host
        self.port = int(port)
        self.ws_url = f"ws://{host_port}/ws"


def start_router(
    replicas: dict[str, str], log_dir: Path, *, redirect: bool = False
) -> tuple[subprocess.Popen[bytes], Endpoint]:
    port = free_port()
    options = [f"--replica={name}={url}" for name, url in replicas.items()]
    if redirect:
        options.append("--ws-redirect")
    log = (log_dir / f"router-{port}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workflow_orchestrator.cluster",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *options,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    endpoint = Endpoint(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"router exited with {process.returncode}")
        try:
            if httpx.get(f"{endpoint.url}/health", timeout=1.0, trust_env=False).json()["replicas_live"] == len(
                replicas
            ):
                return process, endpoint
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the router did not start")


async def placed(router: Endpoint) -> Endpoint:
    """Where a router that redirects sends a new session (the lean load generator follows no redirect)."""
    async with websockets.connect(router.ws_url, compression=None, proxy=None) as ws:
        host, port = ws.remote_address[:2]
    return Endpoint(f"http://{host}:{port}")


async def throughput(
    endpoints: list[Endpoint],
    episodes: list[tuple[str, list[str]]],
    sessions: int,
    seconds: float,
    redirected: bool = False,
) -> float:
    """Steps per second summed over ``sessions`` concurrent sessions, spread over ``endpoints`` in turn
    (``redirected``: each session connects where the router, which redirects, sends it)."""
    stop_at = 0.0
    steps = 0

    async def session(offset: int) -> None:
        nonlocal steps
        endpoint = endpoints[offset % len(endpoints)]
        if redirected:
            endpoint = await placed(endpoint)
        ws = await LoadSession.open(endpoint.host, endpoint.port)
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
        await ws.close()

    stop_at = time.perf_counter() + 0.5  # warm-up: connections, caches
    await asyncio.gather(*(session(i) for i in range(sessions)))
    steps = 0
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(session(i) for i in range(sessions)))
    return steps / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=64, help="concurrent sessions for throughput")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per throughput run")
    parser.add_argument("--steps", type=int, default=2000, help="steps per latency round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating latency rounds")
    args = parser.parse_args(argv)

    try:
        from workflow_orchestrator.cluster.replicas import RayReplicas
    except ImportError:
        raise SystemExit("bench cluster needs Ray: bash .ci/install-extras ray") from None
    from workflow_orchestrator.server.http.settings import ServerSettings

    episodes = ws_messages(record_trajectories(2))
    log_dir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    started = time.monotonic()
    replicas = RayReplicas(
        2,
        ServerSettings(enable_archive=False, log_level="warning", max_concurrent_envs=max(64, args.sessions)),
        num_cpus=os.cpu_count() or 2,
        namespace="workflow_orchestrator_bench",
    ).start()
    routers: list[subprocess.Popen[bytes]] = []
    try:
        addresses = replicas.addresses()
        direct = [Endpoint(address.url) for address in addresses]
        router_1_process, router_1 = start_router({"r0": addresses[0].url}, log_dir)
        routers.append(router_1_process)
        router_2_process, router_2 = start_router({a.name: a.url for a in addresses}, log_dir)
        routers.append(router_2_process)
        redirect_1_process, redirect_1 = start_router({"r0": addresses[0].url}, log_dir, redirect=True)
        routers.append(redirect_1_process)
        redirect_2_process, redirect_2 = start_router({a.name: a.url for a in addresses}, log_dir, redirect=True)
        routers.append(redirect_2_process)
        print(f"2 replicas on Ray and 4 routers up in {time.monotonic() - started:.1f} s")

        direct_p50: list[float] = []
        router_p50: list[float] = []
        redirect_p50: list[float] = []
        for _ in range(args.rounds):
            direct_p50.append(percentile(asyncio.run(ws_latency(direct[0].ws_url, episodes, args.steps)), 0.5) * 1e3)
            router_p50.append(percentile(asyncio.run(ws_latency(router_1.ws_url, episodes, args.steps)), 0.5) * 1e3)
            redirect_p50.append(percentile(asyncio.run(ws_latency(redirect_1.ws_url, episodes, args.steps)), 0.5) * 1e3)
        added = statistics.median(r - d for r, d in zip(router_p50, direct_p50, strict=True))
        added_redirect = statistics.median(r - d for r, d in zip(redirect_p50, direct_p50, strict=True))
        print(
            f"step latency p50: direct {statistics.median(direct_p50):.3f} ms, relayed by the router "
            f"{statistics.median(router_p50):.3f} ms (added {added:.3f} ms), placed by its redirect "
            f"{statistics.median(redirect_p50):.3f} ms (added {added_redirect:.3f} ms); medians of "
            f"{args.rounds} rounds; per round p50s direct {_rounded(direct_p50)}, relayed {_rounded(router_p50)}, "
            f"redirected {_rounded(redirect_p50)}"
        )
        rates = {}
        for name, endpoints, redirected in (
            ("direct_1", direct[:1], False),
            ("router_1", [router_1], False),
            ("router_2", [router_2], False),
            ("redirect_2", [redirect_2], True),
            ("direct_2", direct, False),
        ):
            rates[name] = asyncio.run(throughput(endpoints, episodes, args.sessions, args.seconds, redirected))
            print(f"WebSocket, {args.sessions} sessions, {name}: {rates[name]:,.0f} steps/s")
    finally:
        for process in routers:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        replicas.stop()
    print(
        json.dumps(
            {
                "bench": "cluster",
                "cpus": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "sessions": args.sessions,
                "direct_p50_ms": round(statistics.median(direct_p50), 4),
                "router_p50_ms": round(statistics.median(router_p50), 4),
                "router_added_p50_ms": round(added, 4),
                "redirect_p50_ms": round(statistics.median(redirect_p50), 4),
                "redirect_added_p50_ms": round(added_redirect, 4),
                "ws_steps_per_second": {name: round(rate) for name, rate in rates.items()},
            }
        )
    )


def _rounded(values: list[float]) -> list[float]:
    return [round(value, 3) for value in values]


if __name__ == "__main__":
    main()
