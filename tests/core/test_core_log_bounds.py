"""Bounded work per episode: no action can make the event log grow without limit.

The largest invalid action the wire accepts (a dispatch of 64 unknown pairs of
64-character names) once wrote 64 rows per step, each with the whole ~8 KB
label; a step now logs a few rows and the label once, truncated, while the
reward and the grade still count every error.
"""

from __future__ import annotations

import orjson

from tests.support.tasks import act, registry_of, tiny_task
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


def test_a_max_size_invalid_dispatch_adds_a_bounded_log_per_step() -> None:
    env = WorkflowEnv()
    env.reset("arena/hard", seed=0)
    episode = env.episode
    sizes = []
    steps = 0
    while not env.done:
        steps += 1
        observation = env.step(_hostile_dispatch(steps))
        assert len(observation["errors"]) == PAIRS  # the answer still says what was wrong with each pair
        sizes.append(len(orjson.dumps(episode.log.records)))
    rows = [row for row in episode.log.rows if row[0] == "invalid_action"]
    assert len(rows) == steps * MAX_LOGGED_ERRORS_PER_STEP
    first_of_step = [row for row in rows if row[5] is not None]
    assert len(first_of_step) == steps
    assert all(len(row[5]) <= MAX_LABEL_CHARS for row in first_of_step)
    growth = [later - earlier for earlier, later in zip(sizes, sizes[1:], strict=False)]
    # 8 rows of ~150 bytes and one 200-character label: under 2 KB a step (it was ~545 KB).
    assert max(growth) < 2_000
    # The grade and the reward count every error, as before.
    assert env.grade()["counts"]["invalid_actions"] == steps * PAIRS
    assert len(episode.trace) == steps and all(len(entry["errors"]) == PAIRS for entry in episode.trace)


def test_the_penalty_of_a_step_counts_every_error_beyond_the_logged_ones() -> None:
    env = WorkflowEnv(registry_of(tiny_task()))
    env.reset("tiny")
    one = env.step({"action_type": "dispatch", "task_ids": ["zz0"]})["reward"]
    env.reset("tiny")
    many = env.step({"action_type": "dispatch", "task_ids": [f"zz{i}" for i in range(40)]})["reward"]
    assert many < one * 20 < 0


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
