"""Client isolation, idempotent steps and the archive, against a real server on loopback.

Two clients are two network addresses: every address in 127.0.0.0/8 is
loopback, so the stranger connects from 127.0.0.2 and the owner from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.server_fixtures import RunningServer, start_server

WAIT = {"action_type": "wait"}


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with a small store: 8 episodes in all, 4 per client."""
    server = start_server(tmp_path_factory.mktemp("isolation"), "--max-episodes", "8", "--max-episodes-per-client", "4")
    yield server
    server.stop()


def client_from(server: RunningServer, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, trust_env=False, timeout=30.0)


async def reset_over_websocket(server: RunningServer, data: dict[str, Any]) -> dict[str, Any]:
    async with websockets.connect(server.url.replace("http://", "ws://", 1) + "/ws", proxy=None) as ws:
        await ws.send(json.dumps({"type": "reset", "data": data}))
        answer: dict[str, Any] = json.loads(await ws.recv())
        return answer


def reset(http: httpx.Client, **body: object) -> dict:
    reply = http.post("/reset", json={"task_id": "easy", **body})
    assert reply.status_code == 200, reply.text
    return reply.json()


def finish(http: httpx.Client, episode_id: str, headers: dict[str, str] | None = None) -> int:
    """Wait until the episode ends; returns its step count."""
    while True:
        reply = http.post("/step", json={"episode_id": episode_id, "action": WAIT}, headers=headers)
        assert reply.status_code == 200, reply.text
        if reply.json()["done"]:
            return reply.json()["observation"]["step_count"]


def test_reset_returns_a_secret_and_an_unguessable_id(small_server: RunningServer) -> None:
    with client_from(small_server, "127.0.0.1") as http:
        first, second = reset(http), reset(http)
    for answer in (first, second):
        assert len(answer["observation"]["episode_id"]) == 32  # 128 random bits
        assert len(answer["episode_secret"]) >= 32
        assert "episode_secret" not in answer["observation"]
    assert first["episode_secret"] != second["episode_secret"]


def test_a_stranger_cannot_touch_an_episode_named_by_its_client(small_server: RunningServer) -> None:
    with client_from(small_server, "127.0.0.1") as owner, client_from(small_server, "127.0.0.2") as stranger:
        answer = reset(owner, episode_id="alice-run-1")
        mine = {"X-Episode-Secret": answer["episode_secret"]}
        body = {"episode_id": "alice-run-1", "action": WAIT}
        for headers in (None, {"X-Episode-Secret": "guess"}):
            assert stranger.post("/step", json=body, headers=headers).status_code == 403
            assert stranger.get("/state", params={"episode_id": "alice-run-1"}, headers=headers).status_code == 403
            assert stranger.get("/episodes/alice-run-1", headers=headers).status_code == 403
            assert stranger.post("/grader", json={"episode_id": "alice-run-1"}, headers=headers).status_code == 403
        # Nothing the stranger sent was applied.
        state = owner.get("/state", params={"episode_id": "alice-run-1"}, headers=mine).json()
        assert state["step_count"] == 0
        assert owner.post("/step", json=body, headers=mine).status_code == 200
        # A server-made id is a capability: its creator needs no secret, but a wrong one is refused.
        plain = reset(owner)["observation"]["episode_id"]
        assert owner.post("/step", json={"episode_id": plain, "action": WAIT}).status_code == 200
        wrong = owner.post("/step", json={"episode_id": plain, "action": WAIT}, headers={"X-Episode-Secret": "x"})
        assert wrong.status_code == 403 and wrong.json()["error"] == "episode_forbidden"


def test_grading_by_task_shows_only_the_callers_episodes(small_server: RunningServer) -> None:
    with client_from(small_server, "127.0.0.1") as owner, client_from(small_server, "127.0.0.3") as stranger:
        episode_id = reset(owner, seed=11)["observation"]["episode_id"]
        finish(owner, episode_id)
        mine = owner.post("/grader", json={"task_id": "easy"})
        assert mine.status_code == 200 and mine.json()["episode_id"] == episode_id
        theirs = stranger.post("/grader", json={"task_id": "easy"})
        assert theirs.status_code == 404 and episode_id not in theirs.text


def test_one_clients_flood_evicts_only_its_own_episodes(small_server: RunningServer) -> None:
    with client_from(small_server, "127.0.0.4") as honest, client_from(small_server, "127.0.0.5") as flooder:
        kept = reset(honest)["observation"]["episode_id"]
        flood = [reset(flooder)["observation"]["episode_id"] for _ in range(40)]
        assert honest.post("/step", json={"episode_id": kept, "action": WAIT}).status_code == 200
        # The flooder keeps only its own last four.
        alive = [flooder.get("/state", params={"episode_id": episode_id}).status_code for episode_id in flood]
        assert alive[-4:] == [200] * 4 and set(alive[:-4]) == {404}


