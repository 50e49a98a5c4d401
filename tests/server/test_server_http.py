"""HTTP routes against a live server: episodes kept across requests, our routes, bad input."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.support.server_fixtures import RunningServer
from workflow_orchestrator.models import MAX_SEED as WIRE_MAX_SEED
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import MAX_SEED, default_registry


def first_legal(observation: dict[str, Any]) -> dict[str, Any]:
    legal = observation["legal_actions"]
    return legal[0] if legal else {"action_type": "wait"}


def play_over_http(http: httpx.Client, task_id: str, seed: int) -> tuple[str, list[dict[str, Any]]]:
    """Play one episode with the first legal action each step; returns its id and every envelope."""
    reply = http.post("/reset", json={"task_id": task_id, "seed": seed})
    assert reply.status_code == 200, reply.text
    envelopes = [reply.json()]
    episode_id = envelopes[0]["observation"]["episode_id"]
    while not envelopes[-1]["done"]:
        action = first_legal(envelopes[-1]["observation"])
        reply = http.post("/step", json={"episode_id": episode_id, "action": action})
        assert reply.status_code == 200, reply.text
        envelopes.append(reply.json())
        assert len(envelopes) < 500
    return episode_id, envelopes


def test_reset_returns_an_episode_id_and_step_continues_that_episode(http: httpx.Client) -> None:
    reset = http.post("/reset", json={"task_id": "easy", "seed": 5}).json()
    episode_id = reset["observation"]["episode_id"]
    assert episode_id and reset["done"] is False
    action = first_legal(reset["observation"])
    step = http.post("/step", json={"episode_id": episode_id, "action": action}).json()
    assert step["observation"]["episode_id"] == episode_id
    assert step["observation"]["step_count"] == 1
    again = http.post("/step", json={"episode_id": episode_id, "action": {"action_type": "wait"}}).json()
    assert again["observation"]["step_count"] == 2


def test_http_episode_matches_the_core_played_in_process(http: httpx.Client) -> None:
    episode_id, envelopes = play_over_http(http, "medium", 11)
    core = WorkflowEnv(registry=default_registry())
    observation = core.reset(task_id="medium", seed=11)
    for envelope in envelopes[1:]:
        observation = core.step(first_legal(observation))
        assert envelope["reward"] == observation["reward"]
        assert envelope["observation"]["subtasks"] == observation["subtasks"]
    assert envelopes[-1]["observation"]["grade"] == observation["grade"]


@pytest.mark.parametrize("reward_mode", ["grade", "sparse"])
def test_reset_chooses_the_reward_mode(http: httpx.Client, reward_mode: str) -> None:
    reply = http.post("/reset", json={"task_id": "medium", "seed": 5001, "reward_mode": reward_mode})
    assert reply.status_code == 200, reply.text
    episode_id = reply.json()["observation"]["episode_id"]
    core = WorkflowEnv(registry=default_registry())
    observation = core.reset(task_id="medium", seed=5001, reward_mode=reward_mode)
    total = 0.0
    while not observation["done"]:
        action = first_legal(observation)
        envelope = http.post("/step", json={"episode_id": episode_id, "action": action}).json()
        observation = core.step(action)
        assert envelope["reward"] == observation["reward"]
        assert list(envelope["observation"]["reward_breakdown"]) == ["grade"]
        total += envelope["reward"]
    assert total == pytest.approx(envelope["observation"]["grade"]["score"], abs=1e-9)


def test_interleaved_http_episodes_do_not_interfere(http: httpx.Client) -> None:
    _, alone = play_over_http(http, "hard", 3)
    first = http.post("/reset", json={"task_id": "hard", "seed": 3}).json()
    second = http.post("/reset", json={"task_id": "hard", "seed": 3}).json()
    ids = [first["observation"]["episode_id"], second["observation"]["episode_id"]]
    assert ids[0] != ids[1]
    latest = [first, second]
    for index in range(1, len(alone)):
        for which in (0, 1):
            action = first_legal(latest[which]["observation"])
            latest[which] = http.post("/step", json={"episode_id": ids[which], "action": action}).json()
            assert latest[which]["reward"] == alone[index]["reward"]
            assert latest[which]["observation"]["subtasks"] == alone[index]["observation"]["subtasks"]


def test_state_returns_the_full_state_of_the_episode(http: httpx.Client) -> None:
    episode_id, envelopes = play_over_http(http, "easy", 2)
    state = http.get("/state", params={"episode_id": episode_id}).json()
    assert state["episode_id"] == episode_id
    assert state["task_id"] == "easy"
    assert state["done"] is True
    assert state["step_count"] == len(envelopes) - 1
    assert len(state["trace"]) == len(envelopes) - 1
    assert state["events"]
    # The envelope moved reward and done out of the wire observation, not out of the core's.
    assert state["observation"]["done"] is True and "reward" in state["observation"]


def test_state_read_between_steps_carries_the_same_history_as_the_core(http: httpx.Client) -> None:
    """/state, /episodes/{id} and the WebSocket state keep the entries they already serialized and add
    the new ones: read after every few steps (invalid actions among them), the history equals the
    in-process episode's, and a last read equals a fresh one."""
    env = WorkflowEnv()
    observation = env.reset(task_id="arena/medium", seed=11)
    episode_id = http.post("/reset", json={"task_id": "arena/medium", "seed": 11}).json()["observation"]["episode_id"]
    bad = {"action_type": "dispatch", "assignments": [{"subtask_id": "nope", "agent_name": "nobody"}] * 3}
    step = 0
    while not observation["done"]:
        action = bad if step % 3 == 1 else first_legal(observation)
        observation = env.step(action)
        http.post("/step", json={"episode_id": episode_id, "action": action}).raise_for_status()
        step += 1
        if step % 4 == 0 or observation["done"]:
            state = http.get("/state", params={"episode_id": episode_id}).json()
            record = http.get(f"/episodes/{episode_id}").json()
            expected = json.loads(json.dumps(env.state()))
            for key in ("trace", "events", "rewards", "step_count", "time", "done"):
                assert state[key] == expected[key], key
            assert record["trace"] == expected["trace"] and record["events"] == expected["events"]
    assert step > 8 and any(entry["errors"] for entry in state["trace"])


