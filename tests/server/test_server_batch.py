"""Batches over one WebSocket connection (batch_reset, batch_step), against the real server on loopback."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.support.server_fixtures import RunningServer, start_server
from workflow_orchestrator import WorkflowClient, models, vector
from workflow_orchestrator.vector import WorkflowVectorEnv

MIXED = ["arena/hard", "easy", "generated/easy", "hard", "arena/medium", "generated/hard"]
COLUMNS = ("observations", "rewards", "terminated", "truncated", "grades", "final_observations", "errors")


def choose(rng: random.Random, observation: dict[str, Any]) -> dict[str, Any]:
    legal = observation["legal_actions"]
    if rng.random() < 0.1 or not legal:
        return {"action_type": "delegate", "subtask_id": "nothing", "agent_name": "nobody"}
    return dict(rng.choice(legal))


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def test_the_wire_limit_is_the_vector_limit() -> None:
    assert models.MAX_EPISODES == vector.MAX_EPISODES


def test_a_batch_over_the_wire_equals_the_batch_in_process(live_server: RunningServer) -> None:
    local = WorkflowVectorEnv(MIXED, reward_mode="grade")
    expected = local.reset(seed=40)
    rng = random.Random(2)
    with WorkflowClient(live_server.url, validate=False).sync() as client:
        batch = client.batch_reset(task_ids=MIXED, seed=40, reward_mode="grade")
        assert as_json(expected.observations) == batch.observations
        ended = 0
        for _ in range(120):
            actions = [choose(rng, obs) for obs in batch.observations]
            expected = local.step(actions)
            batch = client.batch_step(actions)
            for column in COLUMNS:  # the wire carries JSON: compare what JSON makes of the columns
                assert as_json(getattr(expected, column)) == getattr(batch, column), column
            ended += sum(batch.done)
        assert ended >= len(MIXED)
        # The connection's single episode is still there beside the batch.
        single = client.reset(task_id="easy", seed=1)
        assert single.observation.task_id == "easy"


async def _exchange(ws: Any, message: Any) -> dict[str, Any]:
    await ws.send(message if isinstance(message, str) else json.dumps(message))
    reply: dict[str, Any] = json.loads(await ws.recv())
    return reply


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"type": "batch_step", "data": {"actions": [{"action_type": "wait"}] * 2}}, "expected 3 actions"),
        ({"type": "batch_step", "data": {"actions": [{"action_type": "wait"}] * 257}}, "at most 256"),
        ({"type": "batch_step", "data": {"actions": []}}, "at least 1"),
        (
            {"type": "batch_step", "data": {"actions": [{"action_type": "wait"}, {"action_type": "fly"}, {}]}},
            "actions.1.action_type",
        ),
        ({"type": "batch_step", "data": {"actions": "wait"}}, "valid array"),
        ({"type": "batch_step", "data": {}}, "actions"),
        ({"type": "batch_reset", "data": {"task_id": "easy", "num_envs": 257}}, "256"),
        ({"type": "batch_reset", "data": {"task_ids": ["easy", "nothing"]}}, "unknown task_id"),
        ({"type": "batch_reset", "data": {"task_id": "easy", "task_ids": ["easy"]}}, "task_ids"),
        ({"type": "batch_reset", "data": {"task_ids": ["easy", "hard"], "seed": [1]}}, "one seed per episode"),
        ({"type": "batch_reset", "data": {"task_ids": ["easy"], "seed": -1}}, "greater than or equal"),
        ({"type": "batch_reset", "data": {"task_ids": ["easy"], "reward_mode": "lots"}}, "reward_mode"),
    ],
)
def test_a_malformed_batch_gets_an_error_and_changes_nothing(
    live_server: RunningServer, message: dict[str, Any], words: str
) -> None:
    asyncio.run(_malformed(live_server, message, words))


async def _malformed(live_server: RunningServer, message: dict[str, Any], words: str) -> None:
    async with websockets.connect(live_server.ws_url, max_size=2**24) as ws:
        first = await _exchange(ws, {"type": "batch_reset", "data": {"task_ids": ["easy", "arena/easy", "hard"]}})
        assert first["type"] == "batch"
        step = {"type": "batch_step", "data": {"actions": [{"action_type": "wait"}] * 3}}
        before = await _exchange(ws, step)
        reply = await _exchange(ws, message)
        assert reply["type"] == "error"
        assert words in reply["data"]["message"]
        # The same batch goes on as if the bad message had never come.
        after = await _exchange(ws, step)
    local = WorkflowVectorEnv(["easy", "arena/easy", "hard"])
    local.reset(seed=0)
    local.step([{"action_type": "wait"}] * 3)
    expected = local.step([{"action_type": "wait"}] * 3)
    assert before["type"] == after["type"] == "batch"
    assert after["data"]["observations"] == as_json(expected.observations)


def test_a_batch_step_before_a_batch_reset_is_refused(live_server: RunningServer) -> None:
    async def exchange() -> dict[str, Any]:
        async with websockets.connect(live_server.ws_url) as ws:
            return await _exchange(ws, {"type": "batch_step", "data": {"actions": [{"action_type": "wait"}]}})

    reply = asyncio.run(exchange())
    assert reply["type"] == "error" and "batch_reset" in reply["data"]["message"]


def test_batches_are_sealed_and_bounded_by_the_servers_settings(tmp_path: Path) -> None:
    """A sealed server's batches play the sealed episodes; all batches together hold at most
    --max-batch-episodes episodes, and a closed connection gives its episodes back."""
    server = start_server(tmp_path, "--max-batch-episodes", "8", "--outcome-secret", "batch-test-secret")
    try:
        local = WorkflowVectorEnv("hard", 6, outcome_secret="batch-test-secret")
        expected = local.reset(seed=7)
        unsealed = WorkflowVectorEnv("hard", 6)
        unsealed.reset(seed=7)
        differs = False
        with WorkflowClient(server.url, validate=False).sync() as first:
            batch = first.batch_reset(task_id="hard", num_envs=6, seed=7)
            rng = random.Random(5)
            for _ in range(25):
                actions = [choose(rng, obs) for obs in batch.observations]
                expected, batch = local.step(actions), first.batch_step(actions)
                assert as_json(expected.observations) == batch.observations
                differs = differs or as_json(unsealed.step(actions).observations) != batch.observations
            assert differs  # the server's secret sealed them: the unsealed episodes went otherwise
            with WorkflowClient(server.url, validate=False).sync() as second:
                with pytest.raises(RuntimeError, match="at most 8 episodes"):
                    second.batch_reset(task_id="easy", num_envs=3)
                # A smaller batch fits; the same connection may replace its own batch.
                assert len(second.batch_reset(task_id="easy", num_envs=2).observations) == 2
                assert len(first.batch_reset(task_id="hard", num_envs=6, seed=7).observations) == 6
        with WorkflowClient(server.url, validate=False).sync() as third:
            assert len(third.batch_reset(task_id="easy", num_envs=8).observations) == 8
    finally:
        server.stop()


@pytest.mark.parametrize("tasks", [["arena/hard", "arena/easy", "arena/medium"], ["generated/easy", "generated/hard"]])
def test_the_lean_forms_over_the_wire_equal_them_in_process(live_server: RunningServer, tasks: list[str]) -> None:
    """observation="encoded": the same arrays as in process; "none": no observations, the same rest."""
    full = WorkflowVectorEnv(tasks)
    encoded = WorkflowVectorEnv(tasks, observation="encoded")
    expected = encoded.reset(seed=60)
    full.reset(seed=60)
    rng = random.Random(3)
    with (
        WorkflowClient(live_server.url, validate=False).sync() as client,
        WorkflowClient(live_server.url, validate=False).sync() as lean,
    ):
        batch = client.batch_reset(task_ids=tasks, seed=60, observation="encoded")
        quiet = lean.batch_reset(task_ids=tasks, seed=60, observation="none")
        assert batch.observations is None and quiet.observations is None and quiet.encoded is None
        assert batch.encoded.dtype == expected.encoded.dtype and batch.action_masks.dtype == bool
        assert batch.encoded.tolist() == expected.encoded.tolist()
        ended = 0
        for _ in range(80):
            actions = [choose(rng, obs) for obs in full.observations]
            full.step(actions)
            expected = encoded.step(actions)
            batch = client.batch_step(actions)
            quiet = lean.batch_step(actions)
            assert batch.encoded.tolist() == expected.encoded.tolist()
            assert batch.action_masks.tolist() == expected.action_masks.tolist()
            for column in ("rewards", "terminated", "truncated", "grades", "errors"):
                assert as_json(getattr(expected, column)) == getattr(batch, column) == getattr(quiet, column)
            assert quiet.done == batch.done
            assert batch.final_observations is None and quiet.final_observations is None
            ended += sum(batch.done)
        assert ended >= 1


def test_an_unknown_observation_form_is_refused(live_server: RunningServer) -> None:
    async def exchange() -> dict[str, Any]:
        async with websockets.connect(live_server.ws_url) as ws:
            reset = {"type": "batch_reset", "data": {"task_ids": ["easy"], "observation": "dict"}}
            return await _exchange(ws, reset)

    reply = asyncio.run(exchange())
    assert reply["type"] == "error" and "observation" in reply["data"]["message"]
    with pytest.raises(RuntimeError, match="one family"), WorkflowClient(live_server.url, validate=False).sync() as c:
        c.batch_reset(task_ids=["easy", "arena/easy"], observation="encoded")


def test_a_long_batch_step_leaves_the_event_loop_free(live_server: RunningServer) -> None:
    """A batch step runs on the event loop for at most 2 ms and finishes on a worker thread:
    while a batch of 256 episodes steps (tens of milliseconds: as long as the same step takes here in
    process), another connection is answered. Were the step run on the loop, the answer would wait
    for all of it."""
    import statistics
    import time

    import httpx

    task, size, seed = "arena/expert", 256, 5
    waits = [{"action_type": "wait"}] * size
    local = WorkflowVectorEnv(task, size)
    local.reset(seed=seed)
    alone = []
    for _ in range(5):
        started = time.perf_counter()
        local.step(waits)
        alone.append(time.perf_counter() - started)

    async def trial() -> list[float]:
        answered = []
        async with (
            websockets.connect(live_server.ws_url, max_size=None) as ws,
            httpx.AsyncClient(base_url=live_server.url, trust_env=False, timeout=30) as client,
        ):
            reset = {"type": "batch_reset", "data": {"task_id": task, "num_envs": size, "seed": seed}}
            assert (await _exchange(ws, reset))["type"] == "batch"
            await client.get("/health")  # the connection made before the timing
            step = json.dumps({"type": "batch_step", "data": {"actions": waits}})
            for _ in range(3):
                await ws.send(step)
                await asyncio.sleep(0.002)  # the batch step has begun on the server
                started = time.perf_counter()
                health = await client.get("/health")
                answered.append(time.perf_counter() - started)
                assert health.status_code == 200
                reply = json.loads(await ws.recv())
                assert reply["type"] == "batch" and len(reply["data"]["rewards"]) == size
        return answered

    answered = asyncio.run(trial())
    assert statistics.median(answered) < statistics.median(alone) / 2, (answered, alone)
