"""Reset keywords this server does not take are ignored, as openenv's server ignores them, and named."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets

from tests.support.server_fixtures import RunningServer
from workflow_orchestrator import WorkflowClient

# What a harness may send along: its own bookkeeping, and openenv's task API selectors.
HARNESS_KEYWORDS = {"split": "test", "index": 3, "prompt_id": "row-17"}


def test_http_reset_ignores_and_names_unknown_keywords(http: httpx.Client) -> None:
    plain = http.post("/reset", json={"task_id": "medium", "seed": 21}).json()
    response = http.post("/reset", json={"task_id": "medium", "seed": 21, **HARNESS_KEYWORDS})
    assert response.status_code == 200, response.text
    observation = response.json()["observation"]
    assert observation["metadata"] == {"ignored_reset_options": sorted(HARNESS_KEYWORDS)}
    # The episode is the one the known keywords ask for.
    assert observation["subtasks"] == plain["observation"]["subtasks"]
    assert "metadata" not in plain["observation"] or not plain["observation"]["metadata"]


def test_known_keywords_are_still_checked(http: httpx.Client) -> None:
    response = http.post("/reset", json={"task_id": "medium", "seed": -1, "split": "test"})
    assert response.status_code == 422


def test_websocket_reset_ignores_and_names_unknown_keywords(live_server: RunningServer) -> None:
    async def reset() -> dict[str, object]:
        async with websockets.connect(live_server.ws_url, proxy=None) as ws:
            await ws.send(json.dumps({"type": "reset", "data": {"task_id": "easy", **HARNESS_KEYWORDS}}))
            return json.loads(await ws.recv())

    reply = asyncio.run(reset())
    assert reply["type"] == "observation", reply
    assert reply["data"]["observation"]["metadata"] == {"ignored_reset_options": sorted(HARNESS_KEYWORDS)}


def test_the_client_passes_further_options_through(live_server: RunningServer) -> None:
    with WorkflowClient(live_server.url).sync() as env:
        result = env.reset(task_id="easy", seed=7, prompt_id="row-17")
    assert result.observation.metadata == {"ignored_reset_options": ["prompt_id"]}
