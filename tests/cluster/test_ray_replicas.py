"""Two server replicas on a real local Ray cluster behind the router.

The cluster (2 CPUs, no dashboard) is started once for the module and always
shut down. Skipped, saying so, only where Ray is not installed (the ``ray``
extra: ``bash .ci/install-extras ray``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from tests.support.cluster_play import MAX_STEPS, choose, episode_of, play_http, play_ws
from workflow_orchestrator.cluster import RouterThread
from workflow_orchestrator.server.http.settings import ServerSettings

pytest.importorskip("ray", reason="Ray is not installed (the ray extra: bash .ci/install-extras ray)")

from workflow_orchestrator.cluster.replicas import RayReplicas  # noqa: E402

EPISODES = 64


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RayReplicas, RouterThread]]:
    archive = Path(tmp_path_factory.mktemp("ray")) / "archive.sqlite3"
    # One client (this test, on loopback) holds every episode: room for all of them on each replica.
    settings = ServerSettings(
        archive_path=str(archive), log_level="warning", max_episodes=1024, max_episodes_per_client=1024
    )
    replicas = RayReplicas(2, settings, num_cpus=2, namespace="workflow_orchestrator_tests")
    try:
        replicas.start()
        with RouterThread(replicas, health_interval_s=0.2) as router:
            yield replicas, router
    finally:
        replicas.stop()


def prefix_of(episode_id: str) -> str:
    return episode_id.split(".", 1)[0]


def test_64_episodes_over_websocket_and_64_over_http_through_the_router_play_as_alone(
    cluster: tuple[RayReplicas, RouterThread],
) -> None:
    replicas, router = cluster
    direct = replicas.addresses()[0].url
    episodes = [episode_of(index) for index in range(EPISODES)]

    async def main() -> tuple[list[tuple[str, list[dict[str, object]]]], ...]:
        async with httpx.AsyncClient(base_url=router.url, trust_env=False, timeout=60) as http:
            together = await asyncio.gather(
                *(play_ws(router.url, task_id, seed) for task_id, seed in episodes),
                *(play_http(http, task_id, seed) for task_id, seed in episodes),
            )
        # The same episodes one at a time, straight to one replica.
        alone = [await play_ws(direct, task_id, seed) for task_id, seed in episodes]
        return together[:EPISODES], together[EPISODES:], alone

    over_ws, over_http, alone = asyncio.run(main())
    expected = [trajectory for _, trajectory in alone]
    assert [trajectory for _, trajectory in over_ws] == expected
    assert [trajectory for _, trajectory in over_http] == expected
    # Both replicas took sessions and HTTP episodes, and the ids name them.
    prefixes = {address.prefix for address in replicas.addresses()}
    assert {prefix_of(episode_id) for episode_id, _ in over_ws} == prefixes
    assert {prefix_of(episode_id) for episode_id, _ in over_http} == prefixes


async def _session(url: str, task_id: str, seed: int) -> tuple[ClientConnection, dict[str, object]]:
    socket = await ws_connect("ws://" + url.split("://", 1)[1] + "/ws", compression=None, proxy=None)
    await socket.send(orjson.dumps({"type": "reset", "data": {"task_id": task_id, "seed": seed}}).decode())
    reply = orjson.loads(await socket.recv())
    assert reply["type"] == "observation", reply
    return socket, reply["data"]


async def _finish(socket: ClientConnection, envelope: dict[str, object], seed: int) -> int:
    """Play a session on to the end (or MAX_STEPS); the steps it took."""
    steps = 0
    while not envelope.get("done") and steps < MAX_STEPS:
        action = choose(envelope["observation"], steps, seed)  # type: ignore[arg-type]
        await socket.send(orjson.dumps({"type": "step", "data": action}).decode())
        reply = orjson.loads(await asyncio.wait_for(socket.recv(), timeout=30))
        assert reply["type"] == "observation", reply
        envelope = reply["data"]
        steps += 1
    await socket.close()
    return steps


def test_a_killed_replica_fails_its_episodes_fast_the_other_finishes_and_the_restarted_one_rejoins(
    cluster: tuple[RayReplicas, RouterThread],
) -> None:
    replicas, router = cluster
    victim = replicas.addresses()[0]
    http = httpx.Client(base_url=router.url, trust_env=False, timeout=60)

    async def main() -> None:
        sessions = [await _session(router.url, "medium", seed) for seed in range(8)]
        on_victim = [(s, e) for s, e in sessions if prefix_of(e["observation"]["episode_id"]) == victim.prefix]  # type: ignore[index]
        survivors = [(s, e, seed) for seed, (s, e) in enumerate(sessions) if (s, e) not in on_victim]
        assert on_victim and survivors
        resets = [http.post("/reset", json={"task_id": "easy", "seed": seed}).json() for seed in range(4)]
        lost = next(r for r in resets if prefix_of(r["observation"]["episode_id"]) == victim.prefix)
        lost_id = lost["observation"]["episode_id"]

        # The replica's process dies as in a crash (Ray sees it die and starts another).
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        started = time.monotonic()
        # The victim's sessions get the documented error frame at once.
        for socket, envelope in on_victim:
            action = choose(envelope["observation"], 0, 0)  # type: ignore[arg-type]
            try:
                await socket.send(orjson.dumps({"type": "step", "data": action}).decode())
            except Exception:  # the router may have closed it already; the error frame is queued
                pass
            reply = orjson.loads(await asyncio.wait_for(socket.recv(), timeout=10))
            assert reply["type"] == "error" and reply["data"]["reason"] == "replica_unavailable", reply
        assert time.monotonic() - started < 10
        # Its HTTP episodes too: 503 while it is down (410 once it is back).
        started = time.monotonic()
        step = http.post("/step", json={"episode_id": lost_id, "action": {"action_type": "wait"}})
        assert (step.status_code, step.json()["error"]) in ((503, "replica_unavailable"), (410, "episode_lost"))
        assert time.monotonic() - started < 5
        # New episodes land on the survivor while the victim is down.
        fresh = [http.post("/reset", json={"task_id": "easy"}).json()["observation"]["episode_id"] for _ in range(3)]
        fresh_socket, fresh_envelope = await _session(router.url, "easy", 5)
        if router.router.replicas[victim.name].restarts == 0:
            assert all(not episode_id.startswith(victim.name) for episode_id in fresh)
            assert not fresh_envelope["observation"]["episode_id"].startswith(victim.name)  # type: ignore[index]
        await fresh_socket.close()
        # The survivor's sessions play on to the end.
        steps = await asyncio.gather(*(_finish(s, e, seed) for s, e, seed in survivors))
        assert all(count > 0 for count in steps)

        # Ray restarts the victim; it rejoins with a new incarnation and takes episodes again.
        deadline = time.monotonic() + 90
        while True:
            health = http.get("/health").json()
            entry = next(r for r in health["replicas"] if r["name"] == victim.name)
            if entry["alive"] and entry["restarts"] >= 1:
                break
            assert time.monotonic() < deadline, health
            await asyncio.sleep(0.2)
        assert entry["prefix"] != victim.prefix and entry["pid"] != victim.pid
        step = http.post("/step", json={"episode_id": lost_id, "action": {"action_type": "wait"}})
        assert step.status_code == 410 and step.json()["error"] == "episode_lost"
        again = [http.post("/reset", json={"task_id": "easy"}).json()["observation"]["episode_id"] for _ in range(4)]
        assert entry["prefix"] in {prefix_of(episode_id) for episode_id in again}

    try:
        asyncio.run(main())
    finally:
        http.close()
