"""Property tests: any sequence of actions, valid or not, keeps the invariants."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.tasks import SCENARIOS, registry_of, tiny_task
from workflow_orchestrator.server.core.eventlog import FIELDS
from workflow_orchestrator.server.core.observation import public_tails
from workflow_orchestrator.server.core.states import COMPLETED, FAILED, READY, RUNNING, WORKING
from workflow_orchestrator.server.inprocess import WorkflowEnv

_ENV = WorkflowEnv()
_TASKS = {task_id: _ENV.registry.resolve(task_id).spec for task_id in SCENARIOS}
_SUBTASK_IDS = sorted({s.id for t in _TASKS.values() for s in t.subtasks} | {"ghost", ""})
_AGENT_NAMES = sorted({a.name for t in _TASKS.values() for a in t.agents} | {"nobody"})

_names = st.sampled_from(_SUBTASK_IDS)
_agents = st.one_of(st.none(), st.sampled_from(_AGENT_NAMES))
_single = st.builds(
    lambda kind, subtask, agent: {"action_type": kind, "subtask_id": subtask, "agent_name": agent},
    st.sampled_from(["delegate", "retry", "abort", "wait", "synthesize", "bogus"]),
    _names,
    _agents,
)
_dispatch = st.builds(
    lambda pairs, ids: {
        "action_type": "dispatch",
        "assignments": [{"subtask_id": s, "agent_name": a} for s, a in pairs],
        "task_ids": ids,
    },
    st.lists(st.tuples(_names, _agents), max_size=4),
    st.lists(_names, max_size=2),
)
_junk = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3),
)
_action = st.one_of(_single, _single, _dispatch, _junk)


def _legal_or_any(observation: dict[str, Any], data: st.DataObject) -> Any:
    """Half the time a listed legal action (to get deep into episodes), else anything."""
    if observation["legal_actions"] and data.draw(st.booleans()):
        return data.draw(st.sampled_from(observation["legal_actions"]))
    return data.draw(_action)


def check_invariants(env: WorkflowEnv) -> None:
    episode = env.episode
    assert episode is not None
    # Every row has its kind's fields, and the types the records promise.
    for row in episode.log.rows:
        assert len(row) == 3 + len(FIELDS[row[0]]), row
        assert isinstance(row[1], int) and isinstance(row[2], int), row
    records = episode.log.records
    assert [tuple(record.values()) for record in records] == episode.log.rows
    # Time only moves forward.
    times = [r["t"] for r in records]
    assert times == sorted(times)
    assert episode.now >= (times[-1] if times else 0)
    # Capacity: never more running than allowed.
    running = [s for s, status in enumerate(episode.status) if status == RUNNING]
    assert len(running) == episode.active_count <= episode.capacity
    # One agent per running subtask, and every working agent on a running subtask.
    agents_on = [episode.subtask_agent[s] for s in running]
    assert len(set(agents_on)) == len(agents_on) and -1 not in agents_on
    for a, status in enumerate(episode.agent_status):
        if status == WORKING:
            assert episode.subtask_agent[episode.agent_task[a]] == a
    # Dependency order: every start happened after all dependencies completed.
    completed_at: dict[str, int] = {}
    spec = {s.id: s for s in episode.task.subtasks}
    for record in records:
        if record["kind"] == "completed":
            assert record["subtask"] not in completed_at, "completed twice"
            completed_at[record["subtask"]] = record["t"]
        elif record["kind"] == "delegated":
            assert record["subtask"] not in completed_at
            for dep in spec[record["subtask"]].depends_on:
                assert dep in completed_at and completed_at[dep] <= record["t"]
    assert episode.completed_count == len(completed_at) == sum(1 for s in episode.status if s == COMPLETED)
    # Budget accounting: what was charged is what the log says was spent.
    spent = sum(r["cost"] for r in records if r["kind"] in ("completed", "failed", "aborted"))
    assert abs(spent - episode.budget_used) < 1e-9
    # The frontier is exactly the ready, running and failed subtasks, in order.
    assert episode.frontier == [s for s, status in enumerate(episode.status) if status in (READY, RUNNING, FAILED)]
    # The observation agrees with the state.
    observation = env.observation
    assert observation["active_count"] == episode.active_count
    assert observation["completed_count"] == episode.completed_count
    # The remaining critical path, over every unfinished subtask (pending ones included),
    # by the agents publicly capable of each (a hidden trap counts as capable).
    fastest, tail = public_tails(episode.task, episode.dag, episode.compiled.capable)
    longest = 0
    for s, status in enumerate(episode.status):
        if status == RUNNING:
            longest = max(longest, episode.finish_at[s] - episode.now + tail[s] - fastest[s])
        elif status != COMPLETED:
            longest = max(longest, tail[s])
    assert observation["critical_path_length"] == longest


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task_id=st.sampled_from(SCENARIOS), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_any_action_sequence_keeps_the_invariants(task_id: str, seed: int, data: st.DataObject) -> None:
    env = WorkflowEnv()
    observation = env.reset(task_id, seed=seed)
    for _ in range(40):
        action = _legal_or_any(observation, data)
        observation = env.step(action)
        check_invariants(env)
        if observation["done"]:
            assert env.step({"action_type": "wait"})["errors"][0]["code"] == "episode_over"
            break


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_action_sequence_on_the_tiny_task(data: st.DataObject) -> None:
    env = WorkflowEnv(registry=registry_of(tiny_task()))
    observation = env.reset("tiny", seed=data.draw(st.integers(0, 1000)))
    while not observation["done"]:
        observation = env.step(_legal_or_any(observation, data))
        check_invariants(env)
    assert observation["terminated"] != observation["truncated"]
    assert 0.0 <= observation["grade"]["score"] <= 1.0


def _slow_task() -> Any:
    """The tiny task with slow agents: work stays in progress for several ticks."""
    fast = tiny_task()
    return tiny_task(task_id="slow", time_limit=30, agents=tuple(replace(a, speed=a.speed * 3) for a in fast.agents))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task_id=st.sampled_from([*SCENARIOS, "slow"]), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_observations_are_snapshots(task_id: str, seed: int, data: st.DataObject) -> None:
    """Views are shared between observations, episodes and the task's tables;
    nothing a later step does may change an observation already returned."""
    env = WorkflowEnv(registry=registry_of(_slow_task())) if task_id == "slow" else WorkflowEnv()
    compiled = env.registry.resolve(task_id).compiled
    tables = copy.deepcopy(
        (compiled.views.initial_subtask_views, compiled.views.ready_subtask_views, compiled.views.initial_agent_views)
    )
    observation = env.reset(task_id, seed=seed)
    returned = [(observation, copy.deepcopy(observation))]
    for _ in range(40):
        observation = env.step(_legal_or_any(observation, data))
        returned.append((observation, copy.deepcopy(observation)))
        if observation["done"]:
            break
    env.reset(task_id, seed=seed ^ 1)  # another episode on the same shared tables
    env.step({"action_type": "wait"})
    for seen, copied in returned:
        assert seen == copied
    assert (
        compiled.views.initial_subtask_views,
        compiled.views.ready_subtask_views,
        compiled.views.initial_agent_views,
    ) == tables