def test_episode_record_has_the_event_log_and_action_trace(http: httpx.Client) -> None:
    episode_id, envelopes = play_over_http(http, "easy", 4)
    record = http.get(f"/episodes/{episode_id}").json()
    assert record["episode_id"] == episode_id and record["done"] is True
    assert len(record["trace"]) == len(envelopes) - 1
    assert any(event["kind"] == "completed" for event in record["events"])


def test_grader_by_episode_id_and_by_task_id(http: httpx.Client) -> None:
    older, _ = play_over_http(http, "expert", 1)
    newer, envelopes = play_over_http(http, "expert", 2)
    by_id = http.post("/grader", json={"episode_id": older}).json()
    assert by_id["episode_id"] == older and by_id["seed"] == 1
    latest = http.post("/grader", json={"task_id": "expert"}).json()
    assert latest["episode_id"] == newer
    assert latest["score"] == envelopes[-1]["observation"]["grade"]["score"]
    assert 0.0 <= latest["score"] <= 1.0


def test_grading_an_unfinished_episode_says_so(http: httpx.Client) -> None:
    episode_id = http.post("/reset", json={"task_id": "easy"}).json()["observation"]["episode_id"]
    reply = http.post("/grader", json={"episode_id": episode_id})
    assert reply.status_code == 409
    assert reply.json()["error"] == "episode_not_finished"
    assert "not finished" in reply.json()["message"]


def test_tasks_lists_every_task_with_parameters(http: httpx.Client) -> None:
    tasks = http.get("/tasks").json()["tasks"]
    assert [task["task_id"] for task in tasks] == default_registry().task_ids()
    for task in tasks:
        assert task["parameters"], task["task_id"]