def test_an_evicted_chosen_id_cannot_be_recreated_by_a_stranger(small_server: RunningServer) -> None:
    with client_from(small_server, "127.0.0.6") as owner, client_from(small_server, "127.0.0.7") as stranger:
        secret = reset(owner, episode_id="bob-run-7")["episode_secret"]
        for _ in range(5):  # push it out of the owner's four
            reset(owner)
        gone = owner.post(
            "/step", json={"episode_id": "bob-run-7", "action": WAIT}, headers={"X-Episode-Secret": secret}
        )
        assert gone.status_code == 404 and gone.json()["error"] == "episode_expired"
        taken = stranger.post("/reset", json={"task_id": "easy", "episode_id": "bob-run-7"})
        assert taken.status_code == 409 and taken.json()["error"] == "duplicate_episode_id"
        again = owner.post(
            "/step", json={"episode_id": "bob-run-7", "action": WAIT}, headers={"X-Episode-Secret": secret}
        )
        assert again.status_code == 404


def test_a_retried_step_is_applied_once_and_gets_the_same_answer(small_server: RunningServer) -> None:
    with client_from(small_server, "127.0.0.8") as http:
        episode_id = reset(http)["observation"]["episode_id"]
        body = {"episode_id": episode_id, "action": WAIT, "expected_step_count": 0}
        first = http.post("/step", json=body)
        retry = http.post("/step", json=body)
        assert first.status_code == retry.status_code == 200
        assert retry.content == first.content and first.json()["observation"]["step_count"] == 1
        assert http.get("/state", params={"episode_id": episode_id}).json()["step_count"] == 1
        stale = http.post("/step", json={**body, "expected_step_count": 5})
        assert stale.status_code == 409 and stale.json()["error"] == "step_count_mismatch"
        assert http.post("/step", json={**body, "expected_step_count": 1}).json()["observation"]["step_count"] == 2


def test_steps_refused_after_the_end_are_not_counted(small_server: RunningServer) -> None:
    with client_from(small_server, "127.0.0.9") as http:
        episode_id = reset(http)["observation"]["episode_id"]
        steps = finish(http, episode_id)
        for _ in range(5):
            late = http.post("/step", json={"episode_id": episode_id, "action": WAIT}).json()
            assert late["observation"]["errors"][0]["code"] == "episode_over"
        state = http.get("/state", params={"episode_id": episode_id}).json()
        record = http.get(f"/episodes/{episode_id}").json()
        grade = http.post("/grader", json={"episode_id": episode_id}).json()
        assert state["step_count"] == record["step_count"] == grade["step_count"] == len(record["trace"]) == steps


def test_a_boolean_seed_is_refused(small_server: RunningServer) -> None:
    with client_from(small_server, "127.0.0.1") as http:
        for body in ({"seed": True}, {"seed": False}, {"task_id": "arena/easy", "worker_count": True}):
            reply = http.post("/reset", json=body)
            assert reply.status_code == 422, (body, reply.text)


def test_an_archived_episode_survives_eviction_and_a_restart(tmp_path: Path) -> None:
    archive = tmp_path / "kept" / "archive.sqlite3"
    options = ("--archive-path", str(archive), "--max-episodes", "2")
    server = start_server(tmp_path, *options)
    try:
        with client_from(server, "127.0.0.1") as http:
            answer = reset(http, episode_id="kept-run", seed=3)
            mine = {"X-Episode-Secret": answer["episode_secret"]}
            steps = finish(http, "kept-run", mine)
            record = http.get("/episodes/kept-run", headers=mine).json()
            grade = http.post("/grader", json={"episode_id": "kept-run"}, headers=mine).json()
            for _ in range(3):  # evicted from the store
                reset(http)
            assert http.get("/state", params={"episode_id": "kept-run"}, headers=mine).status_code == 404
            assert http.get("/episodes/kept-run", headers=mine).json() == record
    finally:
        server.stop()
    server = start_server(tmp_path, *options)
    try:
        with client_from(server, "127.0.0.1") as http, client_from(server, "127.0.0.2") as stranger:
            assert http.get("/episodes/kept-run", headers=mine).json() == record
            assert http.post("/grader", json={"episode_id": "kept-run"}, headers=mine).json() == grade
            assert grade["step_count"] == steps and record["done"]
            by_task = http.post("/grader", json={"task_id": "easy"}, headers=mine).json()
            assert by_task["episode_id"] == "kept-run"
            assert stranger.get("/episodes/kept-run").status_code == 403
            assert stranger.post("/grader", json={"task_id": "easy"}).status_code == 404
            taken = stranger.post("/reset", json={"task_id": "easy", "episode_id": "kept-run"})
            assert taken.status_code == 409
            # Nor over a WebSocket session, whose reset would otherwise overwrite the archived episode.
            refused = asyncio.run(reset_over_websocket(server, {"task_id": "easy", "episode_id": "kept-run"}))
            assert refused["type"] == "error" and "archived" in refused["data"]["message"]
            assert http.get("/episodes/kept-run", headers=mine).json() == record
    finally:
        server.stop()


def test_no_archive_means_no_file(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--no-archive")
    try:
        with client_from(server, "127.0.0.1") as http:
            finish(http, reset(http)["observation"]["episode_id"])
    finally:
        server.stop()
    assert not list(tmp_path.glob("*.sqlite3"))
