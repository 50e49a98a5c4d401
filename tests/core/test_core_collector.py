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
    the agents seen to fail permanently, the step's errors and reward values; and those it
    makes once, when first needed, and keeps (the failure records, the facts' lists)."""
    facts = episode.facts
    kept: list[Any] = [*episode.log.rows, episode._channels, episode.last_errors, *episode.last_errors]
    kept += [facts.completed, facts.recovered, facts.failed, facts.missed_deadlines]
    kept += [episode.failure_count, episode.failures, episode.failed_since_step, episode.failed_set]
    kept += [episode.known_permanent, episode.agent_speed]
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


def _made_by_a_start(env: WorkflowEnv, task_id: str, seed: int) -> list[Any]:
    """The container objects that starting an episode (``WorkflowEnv.start``, as the vector env's
    lean forms do) makes and keeps: the episode's own state."""
    env.start(task_id, seed=seed)
    previous = env.episode  # held, so that none of its objects' ids is reused
    gc.collect()
    before = gc.get_objects()
    known = {id(item) for item in before}
    gc.disable()
    try:
        env.start(task_id, seed=seed)
        after = gc.get_objects()
    finally:
        gc.enable()
    made = []
    for item in after:
        if id(item) not in known and item is not before and item is not known and item is not previous:
            made.append(item)
    return made


# The containers a new episode of each task makes, at most. Each is walked by the first young
# collection after a batch reset, again by the next middle one, and then by every full one: at
# N = 256 that walk took about a fifth of the collector's time in a batch step of hard (README,
# Speed). An episode of hard made 42. Now the views an observation reads (and the sets that mark
# what changed since they were read) are made at its first read; the trace is one list; an empty
# ``last_errors`` is shared; the environment keeps the family rather than a bound method of it;
# the failure records and the declared speeds are the task's, shared, until the episode first
# changes them; the step's facts make their lists when first added to; and the five per-subtask
# facts of an attempt (its agent, start, end, outcome and the count of starts) are one list.
@pytest.mark.parametrize(("task_id", "most"), [("hard", 17), ("arena/hard", 18), ("generated/hard", 17)])
def test_a_new_episode_makes_few_containers(task_id: str, most: int) -> None:
    made = _made_by_a_start(WorkflowEnv(), task_id, 1)
    kinds = sorted(type(item).__name__ for item in made)
    assert len(made) <= most, kinds
    assert "Views" not in kinds and "method" not in kinds and "set" not in kinds, kinds


def test_views_made_at_the_first_read_match_views_kept_from_the_start() -> None:
    """An episode first observed after k steps shows what an episode observed at every step
    shows, then and at every later read."""
    for task_id in ("hard", "arena/hard", "generated/hard", "expert", "medium"):
        actions = record_policy_actions(WorkflowEnv(), "heuristic", task_id, 5)
        watched = WorkflowEnv()
        watched.reset(task_id, seed=5)
        observations = [watched.step(action) for action in actions]
        for first_read in sorted({0, 1, 2, len(actions) // 2, len(actions) - 1}):
            unwatched = WorkflowEnv()
            unwatched.start(task_id, seed=5)
            for k, action in enumerate(actions):
                unwatched.advance(action)
                if k < first_read:
                    assert unwatched.episode._views is None
                elif k == first_read or k % 3 == 0:  # the first read, then every third step
                    assert unwatched.observation == observations[k], (task_id, first_read, k)
        assert observations[-1]["done"]


def test_outcomes_set_on_an_episode_decide_its_attempts() -> None:
    """The step reads the task's outcomes from a table by index; outcomes set on the episode
    (as the planner sets forced or drawn ones) replace it."""

    class AlwaysPermanent:
        def decide(self, key: bytes, attempt: int, failures: int, retry_cap: int) -> str:
            return "permanent"

    actions = record_policy_actions(WorkflowEnv(), "heuristic", "hard", 2)
    env = WorkflowEnv()
    env.reset("hard", seed=2)
    episode = env.episode
    episode.outcomes = {pair: AlwaysPermanent() for pair in episode.outcomes}
    assert episode._outcome_table is None
    for action in actions:
        env.step(action)
    kinds = {row[0] for row in episode.log.rows}
    assert "delegated" in kinds and "failed" in kinds
    assert "completed" not in kinds
    assert all(row[5] == "permanent" for row in episode.log.rows if row[0] == "failed")


def test_the_shared_records_of_new_episodes_stay_empty() -> None:
    """Before its first failure an episode reads the task's shared empty failure records, until
    a speed changes the task's declared speeds, and the step's facts share one empty list until
    first added to; episodes that fail, recover, abort, miss deadlines and see speeds change
    leave all of them as they were, and make their own."""
    from workflow_orchestrator.server.core import episode as episode_module
    from workflow_orchestrator.server.core.rewards import NO_SUBTASKS

    env = WorkflowEnv()
    failed = changed = 0
    for task_id in ("hard", "arena/hard", "generated/hard", "expert"):
        for policy in ("random", "heuristic"):
            for seed in range(3):
                actions = record_policy_actions(env, policy, task_id, seed)
                env.reset(task_id, seed=seed)
                compiled = env.episode.compiled
                assert env.episode.failures is compiled.no_failures
                for action in actions:
                    env.step(action)
                episode = env.episode
                if episode.failed_set is not episode_module._NO_FAILED:
                    failed += 1
                    assert episode.failures is not compiled.no_failures
                    assert episode.failure_count is not compiled.no_failure_counts
                    assert sum(map(len, episode.failures)) >= sum(episode.failure_count)  # aborts too
                    assert sum(map(len, episode.failures)) > 0
                n = len(compiled.spec.subtasks)
                assert compiled.no_failures == [[]] * n
                assert compiled.no_failure_counts == [0] * n
                assert compiled.never_failed == [-1] * n
                assert compiled.declared_speeds == [agent.speed for agent in compiled.spec.agents]
                speeds_changed = any(row[0] == "speed_changed" for row in episode.log.rows)
                assert (episode.agent_speed is compiled.declared_speeds) is not speeds_changed
                changed += speeds_changed
    assert failed >= 4 and changed >= 1
    assert episode_module._NO_FAILED == set() and episode_module._NO_PERMANENT == set()
    assert NO_SUBTASKS == []
