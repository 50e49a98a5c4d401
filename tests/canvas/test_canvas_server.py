"""Canvas episodes on a real server on loopback: /tasks, HTTP and WebSocket
episodes equal to the same actions played in process, the published reward mode
and the XML action on the wire."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets

from tests.support.server_fixtures import RunningServer
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv

TASKS = ("canvas/math", "canvas/code", "canvas/qa", "canvas/mixed")


def in_process(task_id: str, seed: int, actions: list[dict[str, Any]], mode: str = "shaped") -> dict[str, Any]:
    env = WorkflowEnv()
    observation = env.reset(task_id, seed=seed, reward_mode=mode)
    for action in actions:
        observation = env.step(action)
    return observation


def test_tasks_lists_the_canvas_tasks(http: httpx.Client) -> None:
    listed = {task["task_id"]: task for task in http.get("/tasks").json()["tasks"]}
    assert all(listed[task]["family"] == "canvas" for task in TASKS)


def test_an_http_episode_is_the_in_process_one(http: httpx.Client) -> None:
    for task_id in TASKS:
        policy = make_policy("heuristic")
        reply = http.post("/reset", json={"task_id": task_id, "seed": 21}).json()
        episode_id = reply["observation"]["episode_id"]
        actions = []
        while not reply["done"]:
            action = policy.act(reply["observation"])
            actions.append(action)
            response = http.post("/step", json={"episode_id": episode_id, "action": action})
            assert response.status_code == 200, response.text
            reply = response.json()
        expected = in_process(task_id, 21, actions)
        assert reply["observation"]["grade"]["score"] == expected["grade"]["score"] > 0.5
        assert reply["observation"]["canvas"] == expected["canvas"]
        state = http.get("/state", params={"episode_id": episode_id}).json()
        assert [row["kind"] for row in state["events"]][-2:] == ["finished", "episode_end"]


def test_the_xml_form_and_the_published_reward_over_http(http: httpx.Client) -> None:
    reply = http.post("/reset", json={"task_id": "canvas/math", "seed": 3, "reward_mode": "published"}).json()
    episode_id = reply["observation"]["episode_id"]
    actions = [
        {"action_type": "xml", "text": "<add>Programmer</add>"},
        {"action_type": "add", "operator": "Verify", "position": 2},
        {"action_type": "xml", "text": "<finish/>"},
    ]
    for action in actions:
        reply = http.post("/step", json={"episode_id": episode_id, "action": action}).json()
    expected = in_process("canvas/math", 3, actions, "published")
    assert reply["done"] and reply["reward"] == expected["reward"] == -1 + 1 / 3
    bad = http.post("/step", json={"episode_id": episode_id, "action": {"action_type": "add", "target": "one"}})
    assert bad.status_code == 422


def test_a_websocket_episode_is_the_in_process_one(live_server: RunningServer) -> None:
    async def play() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        policy = make_policy("template")
        async with websockets.connect(live_server.ws_url) as ws:
            await ws.send(json.dumps({"type": "reset", "data": {"task_id": "canvas/code", "seed": 8}}))
            reply = json.loads(await ws.recv())
            actions = []
            while not reply["data"]["done"]:
                action = policy.act(reply["data"]["observation"])
                actions.append(action)
                await ws.send(json.dumps({"type": "step", "data": action}))
                reply = json.loads(await ws.recv())
                assert reply["type"] == "observation", reply
            return reply["data"], actions

    data, actions = asyncio.run(play())
    expected = in_process("canvas/code", 8, actions)
    assert data["observation"]["grade"]["score"] == expected["grade"]["score"]
    assert (
        data["observation"]["canvas"]["dsl"]
        == "Plan -> [Programmer, AnswerGenerate, Custom] -> ScEnsemble -> Test ? Revise : Format"
    )
