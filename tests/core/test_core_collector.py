"""A step leaves the cyclic collector nothing to walk but what the episode keeps as its record.

Every container object a step makes and keeps alive past the step is walked by
the next young collection, and again by every older one it survives. Over a
batch of 256 episodes its walks wait on memory: the collector's part of a step
is about two fifths of its second-level misses (README, Speed: the collector's
share). The steps used to leave it a tuple holding a tuple per queued completion
and tuples of tuples in the step's facts. The queue's entries are now flat tuples
and the step's facts lists of ints, so what a step leaves is its log rows, the
failures it records, its reward's values and one flat tuple of ints per queued
completion (which the collector stops tracking at its first visit, as it does
log rows).
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from workflow_orchestrator.evaluation import record_policy_actions
from workflow_orchestrator.server.core.episode import Episode
from workflow_orchestrator.server.inprocess import WorkflowEnv


def _kept_by_the_record(episode: Episode) -> set[int]:
    """The ids of the containers an episode keeps as its record: log rows, failures,
    the agents seen to fail permanently, the step's errors and reward values."""
    kept: list[Any] = [*episode.log.rows, episode._channels, episode.last_errors, *episode.last_errors]
    for failures in episode.failures:
        kept.append(failures)
        kept.extend(failures)
    kept.extend(episode.known_permanent)
    kept.extend(episode._heap)
    return {id(item) for item in kept}


def _left_behind(episode: Episode, action: Any) -> list[Any]:
    """The container objects made by one step of ``episode`` that outlive it, but for its record."""
    gc.collect()
    before = gc.get_objects()  # held, so that no id is reused while the step runs
    known = {id(item) for item in before}
    gc.disable()
    try:
        episode.step(action)
        after = gc.get_objects()
    finally:
        gc.enable()
    record = _kept_by_the_record(episode)
    left = []
    for item in after:  # a plain loop: a comprehension would be a new object itself
        if id(item) not in known and id(item) not in record and item is not before and item is not known:
            left.append(item)
    return left


@pytest.mark.parametrize("task_id", ["hard", "arena/hard", "generated/hard"])
def test_a_step_leaves_no_containers_but_its_record(task_id: str) -> None:
    env = WorkflowEnv()
    actions = record_policy_actions(env, "heuristic", task_id, 3)
    # A first play of the same actions fills the shared cache of parsed actions, which
    # keeps one Action per distinct action (the cache is not what a step leaves).
    env.reset(task_id, seed=3)
    for action in actions:
        env.advance(action)
    env.reset(task_id, seed=3)
    episode = env.episode
    assert isinstance(episode, Episode)
    starts = 0
    for action in actions:
        rows = len(episode.log.rows)
        left = _left_behind(episode, action)
        assert left == [], (action, [type(item).__name__ for item in left], left[:4])
        # The queue's entries hold no container: nothing keeps them tracked.
        assert all(type(value) is int for entry in episode._heap for value in entry), episode._heap
        starts += sum(1 for row in episode.log.rows[rows:] if row[0] == "delegated")
    # The play started work and saw it end: the queue and the facts were exercised.
    assert starts >= 5
    assert any(row[0] in ("completed", "failed") for row in episode.log.rows)
