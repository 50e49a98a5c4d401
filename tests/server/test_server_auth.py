"""Access control: with a token configured, every route but /health needs it, WebSocket included."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.support.server_fixtures import RunningServer, start_server
from workflow_orchestrator.client import WorkflowClient

TOKEN = "s3cret-token-for-tests"
REFUSAL = {"error": "unauthorized", "message": "missing or wrong bearer token"}


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("guarded"), env={"WORKFLOW_ORCHESTRATOR_TOKEN": TOKEN})
    yield server
    server.stop()


def every_route(server: RunningServer) -> list[tuple[str, str]]:
    schema = httpx.get(
        f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False
    ).json()
    routes = [
        (method.upper(), path.replace("{episode_id}", "some-episode"))
        for path, operations in schema["paths"].items()
        for method in operations
    ]
    return routes + [("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/redoc"), ("GET", "/no-such-route")]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"])
def test_every_route_but_health_refuses_a_missing_or_wrong_token(
    guarded_server: RunningServer, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    routes = every_route(guarded_server)
    assert ("POST", "/step") in routes and ("GET", "/tasks") in routes
    with httpx.Client(base_url=guarded_server.url, trust_env=False) as http:
        for method, path in routes:
            if path == "/health":
                continue
            reply = http.request(method, path, headers=headers, json={"task_id": "easy"} if method == "POST" else None)
            assert reply.status_code == 401, (method, path, reply.status_code)
            assert reply.json() == REFUSAL, (method, path)
            assert reply.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_scheme_name_is_case_insensitive(guarded_server: RunningServer, scheme: str) -> None:
    headers = {"Authorization": f"{scheme} {TOKEN}"}
    assert httpx.get(f"{guarded_server.url}/tasks", headers=headers, trust_env=False).status_code == 200
    wrong_case_token = {"Authorization": f"{scheme} {TOKEN.upper()}"}
    assert httpx.get(f"{guarded_server.url}/tasks", headers=wrong_case_token, trust_env=False).status_code == 401


def test_health_is_open_and_the_right_token_opens_the_rest(guarded_server: RunningServer) -> None:
    with httpx.Client(base_url=guarded_server.url, trust_env=False) as http:
        assert http.get("/health").status_code == 200
        headers = {"Authorization": f"Bearer {TOKEN}"}
        reset = http.post("/reset", json={"task_id": "easy"}, headers=headers)
        assert reset.status_code == 200
        episode_id = reset.json()["observation"]["episode_id"]
        step = http.post("/step", json={"episode_id": episode_id, "action": {"action_type": "wait"}}, headers=headers)
        assert step.status_code == 200
        assert http.get("/tasks", headers=headers).status_code == 200


def test_websocket_needs_the_token(guarded_server: RunningServer) -> None:
    async def refused(headers: dict[str, str] | None) -> int:
        with pytest.raises(websockets.InvalidStatus) as caught:
            async with websockets.connect(guarded_server.ws_url, additional_headers=headers):
                pass
        return caught.value.response.status_code

    assert asyncio.run(refused(None)) == 401
    assert asyncio.run(refused({"Authorization": "Bearer nope"})) == 401

    async def accepted() -> str:
        async with websockets.connect(
            guarded_server.ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}
        ) as ws:
            await ws.send(json.dumps({"type": "reset", "data": {"task_id": "easy"}}))
            return json.loads(await ws.recv())["type"]

    assert asyncio.run(accepted()) == "observation"


def test_the_client_sends_its_token(guarded_server: RunningServer) -> None:
    with WorkflowClient(guarded_server.url, token=TOKEN).sync() as env:
        result = env.reset(task_id="easy", seed=2)
        assert result.observation.episode_id
    with pytest.raises(ConnectionError):
        with WorkflowClient(guarded_server.url).sync() as env:
            env.reset(task_id="easy")


def test_no_token_means_no_access_control(live_server: RunningServer) -> None:
    assert httpx.get(f"{live_server.url}/tasks", trust_env=False).status_code == 200
