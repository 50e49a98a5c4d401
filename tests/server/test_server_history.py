"""Bounded answers: an episode's history (action trace and event log) goes out a page at a time.

A flood of the largest invalid action an episode judges (on arena/hard with
16 workers, a dispatch of 16 unknown pairs of 64-character names: a larger
one is refused whole and kept short) makes an episode's history about 1 MB; ``GET /state``, the WebSocket ``state`` and
``/episodes/{id}`` answer a page of it, below a fixed bound, and the pages
joined are the whole history. A normal episode of any task fits in the
default page, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import connect

from tests.support.server_fixtures import RunningServer, start_server
from workflow_orchestrator.client import WorkflowClient
from workflow_orchestrator.server.core.policies import POLICIES, make_policy
from workflow_orchestrator.server.environment import (
    HISTORY_PAGE_BYTES,
    EpisodeStore,
    HistoryPage,
    StoreLimits,
    episode_state,
)
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry

# No answer about one episode is larger than this, whatever its history.
ANSWER_BOUND_BYTES = 1024 * 1024

ARENA = "arena/hard"
WORKERS = 16
FLOOD_ACTION = {
    "action_type": "dispatch",
    "assignments": [
        {"subtask_id": f"s{i:02d}".ljust(64, "s"), "agent_name": f"a{i:02d}".ljust(64, "a")} for i in range(WORKERS)
    ],
}
FLOOD_STEPS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose clients keep one episode each in the store (the older ones live on in the archive)."""
    running = start_server(tmp_path_factory.mktemp("history"), "--max-episodes-per-client", "1")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def flooded(server: RunningServer) -> tuple[str, dict[str, Any]]:
    """A finished arena/hard episode: 300 of the largest invalid dispatch, then waits; and the same in process."""
    env = WorkflowEnv()
    env.reset(task_id=ARENA, seed=3, worker_count=WORKERS)
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as http:
        reset = http.post("/reset", json={"task_id": ARENA, "seed": 3, "worker_count": WORKERS})
        episode_id = reset.json()["observation"]["episode_id"]
        done = False
        steps = 0
        while not done:
            action = FLOOD_ACTION if steps < FLOOD_STEPS else {"action_type": "wait"}
            env.step(action)
            reply = http.post("/step", json={"episode_id": episode_id, "action": action})
            assert reply.status_code == 200, reply.text
            done = reply.json()["done"]
            steps += 1
    expected = json.loads(json.dumps(env.state()))
    assert len(json.dumps(expected["trace"])) > 3 * HISTORY_PAGE_BYTES  # the flood takes several pages
    return episode_id, expected


def _all_pages(http: httpx.Client, path: str, params: dict[str, Any]) -> tuple[list[dict], list[dict], int]:
    """Every page of ``path``, each checked against the bound; the joined trace and events, and the page count."""
    trace: list[dict] = []
    events: list[dict] = []
    cursor = {"trace_from": 0, "events_from": 0}
    pages = 0
    while True:
        reply = http.get(path, params={**params, **cursor})
        assert reply.status_code == 200, reply.text
        assert len(reply.content) < ANSWER_BOUND_BYTES
        answer = reply.json()
        history = answer["history"]
        assert (history["trace_from"], history["events_from"]) == (cursor["trace_from"], cursor["events_from"])
        trace.extend(answer["trace"])
        events.extend(answer["events"])
        pages += 1
        if history["complete"]:
            assert len(trace) == history["trace_total"] and len(events) == history["events_total"]
            return trace, events, pages
        cursor = {
            "trace_from": history["trace_total"] if history["trace_next"] is None else history["trace_next"],
            "events_from": history["events_total"] if history["events_next"] is None else history["events_next"],
        }


def test_a_flooded_episodes_state_is_answered_in_bounded_pages_that_join_to_its_history(
    server: RunningServer, flooded: tuple[str, dict[str, Any]]
) -> None:
    episode_id, expected = flooded
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as http:
        first = http.get("/state", params={"episode_id": episode_id})
        assert len(first.content) < ANSWER_BOUND_BYTES
        answer = first.json()
        assert answer["history"]["complete"] is False
        assert answer["history"]["trace_total"] == len(expected["trace"])
        assert answer["history"]["events_total"] == len(expected["events"])
        assert answer["rewards"] == expected["rewards"] and answer["done"] is True
        trace, events, pages = _all_pages(http, "/state", {"episode_id": episode_id})
        assert trace == expected["trace"] and events == expected["events"]
        assert pages > 2
        # A smaller page when asked; none at all with a limit of 0.
        small = http.get("/state", params={"episode_id": episode_id, "history_limit": 5}).json()
        assert len(small["trace"]) == 5 and small["history"]["trace_next"] == 5
        bare = http.get("/state", params={"episode_id": episode_id, "history_limit": 0}).json()
        assert bare["trace"] == [] and bare["events"] == [] and bare["history"]["trace_next"] == 0
        # Past the end: an empty page that is complete.
        end = http.get("/state", params={"episode_id": episode_id, "trace_from": 10**6, "events_from": 10**6}).json()
        assert end["trace"] == [] and end["history"]["complete"] is True
        for bad in ({"trace_from": -1}, {"history_limit": 10**6}, {"events_from": "x"}):
            assert http.get("/state", params={"episode_id": episode_id, **bad}).status_code == 422


def test_episode_records_are_paged_live_and_from_the_archive(
    server: RunningServer, flooded: tuple[str, dict[str, Any]]
) -> None:
    episode_id, expected = flooded
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as http:
        live = _all_pages(http, f"/episodes/{episode_id}", {})
        assert live[:2] == (expected["trace"], expected["events"])
        # One more episode of this client pushes the flooded one out of the store: it answers from the archive.
        http.post("/reset", json={"task_id": "easy", "seed": 1}).raise_for_status()
        assert http.get("/state", params={"episode_id": episode_id}).status_code == 404
        archived = _all_pages(http, f"/episodes/{episode_id}", {})
        assert archived[:2] == (expected["trace"], expected["events"])
        assert archived[2] > 2