def test_schema_describes_our_action_observation_and_state(http: httpx.Client) -> None:
    schema = http.get("/schema").json()
    assert "action_type" in schema["action"]["properties"]
    assert "legal_actions" in schema["observation"]["properties"]
    # Our state, not openenv's base State (which has only episode_id and step_count).
    assert {"events", "trace", "task_id"} <= set(schema["state"]["properties"])


def test_metadata_has_name_description_and_readme(http: httpx.Client) -> None:
    metadata = http.get("/metadata").json()
    assert metadata["name"] == "workflow_orchestrator"
    assert metadata["description"]
    assert "curl" in metadata["readme_content"]


def test_health_counts_the_websocket_sessions_held(http: httpx.Client, live_server: RunningServer) -> None:
    health = http.get("/health").json()
    assert health["status"] == "healthy" and health["max_sessions"] >= 1
    with ws_connect(live_server.ws_url) as first, ws_connect(live_server.ws_url) as second:
        for socket in (first, second):  # a session is held once its first message is answered
            socket.send(json.dumps({"type": "state"}))
            socket.recv()
        assert http.get("/health").json()["sessions"] >= health["sessions"] + 2


def test_baseline_serves_the_recorded_scores(http: httpx.Client) -> None:
    from workflow_orchestrator.server.http.routes import read_package_text

    recorded = read_package_text("baseline_scores.json")
    reply = http.post("/baseline")
    if recorded is None:
        assert reply.status_code == 404 and reply.json()["error"] == "no_baseline"
    else:
        assert reply.status_code == 200 and reply.json() == json.loads(recorded)


def test_the_wire_seed_bound_is_the_registry_bound() -> None:
    assert WIRE_MAX_SEED == MAX_SEED


# --------------------------------------------------------------------------- bad input


def test_step_without_episode_id_shows_the_form_to_send(http: httpx.Client) -> None:
    reply = http.post("/step", json={"action": {"action_type": "wait"}})
    assert reply.status_code == 422
    body = reply.json()
    assert "episode_id" in body["message"]
    assert body["expected"]["episode_id"] and body["expected"]["action"]["action_type"]


@pytest.mark.parametrize("episode_id", ["never-created", "0" * 16])
def test_step_with_an_unknown_episode_is_404_with_a_hint(http: httpx.Client, episode_id: str) -> None:
    reply = http.post("/step", json={"episode_id": episode_id, "action": {"action_type": "wait"}})
    assert reply.status_code == 404
    assert reply.json()["error"] == "unknown_episode"
    assert "/reset" in reply.json()["message"]


