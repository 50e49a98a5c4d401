"""The /ws session protocol against a live server: episodes, isolation, capacity, dropped connections."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets

from tests.support.server_fixtures import RunningServer, start_server
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry

SESSIONS = 64
TASKS = ("easy", "medium", "hard", "expert")


def first_legal(observation: dict[str, Any]) -> dict[str, Any]:
    legal = observation["legal_actions"]
    return legal[0] if legal else {"action_type": "wait"}


def fingerprint(observation: dict[str, Any], reward: Any, done: bool) -> str:
    """What must be equal between a session and the same actions run alone."""
    view = {key: value for key, value in observation.items() if key != "episode_id"}
    return json.dumps([view, reward, done], sort_keys=True)


def play_alone(task_id: str, seed: int) -> list[str]:
    core = WorkflowEnv(registry=default_registry())
    observation = core.reset(task_id=task_id, seed=seed)
    trajectory = []
    while True:
        observation = dict(observation)
        reward, done = observation.pop("reward"), observation.pop("done")
        trajectory.append(fingerprint(observation, reward, done))
        if done:
            return trajectory
        observation = core.step(first_legal(observation))


async def request(ws: Any, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return json.loads(await ws.recv())


async def ask_for_a_slot(url: str) -> dict[str, Any]:
    """Open a session and reset it: the observation, or the server's refusal.

    A refused connection gets the capacity error and then a close, both sent
    at once: the close may come before the reset is sent, so a closed
    connection is read for the refusal it already holds.
    """
    async with websockets.connect(url) as ws:
        try:
            await ws.send(json.dumps({"type": "reset", "data": {"task_id": "easy"}}))
        except websockets.ConnectionClosed:
            pass
        reply: dict[str, Any] = json.loads(await ws.recv())
        return reply


async def play_session(ws: Any, task_id: str, seed: int) -> list[str]:
    reply = await request(ws, {"type": "reset", "data": {"task_id": task_id, "seed": seed}})
    trajectory = []
    while True:
        assert reply["type"] == "observation", reply
        data = reply["data"]
        trajectory.append(fingerprint(data["observation"], data["reward"], data["done"]))
        if data["done"]:
            return trajectory
        reply = await request(ws, {"type": "step", "data": first_legal(data["observation"])})
        await asyncio.sleep(0)  # let the other sessions interleave


def test_a_websocket_episode_matches_the_core(live_server: RunningServer) -> None:
    async def run() -> list[str]:
        async with websockets.connect(live_server.ws_url) as ws:
            return await play_session(ws, "hard", 8)

    assert asyncio.run(run()) == play_alone("hard", 8)


def test_64_concurrent_sessions_do_not_interfere_and_the_65th_is_refused(live_server: RunningServer) -> None:
    plans = [(TASKS[index % len(TASKS)], 100 + index) for index in range(SESSIONS)]
    expected = [play_alone(task_id, seed) for task_id, seed in plans]

    async def run() -> tuple[list[list[str]], dict[str, Any]]:
        connections = [await websockets.connect(live_server.ws_url) for _ in range(SESSIONS)]
        try:
            trajectories = await asyncio.wait_for(
                asyncio.gather(*(play_session(ws, *plan) for ws, plan in zip(connections, plans, strict=True))),
                timeout=120,
            )
            async with websockets.connect(live_server.ws_url) as extra:
                refusal = json.loads(await asyncio.wait_for(extra.recv(), timeout=10))
            return list(trajectories), refusal
        finally:
            for ws in connections:
                await ws.close()

    trajectories, refusal = asyncio.run(run())
    for index, (got, want) in enumerate(zip(trajectories, expected, strict=True)):
        assert got == want, f"session {index} ({plans[index]}) diverged from the same actions run alone"
    assert refusal["type"] == "error"
    assert refusal["data"]["code"] == "CAPACITY_REACHED"
    assert refusal["data"]["max_sessions"] == SESSIONS


def test_a_dropped_connection_frees_its_slot_at_once(live_server: RunningServer) -> None:
    async def run() -> dict[str, Any]:
        connections = [await websockets.connect(live_server.ws_url) for _ in range(SESSIONS)]
        try:
            for ws in connections:  # every slot holds a live episode
                assert (await request(ws, {"type": "reset", "data": {"task_id": "easy"}}))["type"] == "observation"
            dropped = connections.pop()
            dropped.transport.abort()  # no close frame: the client just vanishes
            deadline = time.monotonic() + 1.0
            while True:
                reply = await ask_for_a_slot(live_server.ws_url)
                if reply["type"] == "observation" or time.monotonic() > deadline:
                    return reply
                # Until the server has seen the drop, a newcomer is refused for capacity, and nothing else.
                assert reply["type"] == "error" and reply["data"]["code"] == "CAPACITY_REACHED", reply
                await asyncio.sleep(0.02)
        finally:
            for ws in connections:
                await ws.close()

    assert asyncio.run(run())["type"] == "observation"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", "INVALID_JSON"),
        ('{"type": "teleport"}', "UNKNOWN_TYPE"),
        ('{"data": {}}', "UNKNOWN_TYPE"),
        ('{"type": "step", "data": {"action_type": "fly"}}', "VALIDATION_ERROR"),
        ('{"type": "step", "data": {"action_type": "wait"}}', "EXECUTION_ERROR"),  # before any reset
        ('{"type": "reset", "data": {"task_id": "nope"}}', "VALIDATION_ERROR"),
        ('{"type": "reset", "data": {"seed": -3}}', "VALIDATION_ERROR"),
        ('{"type": "reset", "data": {"reward_mode": "dense"}}', "VALIDATION_ERROR"),
    ],
)
def test_bad_messages_get_an_error_and_the_session_goes_on(live_server: RunningServer, message: str, code: str) -> None:
    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with websockets.connect(live_server.ws_url) as ws:
            await ws.send(message)
            error = json.loads(await ws.recv())
            after = await request(ws, {"type": "reset", "data": {"task_id": "easy"}})
            return error, after

    error, after = asyncio.run(run())
    assert error["type"] == "error" and error["data"]["code"] == code and error["data"]["message"]
    assert after["type"] == "observation"


def test_state_message_returns_the_full_state(live_server: RunningServer) -> None:
    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with websockets.connect(live_server.ws_url) as ws:
            reset = await request(ws, {"type": "reset", "data": {"task_id": "easy", "seed": 1}})
            await request(ws, {"type": "step", "data": first_legal(reset["data"]["observation"])})
            return reset, await request(ws, {"type": "state"})

    reset, state = asyncio.run(run())
    assert state["type"] == "state"
    assert state["data"]["episode_id"] == reset["data"]["observation"]["episode_id"]
    assert state["data"]["step_count"] == 1 and len(state["data"]["trace"]) == 1


def test_a_websocket_episode_can_be_graded_and_read_over_http(live_server: RunningServer, http: httpx.Client) -> None:
    async def run() -> tuple[str, bool]:
        async with websockets.connect(live_server.ws_url) as ws:
            reply = await request(ws, {"type": "reset", "data": {"task_id": "easy", "seed": 9}})
            episode_id = reply["data"]["observation"]["episode_id"]
            # While the session holds it, HTTP may not step it.
            blocked = http.post("/step", json={"episode_id": episode_id, "action": {"action_type": "wait"}})
            assert blocked.status_code == 409
            while not reply["data"]["done"]:
                reply = await request(ws, {"type": "step", "data": first_legal(reply["data"]["observation"])})
            return episode_id, reply["data"]["done"]

    episode_id, _ = asyncio.run(run())
    assert http.post("/grader", json={"episode_id": episode_id}).status_code == 200
    assert http.get(f"/episodes/{episode_id}").json()["done"] is True


def test_close_message_ends_the_session(live_server: RunningServer) -> None:
    async def run() -> int | None:
        async with websockets.connect(live_server.ws_url) as ws:
            await ws.send('{"type": "close"}')
            await asyncio.wait_for(ws.wait_closed(), timeout=5)
            return ws.close_code

    assert asyncio.run(run()) == 1000


def test_an_idle_session_is_closed(tmp_path: Any) -> None:
    server = start_server(tmp_path, "--session-idle-timeout", "1")
    try:

        async def run() -> tuple[dict[str, Any], float]:
            async with websockets.connect(server.ws_url) as ws:
                await request(ws, {"type": "reset", "data": {"task_id": "easy"}})
                started = time.monotonic()
                notice = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                await asyncio.wait_for(ws.wait_closed(), timeout=5)
                return notice, time.monotonic() - started

        notice, waited = asyncio.run(run())
        assert notice["data"]["code"] == "SESSION_ERROR" and "idle" in notice["data"]["message"]
        assert 1.0 <= waited < 5.0
    finally:
        server.stop()


def test_an_oversized_message_closes_only_that_session(live_server: RunningServer) -> None:
    async def run() -> tuple[int | None, str]:
        async with websockets.connect(live_server.ws_url, max_size=None) as big:
            await big.send(json.dumps({"type": "reset", "data": {"task_id": "x" * 100_000}}))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(big.recv(), timeout=10)
            code = big.close_code
        async with websockets.connect(live_server.ws_url) as ws:
            reply = await request(ws, {"type": "reset", "data": {"task_id": "easy"}})
        return code, reply["type"]

    code, after = asyncio.run(run())
    assert code == 1009  # message too big
    assert after == "observation"


def test_binary_frames_are_read_like_text(live_server: RunningServer) -> None:
    async def run() -> dict[str, Any]:
        async with websockets.connect(live_server.ws_url) as ws:
            await ws.send(json.dumps({"type": "reset", "data": {"task_id": "easy"}}).encode())
            return json.loads(await ws.recv())

    assert asyncio.run(run())["type"] == "observation"