def test_websocket_state_pages_and_the_client_joins_them(server: RunningServer) -> None:
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"task_id": ARENA, "seed": 4, "worker_count": WORKERS}}))
        assert json.loads(ws.recv())["type"] == "observation"
        for _ in range(120):
            ws.send(json.dumps({"type": "step", "data": FLOOD_ACTION}))
            assert json.loads(ws.recv())["type"] == "observation"
        ws.send(json.dumps({"type": "state"}))
        raw = ws.recv()
        assert len(raw) < ANSWER_BOUND_BYTES
        state = json.loads(raw)["data"]
        assert state["history"]["trace_total"] == 120 and state["history"]["trace_next"] is not None
        ws.send(json.dumps({"type": "state", "data": {"trace_from": state["history"]["trace_next"]}}))
        following = json.loads(ws.recv())["data"]
        assert following["trace"][0]["step"] == state["history"]["trace_next"] + 1
        ws.send(json.dumps({"type": "state", "data": {"history_limit": -1}}))
        refused = json.loads(ws.recv())
        assert refused["type"] == "error" and refused["data"]["code"] == "VALIDATION_ERROR"

    env = WorkflowEnv()
    env.reset(task_id=ARENA, seed=5, worker_count=WORKERS)
    with WorkflowClient(server.url, validate=False).sync() as client:
        client.reset(task_id=ARENA, seed=5, worker_count=WORKERS)
        for _ in range(120):
            env.step(FLOOD_ACTION)
            client.step(FLOOD_ACTION)
        whole = client.state()
    expected = json.loads(json.dumps(env.state()))
    assert whole.trace == expected["trace"] and whole.events == expected["events"]
    assert whole.history["complete"] is True


def test_the_default_page_holds_a_whole_normal_episode_of_every_task() -> None:
    """Every built-in policy on every task: the first page of /state is the whole history."""
    registry = default_registry()
    store = EpisodeStore(registry, StoreLimits())
    for task_id in registry.task_ids():
        for policy_name in POLICIES:
            for seed in range(2):
                policy = make_policy(policy_name, seed)
                episode, observation = store.start(task_id, seed)
                while not observation["done"]:
                    observation = store.step(episode, policy.act(observation))
                state = orjson.loads(orjson.dumps(episode_state(episode, HistoryPage())))
                assert state["history"]["complete"], (task_id, policy_name, seed)
                assert state["trace"] == json.loads(json.dumps(episode.env.episode.trace))
                size = len(orjson.dumps(state["trace"])) + len(orjson.dumps(state["events"]))
                # generated/expert: up to 120 subtasks, with failures and announced outages in its log.
                share = 2 if task_id == "generated/expert" else 4
                assert size < HISTORY_PAGE_BYTES / share, (task_id, policy_name, seed)


def test_history_page_fields_are_checked() -> None:
    assert HistoryPage.parse(None) == HistoryPage()
    assert HistoryPage.parse({"trace_from": 3, "history_limit": 7}) == HistoryPage(3, 0, 7)
    for bad in ({"trace_from": -1}, {"events_from": 1.5}, {"history_limit": True}, {"other": 1}, [1]):
        with pytest.raises(ValueError):
            HistoryPage.parse(bad)


def test_the_bound_holds_for_entries_larger_than_a_page(tmp_path: Path) -> None:
    """One entry larger than the byte budget still goes out (alone), so every page makes progress."""
    from workflow_orchestrator.server.environment import page_of_records

    records = [{"x": "a" * (HISTORY_PAGE_BYTES + 10)}, {"x": "b"}, {"x": "c"}]
    first, following = page_of_records(records, 0, 100)
    assert len(first) == 1 and following == 1
    second, end = page_of_records(records, following, 100)
    assert len(second) == 2 and end is None


def test_the_archive_takes_a_read_history_as_it_is_and_grades_without_reading_one(tmp_path: Path) -> None:
    """A finished episode whose history was read goes to the archive as the fragments already made (the
    archive's thread rebuilds no dicts); it reads back equal to the core's; a grade is read without it."""
    from workflow_orchestrator.server.archive import Archive
    from workflow_orchestrator.server.environment import archive_record

    store = EpisodeStore(default_registry(), StoreLimits())
    episode, observation = store.start(ARENA, 6, WORKERS)
    steps = 0
    while not observation["done"]:
        observation = store.step(episode, FLOOD_ACTION if steps < 40 else {"action_type": "wait"})
        steps += 1
        if steps == 20:
            episode_state(episode, HistoryPage())  # read: the first 20 steps are serialized
    record = archive_record(episode, 1.0)
    assert all(isinstance(entry, orjson.Fragment) for entry in record.trace + record.events)
    expected = json.loads(json.dumps(episode.env.state()))
    with Archive(tmp_path / "a.sqlite3") as archive:
        archive.put_now(record)
        back = archive.get_now(episode.episode_id)
        assert back is not None and back.trace == expected["trace"] and back.events == expected["events"]
        bare = archive.get_now(episode.episode_id, history=False)
        assert bare is not None and bare.trace == [] and bare.events == [] and bare.grade == back.grade
        latest = archive.latest_now(ARENA, "local", history=False)
        assert latest is not None and latest.trace == [] and latest.grade == back.grade
    unread, observation = store.start("easy", 2)
    while not observation["done"]:
        observation = store.step(unread, {"action_type": "wait"})
    assert archive_record(unread, 1.0).trace == json.loads(json.dumps(unread.env.episode.trace))