@pytest.mark.parametrize(
    ("path", "body", "status", "mentions"),
    [
        ("/reset", {"task_id": "no_such_task"}, 422, "no_such_task"),
        ("/reset", {"seed": -1}, 422, "seed"),
        ("/reset", {"seed": 2**40}, 422, "seed"),
        ("/reset", {"seed": "seven"}, 422, "seed"),
        ("/reset", {"seed": 1.5}, 422, "seed"),
        ("/reset", {"worker_count": 0}, 422, "worker_count"),
        ("/reset", {"task_id": "easy", "worker_count": 3}, 422, "worker_count"),
        ("/reset", {"task_id": "x" * 65}, 422, "at most 64"),
        # /reset ignores (and names) keywords it does not take, as openenv's server does
        # (tests/server/test_server_reset_options.py); the other routes refuse them.
        ("/step", {"episode_id": "x", "action": {"action_type": "wait"}, "epsiode": 1}, 422, "epsiode"),
        ("/reset", {"task_id": "easy", "reward_mode": "dense"}, 422, "reward_mode"),
        ("/reset", [1, 2, 3], 422, "JSON object"),
        ("/step", {"episode_id": "x"}, 422, "action"),
        ("/step", {"episode_id": "x", "action": {}}, 422, "action_type"),
        ("/step", {"episode_id": "x", "action": {"action_type": "teleport"}}, 422, "action_type"),
        ("/step", {"episode_id": 7, "action": {"action_type": "wait"}}, 422, "episode_id"),
        (
            "/step",
            {"episode_id": "x", "action": {"action_type": "delegate", "subtask_id": "s" * 100}},
            422,
            "subtask_id",
        ),
        ("/step", {"episode_id": "x", "action": {"action_type": "dispatch", "task_ids": ["a"] * 65}}, 422, "task_ids"),
        ("/grader", {}, 422, "episode_id"),
        ("/grader", {"task_id": "no_such_task"}, 422, "no_such_task"),
        ("/grader", {"episode_id": "gone"}, 404, "gone"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(
    http: httpx.Client, path: str, body: Any, status: int, mentions: str
) -> None:
    reply = http.post(path, json=body)
    assert reply.status_code == status, reply.text
    payload = reply.json()
    assert payload["error"] and mentions in payload["message"]


@pytest.mark.parametrize(
    "raw",
    [b"{", b"garbage", b'{"seed": ' + b"9" * 5000 + b"}", b"[" * 20000 + b"]" * 20000, b"\xff\xfe"],
    ids=["truncated", "not-json", "huge-number", "deep-nesting", "not-utf8"],
)
def test_unparseable_bodies_are_4xx(http: httpx.Client, raw: bytes) -> None:
    reply = http.post("/reset", content=raw, headers={"content-type": "application/json"})
    assert 400 <= reply.status_code < 500, reply.text
    assert reply.json()["message"]


def test_oversized_bodies_are_413(http: httpx.Client) -> None:
    body = json.dumps({"task_id": "easy", "padding": "x" * 100_000}).encode()
    declared = http.post("/reset", content=body, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "bytes" in declared.json()["message"]

    def chunks():  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    streamed = http.post("/reset", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"] == "body_too_large"


def test_form_encoded_body_gets_a_content_type_hint(http: httpx.Client) -> None:
    reply = http.post(
        "/grader", content=b'{"task_id": "easy"}', headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert reply.status_code == 422
    assert "Content-Type: application/json" in reply.json()["message"]


def test_state_without_episode_id_shows_the_form(http: httpx.Client) -> None:
    reply = http.get("/state")
    assert reply.status_code == 422
    assert "episode_id" in reply.json()["expected"]


def test_unknown_route_and_wrong_method_are_4xx(http: httpx.Client) -> None:
    assert http.get("/nowhere").status_code == 404
    wrong = http.delete("/reset")
    assert wrong.status_code == 405 and "POST" in wrong.json()["message"]


def test_duplicate_client_chosen_episode_id_is_409(http: httpx.Client) -> None:
    first = http.post("/reset", json={"task_id": "easy", "episode_id": "my-run-1"})
    assert first.status_code == 200 and first.json()["observation"]["episode_id"] == "my-run-1"
    second = http.post("/reset", json={"task_id": "easy", "episode_id": "my-run-1"})
    assert second.status_code == 409


@pytest.mark.parametrize("raw", [b'{"task_id": "easy",, }', b"garbage", b'{"seed": 1'])
def test_garbage_json_is_answered_in_words(http: httpx.Client, raw: bytes) -> None:
    reply = http.post("/reset", content=raw, headers={"content-type": "application/json"})
    assert reply.status_code == 422
    payload = reply.json()
    assert payload["error"] == "invalid_json"
    assert "the body is not valid JSON" in payload["message"] and "character" in payload["message"]
    assert "JSON decode error" not in payload["message"] and "body." not in payload["message"]


def test_head_answers_every_get_route_without_a_body(http: httpx.Client) -> None:
    episode_id = http.post("/reset", json={"task_id": "easy"}).json()["observation"]["episode_id"]
    for path in ("/health", "/tasks", "/metadata", "/schema", f"/state?episode_id={episode_id}", "/openapi.json"):
        get = http.get(path)
        head = http.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == get.headers["content-length"], path
    assert http.head("/nowhere").status_code == 404
    assert http.head("/reset").status_code == 405
