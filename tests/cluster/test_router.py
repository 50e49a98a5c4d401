"""The router over two plain servers (``--replica-name``), no Ray needed: placement, routing by episode id,
capacity fallback (router and client), the whole set's /health, and a replica that goes away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect as ws_connect

from tests.support.cluster_play import play_http, play_ws
from tests.support.server_fixtures import RunningServer, start_server
from workflow_orchestrator.client import WorkflowClient
from workflow_orchestrator.cluster import RouterThread, StaticReplicas

MAX_SESSIONS = 2


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    log_dir = tmp_path_factory.mktemp("router")
    servers: dict[str, RunningServer] = {}
    try:
        for name in ("r0", "r1"):
            servers[name] = start_server(log_dir, "--replica-name", name, "--max-sessions", str(MAX_SESSIONS))
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def router(replicas: dict[str, RunningServer]) -> Iterator[RouterThread]:
    source = StaticReplicas({name: server.url for name, server in replicas.items()})
    with RouterThread(source, health_interval_s=0.2) as running:
        yield running


def ws_url(url: str) -> str:
    return "ws://" + url.split("://", 1)[1] + "/ws"


async def open_session(url: str) -> tuple[object, str]:
    """A WebSocket session with an episode started: the connection and the episode's id."""
    socket = await ws_connect(ws_url(url), compression=None, proxy=None)
    await socket.send(orjson.dumps({"type": "reset", "data": {"task_id": "easy", "seed": 1}}).decode())
    reply = orjson.loads(await socket.recv())
    assert reply["type"] == "observation", reply
    return socket, reply["data"]["observation"]["episode_id"]


def test_the_replica_name_starts_every_episode_id_it_makes(replicas: dict[str, RunningServer]) -> None:
    response = httpx.post(f"{replicas['r1'].url}/reset", json={"task_id": "easy"}, trust_env=False)
    assert response.json()["observation"]["episode_id"].startswith("r1.")


def test_http_episodes_go_to_both_replicas_and_are_continued_on_theirs(router: RouterThread) -> None:
    async def main() -> list[tuple[str, list[dict[str, object]]]]:
        async with httpx.AsyncClient(base_url=router.url, trust_env=False, timeout=30) as http:
            return await asyncio.gather(*(play_http(http, "easy", seed, steps=5) for seed in range(6)))

    played = asyncio.run(main())
    prefixes = {episode_id.split(".")[0] for episode_id, _ in played}
    assert prefixes == {"r0", "r1"}
    with httpx.Client(base_url=router.url, trust_env=False) as http:
        episode_id = played[0][0]
        assert http.get("/state", params={"episode_id": episode_id}).json()["episode_id"] == episode_id
        assert http.get(f"/episodes/{episode_id}").json()["step_count"] == 5


def test_a_chosen_episode_id_always_reaches_the_same_replica(router: RouterThread) -> None:
    with httpx.Client(base_url=router.url, trust_env=False) as http:
        reset = http.post("/reset", json={"task_id": "easy", "episode_id": "my-own-episode-7"})
        assert reset.status_code == 200, reset.text
        secret = {"X-Episode-Secret": reset.json()["episode_secret"]}
        for _ in range(3):
            step = http.post(
                "/step", json={"episode_id": "my-own-episode-7", "action": {"action_type": "wait"}}, headers=secret
            )
            assert step.status_code == 200, step.text


def test_health_answers_for_the_set_and_tasks_as_a_replica_does(
    router: RouterThread, replicas: dict[str, RunningServer]
) -> None:
    with httpx.Client(base_url=router.url, trust_env=False) as http:
        health = http.get("/health").json()
        assert health["status"] == "healthy"
        assert [replica["name"] for replica in health["replicas"]] == ["r0", "r1"]
        assert all(replica["alive"] for replica in health["replicas"])
        assert http.get("/tasks").content == httpx.get(f"{replicas['r0'].url}/tasks", trust_env=False).content
        assert http.get("/metadata").json()["name"] == "workflow_orchestrator"


def test_a_full_replica_is_passed_over_by_the_router_and_by_the_client(
    router: RouterThread, replicas: dict[str, RunningServer]
) -> None:
    async def main() -> None:
        # r0 filled directly: the router does not know, so it tries r0 in turn and moves on.
        direct = [await open_session(replicas["r0"].url) for _ in range(MAX_SESSIONS)]
        try:
            routed = [await open_session(router.url) for _ in range(MAX_SESSIONS)]
            assert all(episode_id.startswith("r1.") for _, episode_id in routed)
            # Every replica full: the client gets the capacity error.
            socket = await ws_connect(ws_url(router.url), compression=None, proxy=None)
            await socket.send(orjson.dumps({"type": "reset", "data": {}}).decode())
            reply = orjson.loads(await socket.recv())
            assert reply["data"]["code"] == "CAPACITY_REACHED"
            await socket.close()
            for socket, _ in routed:
                await socket.close()
            # The client given both URLs, starting on the full one, moves to the other.
            client = WorkflowClient([replicas["r0"].url, replicas["r1"].url], spread=False)
            try:
                result = await client.reset(task_id="easy", seed=3)
                assert result.observation.episode_id.startswith("r1.")
            finally:
                await client.close()
        finally:
            for socket, _ in direct:
                await socket.close()

    asyncio.run(main())


