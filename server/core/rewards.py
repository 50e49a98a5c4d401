"""Per-step shaped rewards: named channels, unclamped.

The reward is a learning signal, separate from the terminal grade. Penalties
for invalid actions are chosen by the structured error code, never by text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from mypy_extensions import mypyc_attr

from ...vocabulary import REWARD_MODES, RewardModeName

if TYPE_CHECKING:
    from .episode import Episode

# The scenario default table. Positive: a correct delegation, a subtask done,
# work running in parallel, a failure recovered, a useful wait. Negative: a
# dependency violation, a capacity violation, a wrong agent, a failure ignored
# for two or more steps. The last three channels are ours: a missed deadline,
# a synthesis that ends the workflow, and the penalty of any other invalid action.
#
# Every credit is paid so that no detour earns it twice (ScenarioRewards.step_reward):
#   delegation   once per subtask, at its first start; an abort gives it back; a start on
#                an agent already seen to fail that subtask permanently costs as much
#   parallelism  per new peak of subtasks running at once (two or more), as the grade counts it
#   recovery     a failure costs it, and completing the failed subtask pays it back per failure
#   useful_wait  a wait during which running work completes, or a wait monitoring wants
DEFAULT_REWARD_TABLE: Final[Mapping[str, float]] = {
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

SCENARIO_CHANNELS: Final[tuple[str, ...]] = (
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


# A step's reward in each scenario channel, in the order of SCENARIO_CHANNELS.
ChannelValues = tuple[float, float, float, float, float, float, float, float, float]
NO_CHANNELS: Final[ChannelValues] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


# The facts' lists of subtasks until a step first adds to them (shared: always empty).
NO_SUBTASKS: Final[list[int]] = []


def add_subtask(subtasks: list[int], s: int) -> list[int]:
    """``subtasks`` (one of the facts' lists) with ``s`` added: the list itself, or a new one in
    place of the shared NO_SUBTASKS, which stays empty. The caller keeps what it returns."""
    if subtasks is NO_SUBTASKS:
        return [s]
    subtasks.append(s)
    return subtasks


class StepFacts:
    """What one step did, gathered while it ran; reward models read only this and the episode."""

    __slots__ = (
        "started",
        "first_starts",
        "repeated_permanent",
        "aborted",
        "completed",
        "recovered",
        "failed",
        "error_codes",
        "waited",
        "useful_wait",
        "patience_wait",
        "missed_deadlines",
        "neglected",
        "synthesized",
        "elapsed",
        "busy_time",
        "running_after_action",
        "previous_peak",
        "ended",
    )

    def __init__(self) -> None:
        # Lists of subtasks, emptied at every step (see clear): ints in a list make no
        # object for the cyclic collector, where a tuple of tuples grown at every start
        # made two that lived until the next step. Each is the shared NO_SUBTASKS until
        # the episode first adds to it (see add_subtask), so that a new episode makes none.
        self.completed: list[int] = NO_SUBTASKS  # completed subtasks
        self.recovered: list[int] = NO_SUBTASKS  # completed subtasks that had failed before
        self.failed: list[int] = NO_SUBTASKS  # subtasks whose attempt failed
        self.missed_deadlines: list[int] = NO_SUBTASKS
        self.clear()

    def clear(self) -> None:
        self.started = 0  # starts (first, retries and restarts)
        self.first_starts = 0  # starts of subtasks never started before
        self.repeated_permanent = 0  # starts on an agent already seen to fail that subtask permanently
        self.aborted = False  # the action aborted running work
        if self.completed:
            self.completed.clear()
        if self.recovered:
            self.recovered.clear()
        if self.failed:
            self.failed.clear()
        if self.missed_deadlines:
            self.missed_deadlines.clear()
        self.error_codes: tuple[str, ...] = ()
        self.waited = False
        self.useful_wait = False
        self.patience_wait = False  # a wait monitoring wants (counted for the patience dimension)
        self.neglected = 0  # failed subtasks that could be retried, left alone for two or more steps
        self.synthesized = False
        self.elapsed = 0  # time that passed during this step
        self.busy_time = 0  # agent-time units spent working during this step (see RewardModel)
        self.running_after_action = 0  # in progress right after the action, before time moves
        self.previous_peak = -1  # the peak of work running at once before this step, when the step raised it
        self.ended = False


def channel_breakdown(values: ChannelValues) -> dict[str, float]:
    """The breakdown of a step of the scenario table: every channel, in the order of
    :data:`SCENARIO_CHANNELS`. A dict display: ``dict(zip(...))`` takes several times as long."""
    d, c, p, r, w, n, m, f, i = values
    return {
        "delegation": d,
        "completion": c,
        "parallelism": p,
        "recovery": r,
        "useful_wait": w,
        "neglect": n,
        "deadline_missed": m,
        "finish": f,
        "invalid_action": i,
    }


class RewardModel(Protocol):
    channels: tuple[str, ...]
    # Whether step_reward reads StepFacts.busy_time: the episode counts it only
    # then (and for a model that does not say).
    reads_busy_time: bool

    def step_reward(self, episode: Episode, facts: StepFacts) -> dict[str, float]: ...


# Open to subclasses in the compiled build too (native.py).
@mypyc_attr(allow_interpreted_subclasses=True)
class ScenarioRewards:
    """The per-step table of the scenario tasks, overridable per task."""

    channels = SCENARIO_CHANNELS
    reads_busy_time = False

    def __init__(self, overrides: Mapping[str, float] | None = None) -> None:
        table = dict(DEFAULT_REWARD_TABLE)
        table.update(overrides or {})
        self.table = table
        self._default_penalty = table["penalty.default"]

    def penalty(self, code: str) -> float:
        return self.table.get("penalty." + code, self._default_penalty)

    def step_reward(self, episode: Episode, facts: StepFacts) -> dict[str, float]:
        return channel_breakdown(self.channel_values(episode, facts))

    def channel_values(self, episode: Episode, facts: StepFacts) -> ChannelValues:
        """The step's reward in each channel, in the order of :data:`SCENARIO_CHANNELS`.

        A tuple of numbers, which the compiled build returns without making an
        object: the episode's step adds them and keeps them, and builds the
        breakdown from them when it is read (:func:`channel_breakdown`).
        """
        t = self.table
        delegation = completion = parallelism = recovery = useful_wait = 0.0
        neglect = deadline_missed = finish = invalid_action = 0.0
        if facts.aborted:
            # Work thrown away gives its start's credit back (and its restart earns none).
            delegation = -t["delegation"]
        elif facts.started:
            # Starting work pays once per subtask: a restart after an abort or a failure
            # earns nothing, a start on an agent already seen to fail the subtask
            # permanently costs what a first start earns.
            delegation = t["delegation"] * (facts.first_starts - facts.repeated_permanent)
            # Work in parallel pays per new peak of subtasks running at once (as the grade
            # counts it), not per start: splitting or stretching work earns nothing more.
            if facts.previous_peak >= 0 and facts.running_after_action >= 2:
                parallelism = t["parallelism"] * (facts.running_after_action - max(1, facts.previous_peak))
        if facts.completed:
            completion = t["completion"] * len(facts.completed)
        if facts.failed or facts.recovered:
            # A failure costs what its recovery pays back: walking into failures earns nothing.
            recovery = -t["recovery"] * len(facts.failed)
            for s in facts.recovered:
                recovery += t["recovery"] * episode.failure_count[s]
        if facts.useful_wait and (facts.completed or facts.patience_wait):
            # A wait is useful when running work completes during it, or when monitoring
            # wants it: waits that only let time pass earn nothing, so a slower episode
            # does not earn more.
            useful_wait = t["useful_wait"]
        if facts.neglected:
            neglect = t["neglect"] * facts.neglected
        if facts.missed_deadlines:
            deadline_missed = t["deadline_missed"] * len(facts.missed_deadlines)
        if facts.synthesized:
            finish = t["finish"]
        if facts.error_codes:
            invalid_action = sum(self.penalty(code) for code in facts.error_codes)
        return (
            delegation,
            completion,
            parallelism,
            recovery,
            useful_wait,
            neglect,
            deadline_missed,
            finish,
            invalid_action,
        )


# ------------------------------------------------------------------ reward modes

GRADE_CHANNELS: Final[tuple[str, ...]] = ("grade",)

Grader = Callable[[Any], Mapping[str, Any]]


# Open to subclasses in the compiled build too (native.py).
@mypyc_attr(allow_interpreted_subclasses=True)
class GradeRewards:
    """``reward_mode="grade"``: dense and potential-based. The potential is the
    episode's grade as if it ended now (the family's grader on the event log so
    far); each step pays its change, the first from zero, and the rewards of an
    episode sum to its final grade (the last step completes the sum: each reward
    is the potential less what was paid before)."""

    channels = GRADE_CHANNELS
    reads_busy_time = False

    def __init__(self, grade: Grader) -> None:
        self._grade = grade
        self._paid = 0.0

    # Any family's episode and step facts (the canvas family's too): the grader reads them.
    def step_reward(self, episode: Any, facts: Any) -> dict[str, float]:
        reward = self._grade(episode)["score"] - self._paid
        self._paid += reward
        return {"grade": reward}


# Open to subclasses in the compiled build too (native.py).
@mypyc_attr(allow_interpreted_subclasses=True)
class SparseRewards:
    """``reward_mode="sparse"``: 0 every step, the grade at the step that ends the episode."""

    channels = GRADE_CHANNELS
    reads_busy_time = False

    def __init__(self, grade: Grader) -> None:
        self._grade = grade

    def step_reward(self, episode: Any, facts: Any) -> dict[str, float]:
        return {"grade": float(self._grade(episode)["score"]) if facts.ended else 0.0}


def check_reward_mode(mode: Any) -> RewardModeName:
    """``mode`` if it is a reward mode, else (whatever its type) a ValueError that names the known ones."""
    if not isinstance(mode, str) or mode not in REWARD_MODES:
        raise ValueError(f"unknown reward_mode {mode!r}; known: {', '.join(REWARD_MODES)}")
    return mode


def grade_reward_model(mode: RewardModeName, grade: Grader) -> RewardModel:
    """A fresh reward model of one episode for the modes read from the grade."""
    if mode == "grade":
        return GradeRewards(grade)
    if mode == "sparse":
        return SparseRewards(grade)
    raise ValueError(f"reward_mode {mode!r} is the family's own table, not read from the grade")
