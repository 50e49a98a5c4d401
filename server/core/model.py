"""The immutable description of a task: subtasks, agents, scheduled events, rules.

A :class:`TaskSpec` is what a scenario file or the generator produces. The
episode never mutates it, so one spec can back any number of episodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


class TimeModel(str, Enum):
    """How the clock moves.

    ``tick``: every action, valid or not, takes one time unit and then the world
    advances one unit. ``event``: decisions take no time; ``wait`` jumps to the
    next event; a step limit bounds the episode.
    """

    TICK = "tick"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class SubtaskSpec:
    id: str
    type: str
    depends_on: tuple[str, ...] = ()
    work: int = 1
    priority: int = 1
    deadline: int | None = None
    # Free-form labels the graders read ("communication", a pillar name, ...).
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str
    capabilities: frozenset[str]
    speed: int = 1
    cost: float = 1.0
    reliability: float = 1.0
    # Hidden traps: subtask types this agent accepts but can never complete
    # (every attempt fails, permanently) ...
    never_succeeds: frozenset[str] = frozenset()
    # ... and types whose first N attempts by this agent always fail (transiently).
    fails_first: Mapping[str, int] = field(default_factory=dict)

    def duration_for(self, work: int) -> int:
        return max(1, self.speed * work)


class EventKind(str, Enum):
    OFFLINE = "offline"  # the agent drops out; a running subtask fails
    ONLINE = "online"  # the agent comes back
    SPEED = "speed"  # the agent's speed changes for assignments started from now
    CAPACITY = "capacity"  # the number of usable worker slots changes


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    # In the tick model ``at`` is the tick at whose start the event happens
    # (tick 1 is the first action). In the event model it is a point in time.
    at: int
    kind: EventKind
    agent: str | None = None
    value: int | None = None


@dataclass(frozen=True, slots=True)
class ConflictSpec:
    """Tracks whose findings conflict: credit needs pairwise different agents on them."""

    at: str
    tracks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatienceSpec:
    """``waits`` wait actions wanted after ``after`` completes, before synthesis."""

    after: str
    waits: int


@dataclass(frozen=True, slots=True)
class TaskSpec:
    task_id: str
    title: str
    description: str
    family: str  # "scenario", "arena" or "generated"
    difficulty: str
    time_model: TimeModel
    time_limit: int | None  # ticks (tick model) or time units (event model); None = unbounded
    capacity: int
    budget: float | None
    subtasks: tuple[SubtaskSpec, ...]
    agents: tuple[AgentSpec, ...]
    events: tuple[ScheduledEvent, ...] = ()
    conflicts: tuple[ConflictSpec, ...] = ()
    patience: PatienceSpec | None = None
    pillars: tuple[str, ...] = ()
    # Grade dimension -> weight (sum 1); dimensions not listed are not graded.
    grade_weights: Mapping[str, float] = field(default_factory=dict)
    # Fraction of subtasks that must be complete before "doing no harm"
    # dimensions count in full.
    activity_gate: float = 0.5
    # Reward channel overrides on top of the default table.
    reward_table: Mapping[str, float] = field(default_factory=dict)
    canonical_seed: int = 0
    step_limit: int | None = None  # decisions allowed before truncation
    # After this many failed attempts of one subtask, its next attempt by an able
    # agent succeeds (the arena's "maximum retries"); None = no cap.
    retry_cap: int | None = None
    # Free-form parameters (generator settings, ...) shown by /tasks.
    parameters: Mapping[str, object] = field(default_factory=dict)


def public_rules(task: TaskSpec) -> dict[str, object]:
    """The task's stated rules: what the grade rewards, shown to every policy."""
    return {
        "grade_weights": dict(task.grade_weights),
        "conflicts": [{"at": c.at, "tracks": list(c.tracks)} for c in task.conflicts],
        "patience": ({"after": task.patience.after, "waits": task.patience.waits} if task.patience else None),
        "pillars": {p: [s.id for s in task.subtasks if p in s.tags] for p in task.pillars},
    }