def test_the_trajectories_through_the_router_are_those_played_alone(
    router: RouterThread, replicas: dict[str, RunningServer]
) -> None:
    async def main() -> None:
        routed = await asyncio.gather(*(play_ws(router.url, "medium", seed) for seed in range(2)))
        alone = [await play_ws(replicas["r1"].url, "medium", seed) for seed in range(2)]
        assert [trajectory for _, trajectory in routed] == [trajectory for _, trajectory in alone]

    asyncio.run(main())


def test_a_replica_gone_fails_its_episodes_fast_and_new_ones_go_to_the_other(
    tmp_path: pytest.TempPathFactory, replicas: dict[str, RunningServer]
) -> None:
    # A router of its own over r0 and a server of its own, which this test stops.
    doomed = start_server(tmp_path, "--replica-name", "r9")  # type: ignore[arg-type]
    source = StaticReplicas({"r0": replicas["r0"].url, "r9": doomed.url})
    try:
        with (
            RouterThread(source, health_interval_s=0.2) as running,
            httpx.Client(base_url=running.url, trust_env=False, timeout=30) as http,
        ):
            ids = [http.post("/reset", json={"task_id": "easy"}).json()["observation"]["episode_id"] for _ in range(4)]
            lost = next(episode_id for episode_id in ids if episode_id.startswith("r9."))

            async def session_on_r9() -> object:
                while True:
                    socket, episode_id = await open_session(running.url)
                    if episode_id.startswith("r9."):
                        return socket
                    await socket.close()

            async def main() -> None:
                socket = await session_on_r9()
                doomed.process.kill()
                doomed.process.wait()
                started = time.monotonic()
                reply = orjson.loads(await asyncio.wait_for(socket.recv(), timeout=10))  # type: ignore[attr-defined]
                assert reply["data"]["reason"] == "replica_unavailable"
                assert time.monotonic() - started < 5

            asyncio.run(main())
            started = time.monotonic()
            step = http.post("/step", json={"episode_id": lost, "action": {"action_type": "wait"}})
            assert step.status_code == 503 and step.json()["error"] == "replica_unavailable"
            assert time.monotonic() - started < 5
            fresh = [
                http.post("/reset", json={"task_id": "easy"}).json()["observation"]["episode_id"] for _ in range(3)
            ]
            assert all(episode_id.startswith("r0.") for episode_id in fresh)
            assert http.get("/health").json()["status"] == "degraded"
    finally:
        doomed.stop()


# --------------------------------------------------------------------------- placement by redirect


@pytest.fixture(scope="module")
def redirecting(replicas: dict[str, RunningServer]) -> Iterator[RouterThread]:
    source = StaticReplicas({name: server.url for name, server in replicas.items()})
    with RouterThread(source, health_interval_s=0.2, ws_redirect=True) as running:
        yield running


async def _settle(router: RouterThread, replicas: dict[str, RunningServer], sessions: int) -> None:
    """Until the router's health reads show ``sessions`` held in all (sessions close and open asynchronously)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        held = [httpx.get(f"{server.url}/health", trust_env=False).json()["sessions"] for server in replicas.values()]
        if sum(held) == sessions:
            await asyncio.sleep(0.5)  # two health rounds of the router
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the replicas hold {held} sessions, not {sessions}")


def test_redirected_sessions_talk_to_their_replica_directly_and_play_as_alone(
    redirecting: RouterThread, replicas: dict[str, RunningServer]
) -> None:
    ports = {server.port: name for name, server in replicas.items()}

    async def main() -> None:
        await _settle(redirecting, replicas, 0)
        sockets = [await open_session(redirecting.url) for _ in range(2)]
        try:
            # Connected to the replica itself, not to the router; one session on each.
            placed = {ports[socket.remote_address[1]] for socket, _ in sockets}  # type: ignore[attr-defined]
            assert placed == {"r0", "r1"}
            assert {episode_id.split(".")[0] for _, episode_id in sockets} == placed
        finally:
            for socket, _ in sockets:
                await socket.close()  # type: ignore[attr-defined]
        await _settle(redirecting, replicas, 0)
        routed = [await play_ws(redirecting.url, "medium", seed) for seed in range(2)]
        alone = [await play_ws(replicas["r1"].url, "medium", seed) for seed in range(2)]
        assert [trajectory for _, trajectory in routed] == [trajectory for _, trajectory in alone]
        client = WorkflowClient(redirecting.url)
        try:
            result = await client.reset(task_id="easy", seed=3)
            assert result.observation.episode_id.split(".")[0] in {"r0", "r1"}
        finally:
            await client.close()

    asyncio.run(main())


def test_a_redirecting_router_passes_over_a_full_replica(
    redirecting: RouterThread, replicas: dict[str, RunningServer]
) -> None:
    async def main() -> None:
        await _settle(redirecting, replicas, 0)
        direct = [await open_session(replicas["r0"].url) for _ in range(MAX_SESSIONS)]
        try:
            await _settle(redirecting, replicas, MAX_SESSIONS)
            routed = [await open_session(redirecting.url) for _ in range(MAX_SESSIONS)]
            assert all(episode_id.startswith("r1.") for _, episode_id in routed)
            # Every replica full: the client gets the capacity error, as from the relay.
            socket = await ws_connect(ws_url(redirecting.url), compression=None, proxy=None)
            await socket.send(orjson.dumps({"type": "reset", "data": {}}).decode())
            assert orjson.loads(await socket.recv())["data"]["code"] == "CAPACITY_REACHED"
            await socket.close()
            for socket, _ in routed:
                await socket.close()  # type: ignore[attr-defined]
        finally:
            for socket, _ in direct:
                await socket.close()  # type: ignore[attr-defined]

    asyncio.run(main())
