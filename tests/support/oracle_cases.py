"""Small hand-made tasks for the oracle's tests: every rule the search models
(traps, forced first failures, dropouts and returns, speed and capacity
changes, retry caps, patience, conflicts, pillars, deadlines, budget) in tasks
small enough for exhaustive enumeration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workflow_orchestrator.server.core import AgentSpec, EventKind, ScheduledEvent, SubtaskSpec, TaskSpec, TimeModel
from workflow_orchestrator.server.core.compiled import CompiledTask
from workflow_orchestrator.server.core.episode import Episode
from workflow_orchestrator.server.core.families import grade_episode
from workflow_orchestrator.server.core.model import ConflictSpec, PatienceSpec

# Every scenario dimension, with weights that sum to 1.
ALL_WEIGHTS = {
    "completion": 0.16,
    "recovery": 0.08,
    "recovery_speed": 0.08,
    "error_classification": 0.08,
    "parallelism": 0.08,
    "cost_efficiency": 0.08,
    "budget": 0.06,
    "deadlines": 0.08,
    "time_efficiency": 0.08,
    "conflict_handling": 0.06,
    "patience": 0.06,
    "pillar_balance": 0.05,
    "valid_actions": 0.05,
}


def _task(**fields: Any) -> TaskSpec:
    base: dict[str, Any] = dict(
        title="Oracle test",
        description="A small workflow for the oracle's tests.",
        family="scenario",
        difficulty="test",
        time_model=TimeModel.TICK,
        activity_gate=1.0,
        grade_weights=ALL_WEIGHTS,
    )
    base.update(fields)
    return TaskSpec(**base)


def rich_task(time_limit: int = 10) -> TaskSpec:
    """Four subtasks (a -> b, a -> c, b & c -> d) and every kind of event."""
    return _task(
        task_id="oracle_rich",
        time_limit=time_limit,
        capacity=2,
        budget=12.0,
        subtasks=(
            SubtaskSpec("a", "alpha", tags=("one",)),
            SubtaskSpec("b", "beta", ("a",), deadline=5, tags=("one",)),
            SubtaskSpec("c", "gamma", ("a",), work=2, tags=("two",)),
            SubtaskSpec("d", "delta", ("b", "c"), tags=("two",)),
        ),
        agents=(
            AgentSpec("lead", frozenset({"alpha", "delta"}), speed=1, cost=2.0, reliability=0.7),
            AgentSpec("cheap", frozenset({"alpha", "beta", "gamma"}), speed=2, cost=0.5, reliability=0.6),
            AgentSpec("trap", frozenset({"beta", "gamma"}), speed=1, cost=1.0, never_succeeds=frozenset({"gamma"})),
            AgentSpec("slow", frozenset({"gamma", "delta"}), speed=1, cost=1.0, fails_first={"gamma": 1}),
        ),
        events=(
            ScheduledEvent(3, EventKind.OFFLINE, "cheap"),
            ScheduledEvent(5, EventKind.ONLINE, "cheap"),
            ScheduledEvent(4, EventKind.SPEED, "slow", 2),
            ScheduledEvent(6, EventKind.CAPACITY, value=1),
        ),
        conflicts=(ConflictSpec("d", ("b", "c")),),
        patience=PatienceSpec("b", 1),
        pillars=("one", "two"),
    )


def capped_task(time_limit: int = 8) -> TaskSpec:
    """Unreliable agents with a retry cap: outcomes depend on earlier failures."""
    return _task(
        task_id="oracle_capped",
        time_limit=time_limit,
        capacity=2,
        budget=None,
        subtasks=(
            SubtaskSpec("x", "work"),
            SubtaskSpec("y", "work"),
            SubtaskSpec("z", "work", ("x",)),
        ),
        agents=(
            AgentSpec("p", frozenset({"work"}), reliability=0.3),
            AgentSpec("q", frozenset({"work"}), reliability=0.4, cost=0.5),
        ),
        retry_cap=1,
        grade_weights={
            "completion": 0.3,
            "recovery_speed": 0.2,
            "time_efficiency": 0.2,
            "cost_efficiency": 0.2,
            "parallelism": 0.1,
        },
    )


_BRUTE_WEIGHTS = {
    "completion": 0.2,
    "recovery": 0.05,
    "recovery_speed": 0.1,
    "error_classification": 0.05,
    "parallelism": 0.1,
    "cost_efficiency": 0.15,
    "budget": 0.05,
    "deadlines": 0.1,
    "time_efficiency": 0.1,
}
_BRUTE_EXTRA = ("patience", "conflict_handling", "valid_actions")


def brute_task(variant: int, time_limit: int = 6) -> TaskSpec:
    """Small enough to enumerate every plan: three subtasks, a short horizon."""
    agents = (
        AgentSpec("fast", frozenset({"s", "t"}), speed=1, cost=3.0, reliability=0.6),
        AgentSpec("thrifty", frozenset({"s", "t"}), speed=2, cost=1.0, reliability=0.8),
        AgentSpec("fake", frozenset({"t"}), speed=1, cost=0.5, never_succeeds=frozenset({"t"})),
    )
    events: tuple[ScheduledEvent, ...] = ()
    if variant % 2:
        events = (ScheduledEvent(3, EventKind.OFFLINE, "thrifty"),)
    return _task(
        task_id=f"oracle_brute_{variant}",
        time_limit=time_limit,
        capacity=2,
        budget=8.0,
        subtasks=(
            SubtaskSpec("one", "s"),
            SubtaskSpec("two", "t", deadline=3),
            SubtaskSpec("three", "s", ("one",)),
        ),
        agents=agents,
        events=events,
        patience=PatienceSpec("three", 1) if variant % 3 == 0 else None,
        conflicts=(ConflictSpec("three", ("one", "two")),) if variant % 3 == 1 else (),
        grade_weights={**_BRUTE_WEIGHTS, _BRUTE_EXTRA[variant % 3]: 0.1},
    )


def abort_task() -> TaskSpec:
    """The only able agent is slow and its first attempt always fails: aborting
    that attempt after one tick and starting again meets the deadline, waiting
    for the failure does not."""
    return _task(
        task_id="oracle_abort",
        time_limit=8,
        capacity=1,
        budget=None,
        subtasks=(SubtaskSpec("long", "slow_work", deadline=5), SubtaskSpec("after", "quick", ("long",))),
        agents=(
            AgentSpec("only", frozenset({"slow_work"}), speed=3, fails_first={"slow_work": 1}),
            AgentSpec("helper", frozenset({"quick"})),
        ),
        grade_weights={"completion": 0.4, "deadlines": 0.4, "time_efficiency": 0.2},
    )


def idle_task() -> TaskSpec:
    """Finishing the second subtask breaks the budget: the best plan does the
    first one and then waits out the clock with nothing running."""
    return _task(
        task_id="oracle_idle",
        time_limit=5,
        capacity=2,
        budget=2.0,
        subtasks=(SubtaskSpec("cheap_part", "plain"), SubtaskSpec("dear_part", "gold")),
        agents=(
            AgentSpec("clerk", frozenset({"plain"})),
            AgentSpec("jeweller", frozenset({"gold"}), cost=100.0),
        ),
        grade_weights={"completion": 0.3, "budget": 0.7},
    )


def episode_maximum(
    compiled: CompiledTask,
    seed: int,
    actions: Callable[[Episode], list[dict[str, Any]]],
    prefix: tuple[dict[str, Any], ...] = (),
) -> float:
    """The best grade over every continuation, by replaying real episodes: at each
    step every action that ``actions`` lists for the episode as it is then."""
    episode = Episode(compiled, seed=seed)
    for action in prefix:
        episode.step(action)
    if episode.done:
        return grade_episode(episode)["score"]
    return max(episode_maximum(compiled, seed, actions, (*prefix, action)) for action in actions(episode))
