"""The episode store: bounded by count and idle time, memory flat over many episodes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import websockets

from tests.support.server_fixtures import start_server
from workflow_orchestrator.server.environment import (
    DuplicateEpisodeError,
    EpisodeForbiddenError,
    EpisodeNotFoundError,
    EpisodeStore,
    StoreLimits,
)
from workflow_orchestrator.server.tasks import default_registry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_store_keeps_at_most_max_episodes_least_recently_used_first() -> None:
    store = EpisodeStore(default_registry(), StoreLimits(max_episodes=3, idle_timeout_s=60), clock=FakeClock())
    ids = [store.start("easy")[0].episode_id for _ in range(3)]
    store.step(store.get(ids[0]), {"action_type": "wait"})  # ids[0] is now the most recently used
    newest = store.start("easy")[0].episode_id
    assert len(store) == 3
    for kept in (ids[0], ids[2], newest):
        store.get(kept)
    try:
        store.get(ids[1])
    except EpisodeNotFoundError as exc:
        assert exc.expired
    else:
        raise AssertionError("the least recently used episode should have been evicted")


def test_idle_episodes_expire_and_live_sessions_are_never_evicted() -> None:
    clock = FakeClock()
    store = EpisodeStore(default_registry(), StoreLimits(max_episodes=2, idle_timeout_s=10), clock=clock)
    held, _ = store.start("easy")
    held.live_sessions = 1
    idle, _ = store.start("easy")
    clock.now += 11
    assert store.evict() == 1
    assert store.get(held.episode_id) is held
    for _ in range(5):
        store.start("easy")
    assert store.get(held.episode_id) is held


def test_evicted_ids_are_remembered_only_up_to_a_bound() -> None:
    store = EpisodeStore(
        default_registry(), StoreLimits(max_episodes=1, idle_timeout_s=60, remembered_evictions=10), clock=FakeClock()
    )
    for _ in range(50):
        store.start("easy")
    assert len(store) == 1
    assert len(store._evicted) == 10


def test_a_small_server_evicts_by_count_and_by_idle_time(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--max-episodes", "3", "--episode-idle-timeout", "1")
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as http:
            ids = [http.post("/reset", json={"task_id": "easy"}).json()["observation"]["episode_id"] for _ in range(4)]
            first = http.post("/step", json={"episode_id": ids[0], "action": {"action_type": "wait"}})
            assert first.status_code == 404 and first.json()["error"] == "episode_expired"
            assert http.post("/step", json={"episode_id": ids[3], "action": {"action_type": "wait"}}).status_code == 200
            time.sleep(1.6)
            late = http.get("/state", params={"episode_id": ids[3]})
            assert late.status_code == 404 and "expired" in late.json()["message"]
    finally:
        server.stop()


def test_memory_stays_flat_over_10000_episodes(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:

        async def play(episodes: int) -> None:
            async with websockets.connect(server.ws_url) as ws:
                for index in range(episodes):
                    await ws.send(json.dumps({"type": "reset", "data": {"task_id": "hard", "seed": index}}))
                    await ws.recv()
                    await ws.send('{"type": "step", "data": {"action_type": "wait"}}')
                    await ws.recv()

        asyncio.run(play(1000))  # warm up: the store fills to its bound
        warm = server.rss_mb()
        asyncio.run(play(9000))
        grown = server.rss_mb() - warm
        assert grown < 10.0, f"RSS grew {grown:.1f} MB over 9,000 more episodes"
    finally:
        server.stop()


def test_the_openenv_adapter_plays_in_the_store_without_threads() -> None:
    import threading

    from workflow_orchestrator.models import WorkflowAction, WorkflowObservation
    from workflow_orchestrator.server.environment import WorkflowEnvironment

    store = EpisodeStore(default_registry(), StoreLimits(max_episodes=4, idle_timeout_s=60))
    environment = WorkflowEnvironment(store)
    threads: set[int] = set()
    original_step = store.step

    def recording_step(episode, action):  # the thread the core's step runs on
        threads.add(threading.get_ident())
        return original_step(episode, action)

    store.step = recording_step  # type: ignore[method-assign]

    async def play() -> WorkflowObservation:
        observation = await environment.reset_async(task_id="easy", seed=1)
        assert isinstance(observation, WorkflowObservation) and observation.episode_id
        while not observation.done:
            legal = observation.legal_actions
            action = WorkflowAction(**legal[0]) if legal else WorkflowAction(action_type="wait")
            observation = await environment.step_async(action)
        return observation

    final = asyncio.run(play())
    assert threads == {threading.get_ident()}
    assert final.grade is not None and 0.0 <= final.grade.score <= 1.0
    held = store.get(final.episode_id)
    assert held.live_sessions == 1 and environment.state.episode_id == final.episode_id
    environment.close()
    assert held.live_sessions == 0


def test_a_client_at_its_bound_loses_its_own_episodes_and_a_full_store_takes_from_the_largest() -> None:
    store = EpisodeStore(
        default_registry(), StoreLimits(max_episodes=6, max_episodes_per_client=3, idle_timeout_s=60), clock=FakeClock()
    )
    quiet = store.start("easy", client="quiet")[0].episode_id
    flood = [store.start("easy", client="flood")[0].episode_id for _ in range(20)]
    assert store.count_of("flood") == 3 and store.get(quiet)
    others = [store.start("easy", client=f"c{index}")[0].episode_id for index in range(2)]
    assert len(store) == 6
    store.start("easy", client="late")  # the store is full: the largest holder (flood) gives one up
    assert store.count_of("flood") == 2 and store.get(quiet) and all(store.get(e) for e in others)
    assert [e for e in flood if e in store._episodes] == flood[-2:]


def test_a_chosen_id_is_not_given_again_after_it_finished_or_was_evicted() -> None:
    store = EpisodeStore(default_registry(), StoreLimits(max_episodes=1, idle_timeout_s=60), clock=FakeClock())
    store.start("easy", episode_id="mine")
    store.start("easy")  # evicts "mine"
    try:
        store.start("easy", episode_id="mine")
    except DuplicateEpisodeError as exc:
        assert "used before" in str(exc)
    else:
        raise AssertionError("an evicted chosen id was given again")
    chosen = store.get(store.start("easy", episode_id="other")[0].episode_id)
    assert chosen.chosen_id and not chosen.owned_by(None) and chosen.owned_by(chosen.secret)
    try:
        store.get("other", "wrong", check_owner=True)
    except EpisodeForbiddenError:
        pass
    else:
        raise AssertionError("a wrong secret was accepted")
