"""Episodes played over the wire for the cluster tests: the same fixed policy over WebSocket or HTTP.

A trajectory is what the server answered at each step (observation without
the episode's id, reward, done), so that one played through the router and
one played alone on a replica compare equal when the router changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect as ws_connect

MAX_STEPS = 30
TASKS = ("easy", "medium")


def episode_of(index: int) -> tuple[str, int]:
    """The task and seed of the ``index``-th episode of a test."""
    return TASKS[index % len(TASKS)], 100 + index


def choose(observation: dict[str, Any], step: int, seed: int) -> dict[str, Any]:
    """A fixed policy: a legal action picked by the step and the seed."""
    legal = observation.get("legal_actions") or [{"action_type": "wait"}]
    return legal[(seed + step) % len(legal)]


def _point(envelope: dict[str, Any]) -> dict[str, Any]:
    observation = {key: value for key, value in envelope["observation"].items() if key != "episode_id"}
    return {"observation": observation, "reward": envelope.get("reward"), "done": envelope.get("done")}


async def play_ws(url: str, task_id: str, seed: int, steps: int = MAX_STEPS) -> tuple[str, list[dict[str, Any]]]:
    """One episode over ``url``'s /ws: its id and its trajectory."""
    ws_url = "ws://" + url.split("://", 1)[1] + "/ws"
    async with ws_connect(ws_url, compression=None, proxy=None, max_size=None) as socket:
        await socket.send(orjson.dumps({"type": "reset", "data": {"task_id": task_id, "seed": seed}}).decode())
        reply = orjson.loads(await socket.recv())
        assert reply["type"] == "observation", reply
        envelope = reply["data"]
        episode_id = envelope["observation"]["episode_id"]
        trajectory = [_point(envelope)]
        for step in range(steps):
            if envelope.get("done"):
                break
            action = choose(envelope["observation"], step, seed)
            await socket.send(orjson.dumps({"type": "step", "data": action}).decode())
            reply = orjson.loads(await socket.recv())
            assert reply["type"] == "observation", reply
            envelope = reply["data"]
            trajectory.append(_point(envelope))
    return episode_id, trajectory


async def play_http(
    http: httpx.AsyncClient, task_id: str, seed: int, steps: int = MAX_STEPS
) -> tuple[str, list[dict[str, Any]]]:
    """One episode over POST /reset and /step: its id and its trajectory."""
    response = await http.post("/reset", json={"task_id": task_id, "seed": seed})
    assert response.status_code == 200, response.text
    envelope = response.json()
    episode_id = envelope["observation"]["episode_id"]
    headers = {"X-Episode-Secret": envelope["episode_secret"]}
    trajectory = [_point(envelope)]
    for step in range(steps):
        if envelope.get("done"):
            break
        action = choose(envelope["observation"], step, seed)
        response = await http.post("/step", json={"episode_id": episode_id, "action": action}, headers=headers)
        assert response.status_code == 200, response.text
        envelope = response.json()
        trajectory.append(_point(envelope))
    return episode_id, trajectory
