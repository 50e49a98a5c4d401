"""Bounded work per episode: no action can make the event log grow without limit.

The largest invalid action the wire accepts (a dispatch of 64 unknown pairs of
64-character names) once wrote 64 rows per step, each with the whole ~8 KB
label, and the trace kept all 64 pairs. A dispatch naming more starts than the
episode has agents or slots cannot start; it is now refused whole, with one
error, and the trace keeps only what was judged (one start too many). A step
logs a few rows and the label once, truncated, while the reward and the grade
still count every error of a dispatch within the bound.
"""

from __future__ import annotations

import orjson

from tests.support.tasks import act, registry_of, tiny_task
from workflow_orchestrator.server.core import AgentSpec
from workflow_orchestrator.server.core.episode import (
    MAX_EVENTS_PER_EPISODE,
    MAX_LABEL_CHARS,
    MAX_LOGGED_ERRORS_PER_STEP,
)
from workflow_orchestrator.server.inprocess import WorkflowEnv

PAIRS = 64
NAME = 64


def _hostile_dispatch(step: int) -> dict:
    return {
        "action_type": "dispatch",
        "assignments": [
            {"subtask_id": f"{step:04d}{i:02d}".ljust(NAME, "s"), "agent_name": f"{i:02d}".ljust(NAME, "a")}
            for i in range(PAIRS)
        ],
    }


def test_a_max_size_invalid_dispatch_adds_a_bounded_log_and_trace_per_step() -> None:
    env = WorkflowEnv()
    env.reset("arena/hard", seed=0)
    episode = env.episode
    most = min(episode.capacity, len(episode.agents))
    sizes = []
    steps = 0
    while not env.done:
        steps += 1
        observation = env.step(_hostile_dispatch(steps))
        assert [error["code"] for error in observation["errors"]] == ["capacity_exceeded"]
        sizes.append(len(orjson.dumps(episode.log.records)) + len(orjson.dumps(episode.trace)))
    rows = [row for row in episode.log.rows if row[0] == "invalid_action"]
    assert len(rows) == steps
    assert all(row[5] is not None and len(row[5]) <= MAX_LABEL_CHARS for row in rows)
    growth = [later - earlier for earlier, later in zip(sizes, sizes[1:], strict=False)]
    # One row with a 200-character label, and a trace entry of a few pairs: under 3 KB a step (it was ~545 KB).
    assert max(growth) < 3_000
    assert env.grade()["counts"]["invalid_actions"] == steps
    trace = episode.trace
    assert len(trace) == steps and all(len(entry["action"]["assignments"]) == most + 1 for entry in trace)


def test_an_over_long_dispatch_replays_from_its_trace_to_the_same_log() -> None:
    env = WorkflowEnv()
    env.reset("arena/hard", seed=3)
    env.step({"action_type": "wait"})
    env.step(_hostile_dispatch(1))
    env.step({"action_type": "wait"})
    again = WorkflowEnv()
    again.reset("arena/hard", seed=3)
    for entry in env.episode.trace:
        again.step(entry["action"])
    assert again.episode.log.records == env.episode.log.records
    assert again.episode.rewards == env.episode.rewards


def test_the_penalty_of_a_step_counts_every_error_beyond_the_logged_ones() -> None:
    agents = tuple(AgentSpec(f"w{i}", frozenset({"alpha", "beta", "gamma"})) for i in range(12))
    env = WorkflowEnv(registry_of(tiny_task(capacity=12, agents=agents, events=(), patience=None)))
    env.reset("tiny")
    one = env.step({"action_type": "dispatch", "task_ids": ["zz0"]})["reward"]
    env.reset("tiny")
    observation = env.step({"action_type": "dispatch", "task_ids": [f"zz{i}" for i in range(12)]})
    assert len(observation["errors"]) == 12 > MAX_LOGGED_ERRORS_PER_STEP
    assert observation["reward"] < one * 10 < 0


def test_an_episode_ends_when_its_log_reaches_the_bound() -> None:
    env = WorkflowEnv(registry_of(tiny_task(time_limit=10**9)))
    env.reset("tiny")
    episode = env.episode
    episode._event_cap = 50
    steps = 0
    while not env.done:
        env.step(act("delegate", "zzz", "solo"))
        steps += 1
        assert steps < 100
    assert episode.truncated and len(episode.log.rows) <= 51
    assert MAX_EVENTS_PER_EPISODE >= 50_000
