"""Per-step shaped rewards: named channels, unclamped.

The reward is a learning signal, separate from the terminal grade. Penalties
for invalid actions are chosen by the structured error code, never by text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .episode import Episode

# The scenario default table. Positive: a correct delegation, a subtask done,
# work running in parallel, a failure recovered, a useful wait. Negative: a
# dependency violation, a capacity violation, a wrong agent, a failure ignored
# for two or more steps. The last three channels are ours: a missed deadline,
# a synthesis that ends the workflow, and the penalty of any other invalid action.
DEFAULT_REWARD_TABLE: Mapping[str, float] = {
    "delegation": 0.05,
    "completion": 0.08,
    "parallelism": 0.10,
    "recovery": 0.10,
    "useful_wait": 0.03,
    "neglect": -0.08,
    "deadline_missed": -0.10,
    "finish": 0.10,
    "penalty.not_ready": -0.10,
    "penalty.capacity_exceeded": -0.15,
    "penalty.capability_mismatch": -0.05,
    "penalty.default": -0.05,
}

SCENARIO_CHANNELS: tuple[str, ...] = (
    "delegation",
    "completion",
    "parallelism",
    "recovery",
    "useful_wait",
    "neglect",
    "deadline_missed",
    "finish",
    "invalid_action",
)


class StepFacts:
    """What one step did, gathered while it ran; reward models read only this and the episode."""

    __slots__ = (
        "started",
        "completed",
        "recovered",
        "failed",
        "error_codes",
        "waited",
        "useful_wait",
        "missed_deadlines",
        "neglected",
        "synthesized",
        "elapsed",
        "busy_time",
        "running_after_action",
        "ended",
    )

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        # Tuples, grown by concatenation: most steps add nothing to most of them.
        self.started: tuple[tuple[int, int, bool], ...] = ()  # (subtask, agent, is_retry)
        self.completed: tuple[tuple[int, int], ...] = ()  # (subtask, agent)
        self.recovered: tuple[int, ...] = ()  # completed subtasks that had failed before
        self.failed: tuple[tuple[int, int, str], ...] = ()  # (subtask, agent, kind)
        self.error_codes: tuple[str, ...] = ()
        self.waited = False
        self.useful_wait = False
        self.missed_deadlines: tuple[int, ...] = ()
        self.neglected = 0  # failed subtasks left un-retried for two or more steps
        self.synthesized = False
        self.elapsed = 0  # time that passed during this step
        self.busy_time = 0  # agent-time units spent working during this step (see RewardModel)
        self.running_after_action = 0  # in progress right after the action, before time moves
        self.ended = False


class RewardModel(Protocol):
    channels: tuple[str, ...]
    # Whether step_reward reads StepFacts.busy_time: the episode counts it only
    # then (and for a model that does not say).
    reads_busy_time: bool

    def step_reward(self, episode: Episode, facts: StepFacts) -> dict[str, float]: ...


class ScenarioRewards:
    """The per-step table of the scenario tasks, overridable per task."""

    channels = SCENARIO_CHANNELS
    reads_busy_time = False

    def __init__(self, overrides: Mapping[str, float] | None = None) -> None:
        table = dict(DEFAULT_REWARD_TABLE)
        table.update(overrides or {})
        self.table = table
        self._default_penalty = table["penalty.default"]
        # Every channel at zero, in order: a step copies it and sets what it earned.
        self._zero = dict.fromkeys(self.channels, 0.0)

    def penalty(self, code: str) -> float:
        return self.table.get("penalty." + code, self._default_penalty)

    def step_reward(self, episode: Episode, facts: StepFacts) -> dict[str, float]:
        t = self.table
        breakdown = self._zero.copy()
        if facts.started:
            breakdown["delegation"] = t["delegation"] * len(facts.started)
            if facts.running_after_action >= 2:
                breakdown["parallelism"] = t["parallelism"]
        if facts.completed:
            breakdown["completion"] = t["completion"] * len(facts.completed)
        if facts.recovered:
            breakdown["recovery"] = t["recovery"] * len(facts.recovered)
        if facts.useful_wait:
            breakdown["useful_wait"] = t["useful_wait"]
        if facts.neglected:
            breakdown["neglect"] = t["neglect"] * facts.neglected
        if facts.missed_deadlines:
            breakdown["deadline_missed"] = t["deadline_missed"] * len(facts.missed_deadlines)
        if facts.synthesized:
            breakdown["finish"] = t["finish"]
        if facts.error_codes:
            breakdown["invalid_action"] = sum(self.penalty(code) for code in facts.error_codes)
        return breakdown
