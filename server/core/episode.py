"""One episode of a workflow: all of its state in one object, and the step.

A step reads as a few named sub-updates::

    apply the action (or record why it is invalid)
    advance the clock (tick: one unit; event: on a wait, to the next event, one unit
    when nothing runs)
    resolve completions, failures and scheduled events in time order
    check deadlines, neglected failures, termination and truncation
    compute the reward breakdown

Readiness is tracked with predecessor counters: completing a subtask
decrements its successors' counters, and a subtask becomes ready at zero.
Completed subtasks never revert, so nothing can run before its dependencies.
The frontier (subtasks ready, running or failed) is kept in order alongside,
so that the observation never has to walk the pending ones.
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from .actions import (
    DELEGATE,
    DISPATCH,
    RETRY,
    SYNTHESIZE,
    WAIT,
    Action,
    ActionError,
    ActionType,
    ErrorCode,
    parse_action,
)
from .compiled import CompiledTask
from .eventlog import EventLog
from .formulas import deadline_met
from .model import EventKind, ScheduledEvent, TimeModel
from .observation import Views
from .outcomes import PERMANENT, TRANSIENT, AttemptOutcomes, PairOutcomes, episode_key
from .rewards import (
    NO_CHANNELS,
    ChannelValues,
    RewardModel,
    ScenarioRewards,
    StepFacts,
    add_subtask,
    channel_breakdown,
)
from .states import (
    AGENT_OF,
    ATTEMPT_FIELDS,
    COMPLETED,
    ENDS,
    ENDS_COMPLETED,
    ENDS_PERMANENT,
    ENDS_TRANSIENT,
    FAILED,
    FINISH_AT,
    IDLE,
    OFFLINE,
    PENDING,
    READY,
    RUNNING,
    STARTED_AT,
    STARTS,
    SUBTASK_STATUS,
    WORKING,
)

# What an accepted action returns as its errors (shared: never changed).
_NO_ERRORS: Final[list[tuple[ErrorCode, str]]] = []
# The errors an episode shows while its latest step had none (shared: never changed; an
# observation copies them).
_NO_ERRORS_SHOWN: Final[list[dict[str, str]]] = []

# Beyond any time or step count.
_NEVER: Final = 1 << 62

# Bounds on what one episode keeps, so that no sequence of actions can make its
# log (and every answer that carries it) grow without limit: the errors logged
# per step, the characters of an action's label in the log (as the trace keeps
# a raw action), and the rows of the log (reaching it truncates the episode; no
# task of the registry comes near it).
MAX_LOGGED_ERRORS_PER_STEP: Final = 8
MAX_LABEL_CHARS: Final = 200
MAX_EVENTS_PER_EPISODE: Final = 50_000

# The failure records' sets of an episode before its first failure (shared: always empty;
# see Episode._own_failure_records).
_NO_FAILED: Final[set[int]] = set()
_NO_PERMANENT: Final[set[tuple[int, int]]] = set()

# The marks of an episode whose views are not made yet (shared: always empty; see Episode.views).
_UNWATCHED: Final[set[int]] = set()

# The agents already taken in a batch of one.
_NONE_TAKEN: Final[frozenset[int]] = frozenset()

# Heap priorities at equal times: work that finished at the end of a tick is
# resolved before what happens at the start of the next one.
_COMPLETION: Final = 0
_SCHEDULED: Final = 1

# The functions of other modules that the step calls, bound once: the compiled build
# looks a module's attribute (or a plain global) up in a dictionary at every call.
_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop
_insort: Final = insort


class Episode:
    """The whole state of one episode, its event log and its action trace."""

    # Every attribute an episode has, declared. With more than 30 of them, an
    # instance's attributes no longer share their keys with the class's other
    # instances: each episode would carry a dictionary of its own, and every
    # attribute read in the step would look a key up in it. Slots keep them at
    # fixed places in the object, in 608 bytes instead of 1,640 (on hard), so a
    # batch of 256 episodes waits less on memory (README, Speed).
    __slots__ = (
        "compiled",
        "task",
        "seed",
        "seed_key",
        "sealed",
        "_outcomes",
        "_outcome_table",
        "_time_cap",
        "_step_cap",
        "retry_cap",
        "dag",
        "reward_model",
        "_count_busy_time",
        "subtasks",
        "agents",
        "agent_index",
        "tick_model",
        "unmet",
        "status",
        "_attempt",
        "failure_count",
        "pair_attempts",
        "failures",
        "failed_since_step",
        "failed_set",
        "known_permanent",
        "completed_at",
        "completed_by",
        "completed_count",
        "frontier",
        "running",
        "agent_status",
        "agent_task",
        "agent_speed",
        "capacity",
        "active_count",
        "peak_running",
        "now",
        "step_count",
        "budget_used",
        "terminated",
        "truncated",
        "synthesized",
        "waits_in_patience",
        "public_rules",
        "_views",
        "observed",
        "changed_subtasks",
        "changed_agents",
        "log",
        "_rows",
        "_ids",
        "_names",
        "_costs",
        "_work",
        "_trace",
        "invalid_count",
        "_event_cap",
        "rewards",
        "last_reward",
        "_breakdown",
        "_channels",
        "last_errors",
        "facts",
        "_heap",
        "_sequence",
        "deadlines",
        "deadline_cursor",
        "next_deadline",
        "_patience_index",
    )

    def __init__(
        self,
        compiled: CompiledTask,
        seed: int | None = None,
        reward_model: RewardModel | None = None,
    ) -> None:
        task = compiled.spec
        self.compiled = compiled
        self.task = task
        self.seed = task.canonical_seed if seed is None else seed
        self.seed_key = episode_key(task.task_id, self.seed)
        # Sealed: the outcomes are keyed by a secret as well as the seed (see seal()).
        self.sealed = False
        # What decides each attempt, per (subtask, agent) index pair (see ``outcomes``).
        self._outcomes: Mapping[tuple[int, int], AttemptOutcomes] = compiled.outcomes
        # The task's outcomes by s * (number of agents) + a, what the step reads while
        # they are this episode's (None once others replaced them).
        self._outcome_table: tuple[PairOutcomes | None, ...] | None = compiled.outcome_table
        # The limits as plain numbers (no limit: never reached).
        self._time_cap = task.time_limit if task.time_limit is not None else _NEVER
        self._step_cap = task.step_limit if task.step_limit is not None else _NEVER
        self.retry_cap = task.retry_cap
        self.dag = compiled.dag
        self.reward_model: RewardModel = reward_model or compiled.reward_model
        self._count_busy_time = getattr(self.reward_model, "reads_busy_time", True)
        self.subtasks = task.subtasks
        self.agents = task.agents
        self.agent_index = compiled.agent_index
        self.tick_model = task.time_model is TimeModel.TICK
        n, m = len(task.subtasks), len(task.agents)

        self.unmet = list(compiled.initial_unmet)
        self.status = list(compiled.initial_status)
        # Each subtask's attempt, ATTEMPT_FIELDS ints a subtask in one list (s * ATTEMPT_FIELDS
        # + the field): its agent while running (else -1), when it started, when it ends,
        # how it ends (states.ENDS_*), and the count of its starts. A start and a finish touch one
        # record instead of five lists, and a batch of 256 episodes waits less on memory
        # (README, Speed). A completion entry carries the count of its start, so an entry
        # left by an aborted or dropped attempt is recognised as stale. Read from outside
        # through subtask_agent, started_at, finish_at, attempts (copies, made at each read).
        self._attempt = list(compiled.initial_attempts)
        # The failure records (failure_count, failures, failed_since_step, failed_set and
        # known_permanent) are the task's shared empty ones until the first failure, when the
        # episode makes its own (see _own_failure_records): an episode makes none before.
        self.failure_count = compiled.no_failure_counts
        # Starts per (subtask, agent), at s * (number of agents) + a.
        self.pair_attempts = [0] * (n * m)
        # Per subtask, its failures in order; lists are replaced, never changed (see _add_failure).
        self.failures: list[list[dict[str, Any]]] = compiled.no_failures
        self.failed_since_step = compiled.never_failed
        self.failed_set: set[int] = _NO_FAILED
        self.known_permanent: set[tuple[int, int]] = _NO_PERMANENT
        self.completed_at: list[int | None] = [None] * n
        self.completed_by = [-1] * n
        self.completed_count = 0
        # The frontier: subtasks ready, running or failed, in order. A subtask joins
        # when its last dependency completes and leaves when it completes itself.
        self.frontier = list(compiled.initial_frontier)

        # Running subtask -> its agent (the same facts as status and agent_task,
        # kept for the loops that only care about work in progress).
        self.running: dict[int, int] = {}
        self.agent_status = [IDLE] * m
        self.agent_task = [-1] * m
        # The task's declared speeds (shared) until an event changes one (see _scheduled).
        self.agent_speed = compiled.declared_speeds

        self.capacity = task.capacity
        self.active_count = 0
        self.peak_running = 0  # the most subtasks ever running at once
        self.now = 0
        self.step_count = 0
        self.budget_used = 0.0
        self.terminated = False
        self.truncated = False
        self.synthesized = False
        self.waits_in_patience = 0

        self.public_rules = compiled.rules
        # The observation's views of this episode (observation.py), made when first read (see
        # views): an episode that is never observed (the vector env's lean forms) makes none of
        # their objects, nor marks what its steps change. Once they are made, a step marks in
        # these two sets the subtasks and agents whose views it changed (until then they are
        # the shared _UNWATCHED, never changed).
        self._views: Views | None = None
        self.changed_subtasks: set[int] = _UNWATCHED
        self.changed_agents: set[int] = _UNWATCHED
        # What a family's observation keeps from one step to the next (derived from the
        # state above; the step never reads it).
        self.observed: dict[str, Any] = {}
        # Frequent events (delegated, completed, waited) append their rows directly,
        # without the call of log.append; eventlog.FIELDS gives each kind's order.
        self.log = EventLog()
        self._rows = self.log.rows
        # Names and numbers of the task read at every start and finish, by index.
        self._ids = compiled.dag.ids
        self._names = compiled.agent_names
        self._costs = compiled.agent_costs
        self._work = compiled.work
        # Per step: (step, t, action, error codes); the messages are in the log.
        # The trace, three entries a step in one list (no object made a step, none for the
        # collector to visit): when the step began, its action (an Action, or the raw input
        # of one that could not be parsed) and its error codes (a tuple of ErrorCodes).
        # Step i + 1 is at 3 * i.
        self._trace: list[Any] = []
        # Every error of every step, counted even when the log keeps only the first few of a step.
        self.invalid_count = 0
        self._event_cap = MAX_EVENTS_PER_EPISODE
        self.rewards: list[float] = []
        self.last_reward = 0.0
        # The latest step's breakdown, or None until read (see last_breakdown); the scenario
        # table's channel values, from which it is then made.
        self._breakdown: dict[str, float] | None = {}
        self._channels: ChannelValues = NO_CHANNELS
        self.last_errors: list[dict[str, str]] = _NO_ERRORS_SHOWN

        # What the latest step did (before the first, what happened at time 0): one
        # object, cleared at the start of every step.
        self.facts = StepFacts()
        # The clock's queue: a heap of (time, priority, sequence, which, token), the
        # sequence breaking ties in the order of scheduling (so the last two are never
        # compared). The task's events first: which is an event's index in task.events
        # (token 0); each start adds its completion: which is the subtask, token its
        # attempt number (see _start). Flat tuples of ints: one object an entry, which
        # the cyclic collector stops tracking at its first visit.
        self._heap: list[tuple[int, int, int, int, int]] = [
            (self._event_time(event), _SCHEDULED, sequence, sequence - 1, 0)
            for sequence, event in enumerate(task.events, 1)
        ]
        heapq.heapify(self._heap)
        self._sequence = len(self._heap)
        self.deadlines = compiled.deadlines
        # The first deadline not yet checked, and its time (never, when none is left).
        self.deadline_cursor = 0
        self.next_deadline = self.deadlines[0][0] if self.deadlines else _NEVER
        self._patience_index = compiled.patience_index
        if self._heap and self._heap[0][0] <= 0:
            # Events scheduled at the very start (tick 1) happen before the first action.
            self._resolve_until(self.now, self.facts)

    def seal(self, secret: bytes) -> None:
        """Key this episode's outcome rolls by ``secret`` as well as its seed
        (outcomes.episode_key); before the first step only. The secret itself
        is not kept."""
        if self.step_count:
            raise RuntimeError("an episode is sealed before its first step")
        self.seed_key = episode_key(self.task.task_id, self.seed, secret)
        self.sealed = True

    @property
    def outcomes(self) -> Mapping[tuple[int, int], AttemptOutcomes]:
        """What decides each attempt, keyed by (subtask, agent) index pairs: the task's own
        outcomes, unless set to others (a planner's forced or drawn outcomes)."""
        return self._outcomes

    @outcomes.setter
    def outcomes(self, outcomes: Mapping[tuple[int, int], AttemptOutcomes]) -> None:
        self._outcomes = outcomes
        self._outcome_table = None

    def use_reward_model(self, model: RewardModel) -> None:
        """Reward this episode's steps with ``model`` (a reward mode chosen at reset)."""
        self.reward_model = model
        self._count_busy_time = getattr(model, "reads_busy_time", True)
        self._breakdown = {}  # as at reset

    # ------------------------------------------------------------------ queries

    # The attempt records by field, one value per subtask (copies: new lists at every read).
    @property
    def subtask_agent(self) -> list[int]:
        """Per subtask, the agent of its running attempt (-1 when it is not running)."""
        return self._attempt[AGENT_OF::ATTEMPT_FIELDS]

    @property
    def started_at(self) -> list[int]:
        """Per subtask, when its latest attempt started (0 before its first)."""
        return self._attempt[STARTED_AT::ATTEMPT_FIELDS]

    @property
    def finish_at(self) -> list[int]:
        """Per subtask, when its latest attempt ends (0 before its first)."""
        return self._attempt[FINISH_AT::ATTEMPT_FIELDS]

    @property
    def attempts(self) -> list[int]:
        """Per subtask, how many times it started."""
        return self._attempt[STARTS::ATTEMPT_FIELDS]

    def agent_of(self, s: int) -> int:
        """The agent of subtask ``s``'s running attempt (-1 when it is not running)."""
        return self._attempt[s * ATTEMPT_FIELDS + AGENT_OF]

    def attempts_of(self, s: int) -> int:
        """How many times subtask ``s`` started."""
        return self._attempt[s * ATTEMPT_FIELDS + STARTS]

    def finish_of(self, s: int) -> int:
        """When subtask ``s``'s latest attempt ends."""
        return self._attempt[s * ATTEMPT_FIELDS + FINISH_AT]

    @property
    def views(self) -> Views:
        """The observation's views of this episode, made at the first read. Made after steps, they
        are what views made at the start would be if read only now: the initial views, with every
        subtask that left its initial status and every agent marked changed (a subtask's view
        changes only with its status, and never returns to its initial one; an agent's is
        rebuilt from its state, or is the initial view again when idle at its declared speed)."""
        views = self._views
        if views is None:
            status, initial = self.status, self.compiled.initial_status
            self.changed_subtasks = {s for s in range(len(status)) if status[s] != initial[s]}
            self.changed_agents = set(range(len(self.agents)))
            views = self._views = Views(self.compiled.views, self.seed, self.changed_subtasks, self.changed_agents)
        return views

    @property
    def trace(self) -> list[dict[str, Any]]:
        """The actions taken, in order, with the error codes of invalid ones."""
        return self.trace_since(0)

    @property
    def trace_length(self) -> int:
        return len(self._trace) // 3

    def trace_since(self, start: int) -> list[dict[str, Any]]:
        """The entries of :attr:`trace` from index ``start`` on (new dicts at every read)."""
        trace = self._trace
        count = len(trace) // 3
        if start < 0:  # from the end, as a slice counts
            start = max(0, count + start)
        entries: list[dict[str, Any]] = []
        for i in range(start, count):
            action = trace[3 * i + 1]
            entries.append(
                {
                    "step": i + 1,
                    "t": trace[3 * i],
                    "action": action.to_dict() if isinstance(action, Action) else action,
                    "errors": [code.value for code in trace[3 * i + 2]],
                }
            )
        return entries

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def has_pending_events(self) -> bool:
        """Whether anything is still scheduled (stale entries of aborted or
        dropped attempts do not count)."""
        self._drop_stale_heads()
        return bool(self._heap)

    def _drop_stale_heads(self) -> None:
        """Pop completion entries whose attempt was aborted or dropped, so that
        the next event is a real one."""
        heap = self._heap
        while heap:
            _, priority, _, s, token = heap[0]
            if priority != _COMPLETION or self._is_current(s, token):
                return
            _heappop(heap)

    def _is_current(self, s: int, token: int) -> bool:
        """Whether a completion entry of subtask ``s`` made at its start number ``token`` is its
        running attempt's (else it is stale: that attempt was aborted or dropped)."""
        return token == self._attempt[s * ATTEMPT_FIELDS + STARTS] and self.status[s] == RUNNING

    def pick_agent(self, subtask: int, taken: set[int] | frozenset[int] = frozenset()) -> int:
        """The agent an unnamed assignment gets: idle, capable, not known to fail
        this subtask permanently; cheapest, then fastest, then first declared."""
        best = -1
        best_cost = 0.0
        best_speed = 0
        status, speeds, costs = self.agent_status, self.agent_speed, self._costs
        known_permanent = self.known_permanent
        for a in self.compiled.capable[subtask]:  # in declaration order: the first of equals stays
            if status[a] != IDLE or a in taken or (known_permanent and (subtask, a) in known_permanent):
                continue
            speed = speeds[a]
            cost = costs[a] * speed
            if best < 0 or cost < best_cost or (cost == best_cost and speed < best_speed):
                best, best_cost, best_speed = a, cost, speed
        return best

    def pair_attempt_count(self, s: int, a: int) -> int:
        """How many times agent ``a`` has started subtask ``s``."""
        return self.pair_attempts[s * len(self.agents) + a]

    # --------------------------------------------------------------------- step

    def step(self, action: Any) -> None:
        """Apply one action (an :class:`Action`, a mapping, or anything else, which is an
        invalid action) and advance the world; never raises on a bad action.

        What the step did is left in :attr:`facts` (read by the reward model).
        """
        facts = self.facts
        facts.clear()
        if self.terminated or self.truncated:
            self.last_errors = [{"code": ErrorCode.EPISODE_OVER.value, "message": "the episode is over; call reset"}]
            self.last_reward, self._breakdown = 0.0, {}
            return
        self.step_count += 1
        errors: list[tuple[ErrorCode, str]]
        parsed: Action | None
        try:
            parsed = parse_action(action)
        except ActionError as exc:
            parsed, errors = None, [(exc.code, exc.message)]
        else:
            kind = parsed.action_type
            if kind is DELEGATE or kind is RETRY:
                errors = self._apply_single(parsed.subtask_id or "", parsed.agent_name, kind, facts)
            elif kind is WAIT:
                errors = self._apply_wait(facts)
            elif kind is DISPATCH:
                most = min(self.capacity, len(self.agents))
                if len(parsed.assignments) > most:
                    # More starts than agents or slots: it cannot start, and whatever it names
                    # beyond one too many is kept nowhere (the trace keeps what was judged).
                    parsed = replace(parsed, assignments=parsed.assignments[: most + 1])
                    errors = [(ErrorCode.CAPACITY_EXCEEDED, _too_many_starts(most, self.capacity))]
                else:
                    errors = self._apply_dispatch(parsed.assignments, facts)
            elif kind is SYNTHESIZE:
                errors = self._apply_synthesize(facts)
            else:
                errors = self._apply_abort(parsed.subtask_id or "")
                facts.aborted = not errors
        if errors:
            self.last_errors = [{"code": code.value, "message": message} for code, message in errors]
            self._record_invalid(parsed, action, errors, facts)
            codes: tuple[ErrorCode, ...] = tuple([code for code, _ in errors])
        else:
            if self.last_errors:  # a shared empty list: readers copy it (see observation.py)
                self.last_errors = _NO_ERRORS_SHOWN
            codes = ()
        start = self.now
        trace = self._trace
        trace.append(start)
        trace.append(parsed if parsed is not None else _raw_action(action))
        trace.append(codes)
        # Advance the clock: one unit in the tick model; to the next event on a wait in the event model.
        facts.running_after_action = self.active_count
        if self.failed_set and self.active_count < self.capacity:
            facts.neglected = self._neglected()
        if self.active_count > self.peak_running:  # starts happen only here, in the action
            facts.previous_peak = self.peak_running
            self.peak_running = self.active_count
        if self.tick_model:
            self._resolve_until(start + 1, facts)
        elif parsed is not None and parsed.action_type is WAIT and not errors:
            # To the next event while work runs; with nothing running, one time unit, so
            # that how far a wait goes never tells of an event before it happens.
            target = self._heap[0][0] if self.active_count and self.has_pending_events else start + 1
            limit = self.task.time_limit
            if limit is not None and target > limit:
                target = limit
            self._resolve_until(target, facts)
        facts.elapsed = self.now - start
        if self.next_deadline < self.now:
            self._check_deadlines(facts)
        if (
            self.terminated
            or self.now >= self._time_cap
            or self.step_count >= self._step_cap
            or len(self._rows) >= self._event_cap
            or (not self.tick_model and self.completed_count == len(self.subtasks))
        ):
            self._end(facts)
        model = self.reward_model
        if type(model) is ScenarioRewards:
            # The scenario table's sum, without its breakdown: that is made when read, from
            # the channel values kept (see last_breakdown). A dict made and freed at every
            # step cost more than the rest of the reward. The compiled build calls it
            # directly, and keeps the values unboxed.
            values = self._channels = model.channel_values(self, facts)
            # Added in order from 0.0, as sum adds the values of the breakdown.
            d, c, p, r, w, n, m, f, i = values
            reward = 0.0 + d + c + p + r + w + n + m + f + i
            self._breakdown = None
        else:
            breakdown = model.step_reward(self, facts)
            reward = sum(breakdown.values())
            self._breakdown = breakdown
        self.rewards.append(reward)
        self.last_reward = reward

    @property
    def last_breakdown(self) -> dict[str, float]:
        """The latest step's reward by channel (empty before the first step)."""
        breakdown = self._breakdown
        if breakdown is None:
            # Only the scenario table's step leaves it unmade; the next step sets it anew.
            breakdown = self._breakdown = channel_breakdown(self._channels)
        return breakdown

    # ------------------------------------------------------------ apply actions

    def _apply_wait(self, facts: StepFacts) -> list[tuple[ErrorCode, str]]:
        # Always accepted while the episode runs: whether anything is scheduled is hidden.
        patience = (
            self._patience_index >= 0
            and self.status[self._patience_index] == COMPLETED
            and self.waits_in_patience < self.task.patience.waits  # type: ignore[union-attr]
        )
        if patience:
            self.waits_in_patience += 1
            facts.patience_wait = True
        facts.waited = True
        facts.useful_wait = self.active_count > 0 or patience
        self._rows.append(("waited", self.now, self.step_count, self.active_count))
        return _NO_ERRORS

    def _apply_synthesize(self, facts: StepFacts) -> list[tuple[ErrorCode, str]]:
        remaining = len(self.subtasks) - self.completed_count
        if remaining:
            return [
                (
                    ErrorCode.WORK_REMAINING,
                    f"{remaining} subtask(s) are not completed; synthesize ends the workflow "
                    "only when every subtask is completed",
                )
            ]
        self.synthesized = True
        self.terminated = True
        facts.synthesized = True
        self.log.append("synthesized", self.now, self.step_count)
        return _NO_ERRORS

    def _apply_abort(self, subtask_id: str) -> list[tuple[ErrorCode, str]]:
        s = self.dag.index.get(subtask_id, -1)
        if s < 0:
            return [(ErrorCode.UNKNOWN_SUBTASK, f"no subtask named {subtask_id!r}")]
        if self.status[s] != RUNNING:
            return [
                (
                    ErrorCode.NOT_RUNNING,
                    f"subtask {subtask_id!r} is {SUBTASK_STATUS[self.status[s]]}; only a running "
                    "subtask can be aborted",
                )
            ]
        a = self.agent_of(s)
        cost = self._stop_work(s, a, self.now)
        self._own_failure_records()
        self.status[s] = FAILED
        self.failed_set.add(s)
        self.failed_since_step[s] = self.step_count
        self._add_failure(s, self.agents[a].name, "aborted", "abort")
        self.log.append("aborted", self.now, self.step_count, subtask_id, self.agents[a].name, cost)
        return _NO_ERRORS

    def _apply_single(
        self, subtask_id: str, agent_name: str | None, kind: ActionType, facts: StepFacts
    ) -> list[tuple[ErrorCode, str]]:
        """``delegate`` or ``retry``: a batch of one, without the batch's bookkeeping."""
        s = self.dag.index.get(subtask_id, -1)
        if s < 0:
            return [(ErrorCode.UNKNOWN_SUBTASK, f"no subtask named {subtask_id!r}")]
        a, error = self._check_start(s, subtask_id, agent_name, kind, _NONE_TAKEN, 0)
        if error is not None:
            return [error]
        if self.active_count >= self.capacity:
            return [self._capacity_error(1)]
        self._start(s, a, self.status[s] == FAILED, facts)
        return _NO_ERRORS

    def _apply_dispatch(
        self, assignments: Sequence[tuple[str, str | None]], facts: StepFacts
    ) -> list[tuple[ErrorCode, str]]:
        """Validate a batch against the state as it would be, then start all or none."""
        if not assignments:
            return [(ErrorCode.EMPTY_DISPATCH, "dispatch needs at least one assignment or task id")]
        errors: list[tuple[ErrorCode, str]] = []
        planned: list[tuple[int, int, bool]] = []
        taken_agents: set[int] = set()
        seen_subtasks: set[int] = set()
        index = self.dag.index
        for subtask_id, agent_name in assignments:
            s = index.get(subtask_id, -1)
            if s < 0:
                errors.append((ErrorCode.UNKNOWN_SUBTASK, f"no subtask named {subtask_id!r}"))
                continue
            if s in seen_subtasks:
                errors.append((ErrorCode.DUPLICATE_SUBTASK, f"subtask {subtask_id!r} appears twice"))
                continue
            seen_subtasks.add(s)
            a, error = self._check_start(s, subtask_id, agent_name, DISPATCH, taken_agents, len(planned))
            if error is not None:
                errors.append(error)
                continue
            taken_agents.add(a)
            planned.append((s, a, self.status[s] == FAILED))
        if not errors and self.active_count + len(planned) > self.capacity:
            errors.append(self._capacity_error(len(planned)))
        if errors:
            return errors
        for s, a, is_retry in planned:
            self._start(s, a, is_retry, facts)
        return _NO_ERRORS

    def _check_start(
        self,
        s: int,
        subtask_id: str,
        agent_name: str | None,
        kind: ActionType,
        taken_agents: set[int] | frozenset[int],
        planned: int,
    ) -> tuple[int, tuple[ErrorCode, str] | None]:
        """Whether subtask ``s`` can start now (``planned`` starts and ``taken_agents``
        ahead of it in the same batch), and on which agent: (agent, None) or (-1, error)."""
        st = self.status[s]
        if not (st == READY and kind is not RETRY) and not (st == FAILED and kind is not DELEGATE):
            return -1, self._status_error(s, kind)
        if agent_name is None:
            a = self.pick_agent(s, taken_agents)
            if a < 0:
                return -1, self._no_agent_error(subtask_id, planned)
            return a, None
        a = self.agent_index.get(agent_name, -1)
        if (
            a < 0
            or self.agent_status[a] != IDLE
            or a in taken_agents
            or (self.subtasks[s].type not in self.agents[a].capabilities)
        ):
            return -1, self._agent_error(s, a, agent_name, taken_agents)
        return a, None

    def _capacity_error(self, starts: int) -> tuple[ErrorCode, str]:
        return (
            ErrorCode.CAPACITY_EXCEEDED,
            f"starting {starts} subtask(s) would make {self.active_count + starts} "
            f"run at once; capacity is {self.capacity}",
        )

    def _no_agent_error(self, subtask_id: str, planned: int) -> tuple[ErrorCode, str]:
        # When the batch so far already fills every free slot, more workers
        # would not be usable anyway: the batch is too large, not the pool too small.
        if self.active_count + planned >= self.capacity:
            return (
                ErrorCode.CAPACITY_EXCEEDED,
                f"subtask {subtask_id!r} is one more than the {max(0, self.capacity - self.active_count)} free slot(s)",
            )
        return ErrorCode.NO_FREE_AGENT, f"no idle agent can take subtask {subtask_id!r} now"

    def _status_error(self, s: int, kind: ActionType) -> tuple[ErrorCode, str] | None:
        status = self.status[s]
        name = self.subtasks[s].id
        if status == COMPLETED:
            return ErrorCode.ALREADY_COMPLETED, f"subtask {name!r} is already completed"
        if status == RUNNING:
            return ErrorCode.ALREADY_RUNNING, f"subtask {name!r} is already in progress"
        if kind is RETRY and status != FAILED:
            return ErrorCode.NOT_FAILED, f"subtask {name!r} is {SUBTASK_STATUS[status]}; retry is for failed subtasks"
        if kind is DELEGATE and status == FAILED:
            return ErrorCode.IS_FAILED, f"subtask {name!r} has failed; use retry to run it again"
        if status == PENDING:
            waiting = [self.subtasks[p].id for p in self.dag.predecessors[s] if self.status[p] != COMPLETED]
            return ErrorCode.NOT_READY, f"subtask {name!r} waits for: {', '.join(waiting)}"
        return None

    def _agent_error(
        self, s: int, a: int, agent_name: str, taken: set[int] | frozenset[int]
    ) -> tuple[ErrorCode, str] | None:
        if a < 0:
            return ErrorCode.UNKNOWN_AGENT, f"no agent named {agent_name!r}"
        if self.agent_status[a] == OFFLINE:
            return ErrorCode.AGENT_OFFLINE, f"agent {agent_name!r} is offline"
        if self.agent_status[a] == WORKING:
            current = self.subtasks[self.agent_task[a]].id
            return ErrorCode.AGENT_BUSY, f"agent {agent_name!r} is working on {current!r}"
        if a in taken:
            return ErrorCode.DUPLICATE_AGENT, f"agent {agent_name!r} is assigned twice in one dispatch"
        wanted = self.subtasks[s].type
        if wanted not in self.agents[a].capabilities:
            return (
                ErrorCode.CAPABILITY_MISMATCH,
                f"agent {agent_name!r} cannot do {wanted!r} work (subtask {self.subtasks[s].id!r})",
            )
        return None

    def _start(self, s: int, a: int, is_retry: bool, facts: StepFacts) -> None:
        now = self.now
        pair_attempts = self.pair_attempts
        slot = s * len(self.agents) + a
        attempt = pair_attempts[slot]
        pair_attempts[slot] = attempt + 1
        record = self._attempt
        r = s * ATTEMPT_FIELDS
        attempts = record[r + STARTS] + 1
        record[r + STARTS] = attempts
        if attempts == 1:
            facts.first_starts += 1
        elif self.known_permanent and (s, a) in self.known_permanent:
            facts.repeated_permanent += 1
        table = self._outcome_table
        own = table[slot] if table is not None else None
        if own is not None:  # the task's own (the compiled build then calls it directly)
            failure = own.decide(self.seed_key, attempt, self.failure_count[s], self.retry_cap)
        else:
            failure = self._outcomes[(s, a)].decide(self.seed_key, attempt, self.failure_count[s], self.retry_cap)
        if failure is None:
            record[r + ENDS] = ENDS_COMPLETED
        else:
            record[r + ENDS] = ENDS_PERMANENT if failure == PERMANENT else ENDS_TRANSIENT
        duration = self.agent_speed[a] * self._work[s]
        if duration < 1:
            duration = 1
        if is_retry:
            self._own_failure_records()
            self.failed_set.discard(s)
            self.failed_since_step[s] = -1
        self.status[s] = RUNNING
        record[r + AGENT_OF] = a
        record[r + STARTED_AT] = now
        record[r + FINISH_AT] = now + duration
        self.agent_status[a] = WORKING
        self.agent_task[a] = s
        self.running[s] = a
        self.active_count += 1
        if self._views is not None:
            self.changed_subtasks.add(s)
            self.changed_agents.add(a)
        self._sequence += 1
        _heappush(self._heap, (now + duration, _COMPLETION, self._sequence, s, attempts))
        facts.started += 1
        self._rows.append(
            ("delegated", now, self.step_count, self._ids[s], self._names[a], attempts, is_retry, duration)
        )

    def _record_invalid(
        self,
        parsed: Action | None,
        raw: Any,
        errors: list[tuple[ErrorCode, str]],
        facts: StepFacts,
    ) -> None:
        """Log a step's errors: the first :data:`MAX_LOGGED_ERRORS_PER_STEP`, the action's
        label (at most :data:`MAX_LABEL_CHARS` characters) on the first row only.

        The reward still sees every error (``facts.error_codes``) and
        :attr:`invalid_count` counts them all, so a step with many errors costs
        what it did, while its log stays a few rows long.
        """
        label: str | None = parsed.label() if parsed is not None else str(_raw_action(raw))
        if label is not None and len(label) > MAX_LABEL_CHARS:
            label = label[:MAX_LABEL_CHARS]
        facts.error_codes += tuple([code.value for code, _ in errors])
        self.invalid_count += len(errors)
        rows = self.log.rows
        now, step = self.now, self.step_count
        for code, message in errors[:MAX_LOGGED_ERRORS_PER_STEP]:
            rows.append(("invalid_action", now, step, code.value, message, label))
            label = None

    # ------------------------------------------------------------------- clock

    def _resolve_until(self, target: int, facts: StepFacts) -> None:
        """Move the clock to ``target``, resolving every event due by then in order."""
        heap = self._heap
        count_busy = self._count_busy_time
        while heap and heap[0][0] <= target:
            time, priority, _, which, token = _heappop(heap)
            if count_busy:
                facts.busy_time += self.active_count * (time - self.now)
            self.now = time
            if priority == _COMPLETION:  # which: the subtask; token: its attempt
                if self._is_current(which, token):
                    self._finish(which, facts)
                # else a stale entry: the attempt was aborted or dropped
            else:  # which: the event's index in task.events
                self._scheduled(self.task.events[which], facts)
        if count_busy:
            facts.busy_time += self.active_count * (target - self.now)
        self.now = target

    def _finish(self, s: int, facts: StepFacts) -> None:
        """The running attempt at ``s`` reaches its end: it completes or fails."""
        r = s * ATTEMPT_FIELDS
        a = self._attempt[r + AGENT_OF]
        now = self.now
        cost = self._stop_work(s, a, now)
        ends = self._attempt[r + ENDS]
        if ends == ENDS_COMPLETED:
            status = self.status
            status[s] = COMPLETED
            self.completed_at[s] = now
            self.completed_by[s] = a
            self.completed_count += 1
            self.frontier.remove(s)
            facts.completed = add_subtask(facts.completed, s)
            if self.failure_count[s]:
                facts.recovered = add_subtask(facts.recovered, s)
            unmet = self.unmet
            for succ in self.dag.successors[s]:
                unmet[succ] -= 1
                if unmet[succ] == 0 and status[succ] == PENDING:
                    status[succ] = READY
                    _insort(self.frontier, succ)
                    if self._views is not None:
                        self.changed_subtasks.add(succ)
            self._rows.append(("completed", now, self.step_count, self._ids[s], self._names[a], cost))
        else:
            permanent = ends == ENDS_PERMANENT
            # _fail makes the episode's own failure records.
            self._fail(s, a, PERMANENT if permanent else TRANSIENT, "outcome", cost, facts)
            if permanent:
                self.known_permanent.add((s, a))

    def _own_failure_records(self) -> None:
        """Replace the task's shared empty failure records by this episode's own, at its first
        failure (they are read, never changed, until then)."""
        if self.failed_set is _NO_FAILED:
            self.failure_count = list(self.failure_count)
            self.failures = list(self.failures)
            self.failed_since_step = list(self.failed_since_step)
            self.failed_set = set()
            self.known_permanent = set()

    def _fail(self, s: int, a: int, kind: str, cause: str, cost: float, facts: StepFacts) -> None:
        self._own_failure_records()
        self.status[s] = FAILED
        self.failed_set.add(s)
        self.failed_since_step[s] = self.step_count
        self.failure_count[s] += 1
        name = self.agents[a].name
        self._add_failure(s, name, kind, cause)
        facts.failed = add_subtask(facts.failed, s)
        self.log.append("failed", self.now, self.step_count, self.subtasks[s].id, name, kind, cause, cost)

    def _add_failure(self, s: int, agent_name: str, kind: str, cause: str) -> None:
        # A new list rather than an append: observations share these lists with no copy.
        self.failures[s] = [*self.failures[s], {"agent": agent_name, "kind": kind, "cause": cause, "at": self.now}]

    def _stop_work(self, s: int, a: int, at: int) -> float:
        """Free the agent and the slot, and charge the agent's cost for the time worked."""
        r = s * ATTEMPT_FIELDS
        record = self._attempt
        cost = self._costs[a] * (at - record[r + STARTED_AT])
        self.budget_used += cost
        if self._views is not None:
            self.changed_subtasks.add(s)
            self.changed_agents.add(a)
        self.agent_status[a] = IDLE if self.agent_status[a] == WORKING else self.agent_status[a]
        self.agent_task[a] = -1
        record[r + AGENT_OF] = -1
        del self.running[s]
        self.active_count -= 1
        return cost

    def _scheduled(self, event: ScheduledEvent, facts: StepFacts) -> None:
        if event.kind is EventKind.CAPACITY:
            self.capacity = int(event.value or 1)
            self.log.append("capacity_changed", self.now, self.step_count, self.capacity)
            return
        a = self.agent_index[event.agent or ""]
        if self._views is not None:
            self.changed_agents.add(a)
        if event.kind is EventKind.OFFLINE:
            running = self.agent_task[a]
            if running >= 0:
                cost = self._stop_work(running, a, self.now)
                self._fail(running, a, "transient", "dropout", cost, facts)
            self.agent_status[a] = OFFLINE
            self.log.append("agent_offline", self.now, self.step_count, event.agent)
        elif event.kind is EventKind.ONLINE:
            if self.agent_status[a] == OFFLINE:
                self.agent_status[a] = IDLE
            self.log.append("agent_online", self.now, self.step_count, event.agent)
        elif event.kind is EventKind.SPEED:
            if self.agent_speed is self.compiled.declared_speeds:
                self.agent_speed = list(self.agent_speed)
            self.agent_speed[a] = int(event.value or 1)
            self.log.append("speed_changed", self.now, self.step_count, event.agent, self.agent_speed[a])

    # --------------------------------------------------------------- end rules

    def _check_deadlines(self, facts: StepFacts) -> None:
        deadlines = self.deadlines
        while self.next_deadline < self.now:
            deadline, s = deadlines[self.deadline_cursor]
            self.deadline_cursor += 1
            self.next_deadline = deadlines[self.deadline_cursor][0] if self.deadline_cursor < len(deadlines) else _NEVER
            # Late completions in this very step count as missed too.
            if not deadline_met(self.completed_at[s], deadline):
                facts.missed_deadlines = add_subtask(facts.missed_deadlines, s)
                self.log.append("deadline_missed", self.now, self.step_count, self.subtasks[s].id, deadline)

    def _neglected(self) -> int:
        """Failed subtasks left alone by this step's action although it could have retried
        them: failed two or more steps ago, a slot free and an idle capable agent not known
        to fail them permanently. A failure nobody can take up yet (its able agents busy,
        offline or none left) costs nothing, so waiting for the right agent never pays less
        than a retry that cannot succeed."""
        step = self.step_count
        since = self.failed_since_step
        return sum(1 for s in self.failed_set if step - since[s] >= 2 and self.pick_agent(s) >= 0)

    def _end(self, facts: StepFacts) -> None:
        """The episode ends in this step: synthesized, or (event model) every subtask
        completed, or else out of time or steps."""
        if not self.terminated:
            if not self.tick_model and self.completed_count == len(self.subtasks):
                self.terminated = True
            else:
                self.truncated = True
        facts.ended = True
        reason = "terminated" if self.terminated else "truncated"
        self.log.append("episode_end", self.now, self.step_count, reason, self.completed_count, len(self.subtasks))

    # ----------------------------------------------------------------- helpers

    def _event_time(self, event: ScheduledEvent) -> int:
        # "At tick T" means at the start of tick T, which is time T - 1.
        return max(0, event.at - 1) if self.tick_model else event.at


def _too_many_starts(most: int, capacity: int) -> str:
    return (
        f"a dispatch starts at most {most} subtask(s) (one per agent, at most the capacity of {capacity} at once); "
        "this one names more"
    )


def _raw_action(action: Any) -> Any:
    if isinstance(action, Mapping):
        return {
            str(k)[:64]: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)[:200])
            for k, v in list(action.items())[:16]
        }
    return str(action)[:200]
