"""The tick time model as a search problem with hindsight.

:class:`TickProblem` holds everything about one (task, seed) that does not
change during an episode: timelines of agent speed, availability and capacity
(from the scheduled events), the seeded outcome of every attempt, and tables
for the upper bound. :class:`TickNode` is the state of an episode at a
decision point, with just enough history to grade it. Both mirror
:class:`~workflow_orchestrator.server.core.episode.Episode` for tasks whose
``time_model`` is ``tick``; every plan found here is replayed through the real
episode, and the replay's grade is the one reported.

Semantics mirrored (see ``episode.py``): every action takes one tick; an
attempt started at time ``t`` with speed ``v`` on work ``w`` ends at
``t + max(1, v * w)``; completions at a time are resolved before the events
scheduled at that time; an agent that goes offline while working fails its
subtask (transiently); an abort charges the time worked and leaves the subtask
failed without a failure record; a synthesis needs every subtask completed.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

from ..server.core.compiled import CompiledTask
from ..server.core.episode import Episode
from ..server.core.families import new_episode
from ..server.core.grading import GATED_DIMENSIONS, hindsight
from ..server.core.model import EventKind, TimeModel
from ..server.core.outcomes import PERMANENT, decide_attempt, episode_key
from ..server.core.states import COMPLETED, FAILED, PENDING, READY, RUNNING

# How a running attempt will end, known with hindsight at its start.
SUCCEEDS, FAILS_TRANSIENT, FAILS_PERMANENT, DROPS_OUT = range(4)

NEVER = 1 << 30  # a time that never comes


@dataclass(slots=True)
class Weights:
    """The task's grade weights as plain floats (0 for dimensions not graded)."""

    completion: float
    recovery: float
    recovery_speed: float
    error_classification: float
    parallelism: float
    cost_efficiency: float
    budget: float
    deadlines: float
    time_efficiency: float
    conflict_handling: float
    patience: float
    pillar_balance: float
    valid_actions: float

    @classmethod
    def of(cls, weights: dict[str, float]) -> Weights:
        return cls(**{name: float(weights.get(name, 0.0)) for name in cls.__slots__})  # type: ignore[attr-defined]


class TickProblem:
    """One task and seed in the tick model, prepared for search."""

    def __init__(self, compiled: CompiledTask, seed: int) -> None:
        spec = compiled.spec
        if spec.time_model is not TimeModel.TICK:
            raise ValueError(f"task {spec.task_id!r} uses the {spec.time_model.value} time model, not tick")
        if spec.time_limit is None:
            raise ValueError(f"task {spec.task_id!r} has no time limit; the tick search needs one")
        self.compiled = compiled
        self.spec = spec
        self.seed = seed
        self.seed_key = episode_key(spec.task_id, seed)
        dag = compiled.dag
        n, m = len(spec.subtasks), len(spec.agents)
        self.n, self.m = n, m
        self.limit = spec.time_limit
        self.ids = dag.ids
        self.agent_names = tuple(a.name for a in spec.agents)
        self.preds = dag.predecessors
        self.succs = dag.successors
        self.topo = dag.topological_order
        self.work = tuple(s.work for s in spec.subtasks)
        self.agent_cost = tuple(a.cost for a in spec.agents)
        self.capable = compiled.capable
        self.able = tuple(
            tuple(a for a in self.capable[s] if sub.type not in spec.agents[a].never_succeeds)
            for s, sub in enumerate(spec.subtasks)
        )
        self.retry_cap = spec.retry_cap
        self.weights = Weights.of(dict(spec.grade_weights))
        self.activity_gate = spec.activity_gate
        self.width = dag.parallel_width
        self.budget = spec.budget
        self.deadline = tuple(s.deadline for s in spec.subtasks)
        self.deadline_subtasks = tuple(i for i, s in enumerate(spec.subtasks) if s.deadline is not None)
        index = dag.index
        self.conflicts = tuple((index[c.at], tuple(index[t] for t in c.tracks)) for c in spec.conflicts)
        self.conflict_tracks = frozenset(t for _, tracks in self.conflicts for t in tracks)
        self.pillars = tuple(
            tuple(i for i, s in enumerate(spec.subtasks) if pillar in s.tags) for pillar in spec.pillars
        )
        self.patience_index = index[spec.patience.after] if spec.patience else -1
        self.patience_waits = spec.patience.waits if spec.patience else 0
        reference: Episode = new_episode(compiled, seed)
        bounds = hindsight(reference)
        self.min_cost = bounds.min_cost
        self.time_lb = bounds.time_lower_bound
        self._timelines()
        self._outcomes: dict[tuple[int, int, int, int], int] = {}
        self._bound_tables()

    # ----------------------------------------------------------- timelines

    def _timelines(self) -> None:
        """Speed, availability and capacity in force for an action at each time
        0..limit, and the times at which each agent goes offline."""
        spec, limit, m = self.spec, self.limit, self.m
        # Scheduled events in the order the episode resolves them: by time, then declaration.
        events = sorted(
            ((max(0, e.at - 1), order, e) for order, e in enumerate(spec.events)), key=lambda x: (x[0], x[1])
        )
        speed = [a.speed for a in spec.agents]
        online = [True] * m
        capacity = spec.capacity
        self.speed_at = [[0] * (limit + 1) for _ in range(m)]
        self.online_at = [[False] * (limit + 1) for _ in range(m)]
        self.capacity_at = [0] * (limit + 1)
        self.offline_times: list[list[int]] = [[] for _ in range(m)]
        self.event_times: tuple[int, ...] = tuple(sorted({time for time, _, _ in events}))
        cursor = 0
        for t in range(limit + 1):
            while cursor < len(events) and events[cursor][0] <= t:
                _, _, event = events[cursor]
                cursor += 1
                if event.kind is EventKind.CAPACITY:
                    capacity = int(event.value or 1)
                    continue
                a = self.compiled.agent_index[event.agent or ""]
                if event.kind is EventKind.OFFLINE:
                    online[a] = False
                    self.offline_times[a].append(max(0, event.at - 1))
                elif event.kind is EventKind.ONLINE:
                    online[a] = True
                elif event.kind is EventKind.SPEED:
                    speed[a] = int(event.value or 1)
            for a in range(m):
                self.speed_at[a][t] = speed[a]
                self.online_at[a][t] = online[a]
            self.capacity_at[t] = capacity
        # Offline events beyond the horizon never happen within an episode.
        self.max_capacity_from = [0] * (limit + 2)
        for t in range(limit, -1, -1):
            self.max_capacity_from[t] = max(self.capacity_at[t], self.max_capacity_from[t + 1])

    def dropout_time(self, a: int, start: int, end: int) -> int:
        """The first time in (start, end) at which the agent goes offline, or NEVER."""
        for e in self.offline_times[a]:
            if start < e < end:
                return e
        return NEVER

    def has_events_after(self, t: int) -> bool:
        return any(time > t for time in self.event_times)

    # ------------------------------------------------------------ outcomes

    def outcome(self, s: int, a: int, attempt: int, prior_failures: int) -> int:
        """How attempt ``attempt`` of subtask ``s`` by agent ``a`` ends, by the
        episode's own seeded rule (``outcomes.decide_attempt``)."""
        cap = self.retry_cap
        key_failures = 0 if cap is None else min(prior_failures, cap)
        key = (s, a, attempt, key_failures)
        found = self._outcomes.get(key)
        if found is None:
            kind = decide_attempt(self.seed_key, self.spec.subtasks[s], self.spec.agents[a], attempt, key_failures, cap)
            found = SUCCEEDS if kind is None else (FAILS_PERMANENT if kind == PERMANENT else FAILS_TRANSIENT)
            self._outcomes[key] = found
        return found

    def _optimistic_success(self, s: int, a: int, attempt: int) -> bool:
        """Whether the attempt can succeed at all. With a retry cap an attempt's
        outcome depends on earlier failures, so only the certain failures count."""
        if self.retry_cap is None:
            return self.outcome(s, a, attempt, 0) == SUCCEEDS
        agent = self.spec.agents[a]
        kind = self.spec.subtasks[s].type
        return kind not in agent.never_succeeds and attempt >= agent.fails_first.get(kind, 0)

    # ---------------------------------------------------------- bound tables

    def _bound_tables(self) -> None:
        """Per able (subtask, agent): the earliest completion from attempt k
        starting no earlier than time t (``finish``), and the least cost of a
        completion from attempt k (``least_cost``).

        The earliest completion relaxes capacity and the other subtasks; an
        attempt that will fail is best aborted after one tick (or fails by
        itself after one), and the next one starts at the next action.
        """
        limit = self.limit
        attempts = limit + 1
        self.finish: dict[tuple[int, int], list[list[int]]] = {}
        self.least_cost: dict[tuple[int, int], list[float]] = {}
        for s in range(self.n):
            work = self.work[s]
            for a in self.able[s]:
                table = [[NEVER] * (limit + 2) for _ in range(attempts + 1)]
                for k in range(attempts - 1, -1, -1):
                    row, after = table[k], table[k + 1]
                    best = NEVER
                    succeeds = self._optimistic_success(s, a, k)
                    for t in range(limit - 1, -1, -1):
                        if self.online_at[a][t]:
                            end = t + max(1, self.speed_at[a][t] * work)
                            drop = self.dropout_time(a, t, end)
                            if succeeds and drop == NEVER:
                                candidate = end if end <= limit else NEVER
                            else:
                                stop = min(drop, end)
                                following = min(stop, t + 2)
                                candidate = after[following] if following <= limit else NEVER
                            if candidate < best:
                                best = candidate
                        row[t] = best
                self.finish[(s, a)] = table
                fastest = max(1, min(self.speed_at[a]) * work)
                costs = [math.inf] * (attempts + 1)
                for k in range(attempts - 1, -1, -1):
                    if self._optimistic_success(s, a, k):
                        costs[k] = self.agent_cost[a] * fastest
                    else:
                        # A doomed attempt costs at least one tick of the agent's time.
                        costs[k] = self.agent_cost[a] + costs[k + 1]
                self.least_cost[(s, a)] = costs
        # The least agent time a completion from attempt k takes: a doomed attempt
        # holds its agent for at least one tick, the successful one for its duration.
        self.agent_time: dict[tuple[int, int], list[int]] = {}
        for s in range(self.n):
            for a in self.able[s]:
                fastest = max(1, min(self.speed_at[a]) * self.work[s])
                needed = [NEVER] * (attempts + 1)
                for k in range(attempts - 1, -1, -1):
                    needed[k] = fastest if self._optimistic_success(s, a, k) else min(NEVER, 1 + needed[k + 1])
                self.agent_time[(s, a)] = needed
        # The same tables per subtask, with each agent's slot in ``pair_attempts``.
        self.options = tuple(
            tuple(
                (s * self.m + a, self.finish[(s, a)], self.least_cost[(s, a)], self.agent_time[(s, a)], a)
                for a in self.able[s]
            )
            for s in range(self.n)
        )
        # The last time at which each agent can start work (-1: never again), and
        # per time the options of agents that can still start work then or later.
        self.last_online = [max((t for t in range(limit) if self.online_at[a][t]), default=-1) for a in range(self.m)]
        self.usable_options = tuple(
            tuple(tuple(o for o in self.options[s] if self.last_online[o[4]] >= t) for s in range(self.n))
            for t in range(limit + 1)
        )
        # Longest chain of least durations after each subtask (speed changes included).
        least = [
            min((max(1, min(self.speed_at[a]) * self.work[s]) for a in self.able[s]), default=1) for s in range(self.n)
        ]
        after = [0] * self.n
        for s in reversed(self.topo):
            after[s] = max((least[c] + after[c] for c in self.succs[s]), default=0)
        self.tail_after = after
        ancestors: list[set[int]] = [set() for _ in range(self.n)]
        for s in self.topo:
            for p in self.preds[s]:
                ancestors[s] |= ancestors[p] | {p}
        self.ancestors = tuple(tuple(sorted(found)) for found in ancestors)

    # ----------------------------------------------------------- the root

    def root(self) -> TickNode:
        node = TickNode()
        n, m = self.n, self.m
        node.t = 0
        node.unmet = [len(p) for p in self.preds]
        node.status = [READY if c == 0 else PENDING for c in node.unmet]
        node.run_agent = [-1] * n
        node.run_start = [0] * n
        node.run_end = [0] * n
        node.run_result = [SUCCEEDS] * n
        node.pair_attempts = [0] * (n * m)
        node.fail_count = [0] * n
        node.known_permanent = [0] * n
        node.open_failures = [()] * n
        node.failures = 0
        node.credit = 0.0
        node.failed_mask = 0
        node.repeated = 0
        node.cost = 0.0
        node.peak = 0
        node.running = 0
        node.patience_waits = 0
        node.completed_by = [-1] * n
        node.completed_at = [-1] * n
        node.done_count = 0
        node.synthesized = False
        node.ended = False
        return node


class TickNode:
    """An episode at a decision point (time ``t``, before the action of tick t + 1)."""

    __slots__ = (
        "t",
        "unmet",
        "status",
        "run_agent",
        "run_start",
        "run_end",
        "run_result",
        "pair_attempts",
        "fail_count",
        "known_permanent",
        "open_failures",
        "failures",
        "credit",
        "failed_mask",
        "repeated",
        "cost",
        "peak",
        "running",
        "patience_waits",
        "completed_by",
        "completed_at",
        "done_count",
        "synthesized",
        "ended",
    )

    t: int
    unmet: list[int]
    status: list[int]
    run_agent: list[int]
    run_start: list[int]
    run_end: list[int]
    run_result: list[int]
    pair_attempts: list[int]  # n * m, row per subtask; cleared when the subtask completes
    fail_count: list[int]
    known_permanent: list[int]  # per subtask, a bit per agent seen to fail it permanently
    open_failures: list[tuple[int, ...]]  # steps of failures not yet followed by a sensible restart
    failures: int
    credit: float  # recovery-speed credit of the failures already followed by a restart
    failed_mask: int
    repeated: int
    cost: float
    peak: int
    running: int
    patience_waits: int
    completed_by: list[int]
    completed_at: list[int]
    done_count: int
    synthesized: bool
    ended: bool

    def copy(self) -> TickNode:
        c = TickNode()
        c.t = self.t
        c.unmet = self.unmet[:]
        c.status = self.status[:]
        c.run_agent = self.run_agent[:]
        c.run_start = self.run_start[:]
        c.run_end = self.run_end[:]
        c.run_result = self.run_result[:]
        c.pair_attempts = self.pair_attempts[:]
        c.fail_count = self.fail_count[:]
        c.known_permanent = self.known_permanent[:]
        c.open_failures = self.open_failures[:]
        c.failures = self.failures
        c.credit = self.credit
        c.failed_mask = self.failed_mask
        c.repeated = self.repeated
        c.cost = self.cost
        c.peak = self.peak
        c.running = self.running
        c.patience_waits = self.patience_waits
        c.completed_by = self.completed_by[:]
        c.completed_at = self.completed_at[:]
        c.done_count = self.done_count
        c.synthesized = self.synthesized
        c.ended = self.ended
        return c


# Moves inside the search: ("start", ((s, a), ...)), ("abort", s), ("wait",),
# ("synthesize",), and ("idle",): wait at every tick left (see legal_moves).
PlanAction = tuple[Any, ...]


def action_to_wire(problem: TickProblem, node: TickNode, action: PlanAction) -> list[dict[str, Any]]:
    """The move as the actions the episode accepts, given the state it is made in."""
    kind = action[0]
    if kind == "wait":
        return [{"action_type": "wait"}]
    if kind == "idle":
        return [{"action_type": "wait"} for _ in range(problem.limit - node.t)]
    if kind == "synthesize":
        return [{"action_type": "synthesize"}]
    if kind == "abort":
        return [{"action_type": "abort", "subtask_id": problem.ids[action[1]]}]
    pairs = action[1]
    if len(pairs) == 1:
        s, a = pairs[0]
        verb = "retry" if node.status[s] == FAILED else "delegate"
        return [{"action_type": verb, "subtask_id": problem.ids[s], "agent_name": problem.agent_names[a]}]
    return [
        {
            "action_type": "dispatch",
            "assignments": [{"subtask_id": problem.ids[s], "agent_name": problem.agent_names[a]} for s, a in pairs],
        }
    ]


def apply_action(problem: TickProblem, node: TickNode, action: PlanAction) -> TickNode:
    """The state one tick later, after ``action`` (which must be valid)."""
    child = node.copy()
    t = node.t
    step = t + 1
    kind = action[0]
    if kind == "start":
        m = problem.m
        for s, a in action[1]:
            attempt = child.pair_attempts[s * m + a]
            child.pair_attempts[s * m + a] = attempt + 1
            result = problem.outcome(s, a, attempt, child.fail_count[s])
            end = t + max(1, problem.speed_at[a][t] * problem.work[s])
            drop = problem.dropout_time(a, t, end)
            if drop != NEVER:
                end, result = drop, DROPS_OUT
            child.status[s] = RUNNING
            child.run_agent[s] = a
            child.run_start[s] = t
            child.run_end[s] = end
            child.run_result[s] = result
            if child.known_permanent[s] >> a & 1:
                child.repeated += 1
            elif child.open_failures[s]:
                child.credit += sum(1.0 / (step - f) for f in child.open_failures[s])
                child.open_failures[s] = ()
        child.running += len(action[1])
        if child.running > child.peak:
            child.peak = child.running
    elif kind == "abort":
        s = action[1]
        a = child.run_agent[s]
        child.cost += problem.agent_cost[a] * (t - child.run_start[s])
        child.status[s] = FAILED
        child.run_agent[s] = -1
        child.running -= 1
    elif kind == "wait":
        p = problem.patience_index
        if p >= 0 and child.status[p] == COMPLETED:
            child.patience_waits += 1
    elif kind == "idle":
        # Nothing runs and nothing is scheduled: the waits change nothing but the clock.
        p = problem.patience_index
        if p >= 0 and child.status[p] == COMPLETED:
            child.patience_waits += problem.limit - t
        child.t = problem.limit
        child.ended = True
        return child
    else:  # synthesize
        child.synthesized = True
        child.ended = True
        child.t = t + 1
        return child
    _advance(problem, child, t + 1)
    return child


def _advance(problem: TickProblem, node: TickNode, now: int) -> None:
    """Resolve every attempt that ends at ``now`` and move the clock there."""
    if node.running:
        m = problem.m
        for s in range(problem.n):
            if node.status[s] != RUNNING or node.run_end[s] != now:
                continue
            a = node.run_agent[s]
            node.cost += problem.agent_cost[a] * (now - node.run_start[s])
            node.run_agent[s] = -1
            node.running -= 1
            result = node.run_result[s]
            if result == SUCCEEDS:
                node.status[s] = COMPLETED
                node.completed_at[s] = now
                node.completed_by[s] = a
                node.done_count += 1
                # A completed subtask never runs again: forget its attempt history.
                row = s * m
                node.pair_attempts[row : row + m] = [0] * m
                node.fail_count[s] = 0
                node.known_permanent[s] = 0
                for succ in problem.succs[s]:
                    node.unmet[succ] -= 1
                    if node.unmet[succ] == 0 and node.status[succ] == PENDING:
                        node.status[succ] = READY
            else:
                node.status[s] = FAILED
                node.fail_count[s] += 1
                node.failures += 1
                node.failed_mask |= 1 << s
                node.open_failures[s] = node.open_failures[s] + (now,)
                if result == FAILS_PERMANENT:
                    node.known_permanent[s] |= 1 << a
    node.t = now
    if now >= problem.limit:
        node.ended = True


# ------------------------------------------------------------------ grading


def dimension_values(problem: TickProblem, node: TickNode) -> dict[str, float]:
    """The grade dimensions of a finished episode, by the definitions in ``grading.py``."""
    n = problem.n
    done = node.done_count
    completed = [st == COMPLETED for st in node.status]
    failed = [s for s in range(n) if node.failed_mask >> s & 1]
    steps = node.t
    values: dict[str, float] = {"completion": done / n}
    values["recovery"] = _ratio(sum(1 for s in failed if completed[s]), len(failed))
    values["recovery_speed"] = 1.0 if node.failures == 0 else node.credit / node.failures
    values["error_classification"] = max(0.0, 1.0 - 0.5 * node.repeated)
    width = problem.width
    if node.peak == 0:
        values["parallelism"] = 0.0
    else:
        values["parallelism"] = 1.0 if width <= 1 else _ratio(node.peak - 1, width - 1)
    if node.cost <= 0:
        values["cost_efficiency"] = 0.0 if done == 0 else 1.0
    else:
        values["cost_efficiency"] = _ratio(problem.min_cost, node.cost)
    values["budget"] = _budget_value(problem.budget, node.cost)
    due = problem.deadline_subtasks
    met = sum(1 for s in due if completed[s] and node.completed_at[s] <= problem.deadline[s])  # type: ignore[operator]
    values["deadlines"] = _ratio(met, len(due))
    values["time_efficiency"] = _ratio(problem.time_lb, max(1, node.t)) if node.synthesized else 0.0
    handled = 0
    for at, tracks in problem.conflicts:
        agents = [node.completed_by[s] if completed[s] else None for s in tracks]
        if None not in agents and len(set(agents)) == len(agents) and completed[at]:
            handled += 1
    values["conflict_handling"] = handled / len(problem.conflicts) if problem.conflicts else 1.0
    values["patience"] = _ratio(node.patience_waits, problem.patience_waits) if problem.patience_index >= 0 else 1.0
    values["pillar_balance"] = min(
        (sum(1 for s in members if completed[s]) / len(members) for members in problem.pillars), default=1.0
    )
    values["valid_actions"] = 0.0 if steps == 0 else 1.0
    return values


def leaf_score(problem: TickProblem, node: TickNode) -> float:
    """The grade of a finished episode, rounded as ``grade_episode`` rounds it."""
    gate = min(1.0, (node.done_count / problem.n) / problem.activity_gate)
    values = dimension_values(problem, node)
    total = 0.0
    for name, weight in problem.spec.grade_weights.items():
        value = values[name]
        if name in GATED_DIMENSIONS:
            value *= gate
        total += weight * round(value, 6)
    return round(max(0.0, min(1.0, total)), 6)


def _ratio(numerator: float, denominator: float, empty: float = 1.0) -> float:
    if denominator <= 0:
        return empty
    return max(0.0, min(1.0, numerator / denominator))


def _budget_value(budget: float | None, cost: float) -> float:
    if budget is None or cost <= budget:
        return 1.0
    return max(0.0, 1.0 - 2.0 * (cost - budget) / budget)


# ------------------------------------------------------------------ moves


def legal_moves(problem: TickProblem, node: TickNode) -> list[PlanAction]:
    """The moves worth considering at a decision point.

    Invalid actions are never considered: a wait leaves the state exactly as
    an invalid action would, and can only add a patience wait.

    When nothing runs and nothing is scheduled (a static state), a single wait
    is replaced by ``idle``, waiting out every tick left. Why that loses
    nothing, unless a patience wait is still wanted: after a wait the world
    is the same one tick later, so any continuation after it does at least as
    well one tick earlier (deadlines, the time used and restart delays only
    improve), followed by one more wait at the end. Repeating the argument
    moves every wait of a static state to the end of the episode, where they
    are ``idle``.
    """
    n, t = problem.n, node.t
    p = problem.patience_index
    patience_open = p >= 0 and node.status[p] == COMPLETED and node.patience_waits < problem.patience_waits
    if node.done_count == n:
        return [("synthesize",), ("wait",)] if patience_open else [("synthesize",)]
    moves: list[PlanAction] = []
    free = problem.capacity_at[t] - node.running
    if free > 0:
        busy = 0
        for s in range(n):
            if node.status[s] == RUNNING:
                busy |= 1 << node.run_agent[s]
        pairs: list[tuple[int, int]] = []
        for s in range(n):
            st = node.status[s]
            if st == READY or st == FAILED:
                for a in problem.capable[s]:
                    if not busy >> a & 1 and problem.online_at[a][t]:
                        pairs.append((s, a))
        _matchings(pairs, 0, free, 0, 0, [], moves)
    if node.running:
        moves.extend(("abort", s) for s in range(n) if node.status[s] == RUNNING)
    if node.running or patience_open or problem.has_events_after(t):
        moves.append(("wait",))
    else:
        moves.append(("idle",))
    return moves


def _matchings(
    pairs: list[tuple[int, int]],
    start: int,
    room: int,
    used_subtasks: int,
    used_agents: int,
    chosen: list[tuple[int, int]],
    out: list[PlanAction],
) -> None:
    """Every non-empty set of starts with distinct subtasks and agents, at most ``room`` of them."""
    for i in range(start, len(pairs)):
        s, a = pairs[i]
        if used_subtasks >> s & 1 or used_agents >> a & 1:
            continue
        chosen.append((s, a))
        out.append(("start", tuple(chosen)))
        if room > 1:
            _matchings(pairs, i + 1, room - 1, used_subtasks | 1 << s, used_agents | 1 << a, chosen, out)
        chosen.pop()


# ------------------------------------------------------------------ memo


def state_key(problem: TickProblem, node: TickNode) -> tuple[Any, ...]:
    """Everything about a state that can change its future or its grade, except
    the quantities compared by :func:`state_values` (cost, peak, credit)."""
    running = tuple(
        (s, node.run_agent[s], node.run_start[s], node.run_end[s], node.run_result[s])
        for s in range(problem.n)
        if node.status[s] == RUNNING
    )
    tracks = tuple(node.completed_by[s] for s in problem.conflict_tracks)
    met = tuple(
        node.status[s] == COMPLETED and node.completed_at[s] <= problem.deadline[s]  # type: ignore[operator]
        for s in problem.deadline_subtasks
    )
    return (
        node.t,
        tuple(node.status),
        running,
        tuple(node.pair_attempts),
        tuple(node.fail_count) if problem.retry_cap is not None else None,
        tuple(node.known_permanent),
        tuple(node.open_failures),
        node.failures,
        node.failed_mask,
        node.repeated,
        min(node.patience_waits, problem.patience_waits),
        tracks,
        met,
    )


def state_values(problem: TickProblem, node: TickNode) -> tuple[float, int, float]:
    """Quantities where a state with the same key is better: less cost, a higher
    peak (up to the achievable width), more recovery-speed credit."""
    return (node.cost, min(node.peak, problem.width), node.credit)


def dominated(stored: list[tuple[float, int, float]], values: tuple[float, int, float]) -> bool:
    cost, peak, credit = values
    for c, p, r in stored:
        if c <= cost + 1e-9 and p >= peak and r >= credit - 1e-12:
            return True
    return False


# ------------------------------------------------------------------ bound


def upper_bound(problem: TickProblem, node: TickNode, floor: float = -1.0) -> float:
    """A score no continuation of ``node`` can exceed (as ``grade_episode`` rounds it).

    Each dimension is bounded by a relaxation: completion times ignore capacity
    and the other subtasks' agents (but keep the seeded outcomes, dropouts and
    speed changes); costs take each remaining subtask's cheapest successful
    attempt sequence. Dimensions that trade off through the number of completed
    subtasks (the activity gate, cost, budget) are maximised jointly over that
    number; time efficiency and patience are maximised jointly over the number
    of waits still to come. Each dimension's bound is rounded as the grader
    rounds the dimension itself (rounding is monotone), which keeps the bound
    admissible for the rounded score.
    """
    ect, earliest_start = earliest_completions(problem, node)
    cheap = assemble_bound(problem, node, ect, node.t)
    w = problem.weights
    if cheap <= floor + 1e-12 or not (w.deadlines or w.time_efficiency or w.patience):
        # Already no better than the plan in hand (``floor``): the sharper bound cannot help.
        return cheap
    if sum(1 for s in range(problem.n) if ect[s] <= problem.limit) < problem.n:
        return cheap
    finish_all = contention_bounds(problem, node, earliest_start, ect)
    return min(cheap, assemble_bound(problem, node, ect, finish_all))


def earliest_completions(problem: TickProblem, node: TickNode) -> tuple[list[int], list[int]]:
    """Per subtask, a time before which it cannot complete, and one before which
    it cannot start (completion times relax capacity and the other subtasks)."""
    n, t, limit = problem.n, node.t, problem.limit
    status = node.status
    pair_attempts = node.pair_attempts
    options = problem.options
    preds = problem.preds
    ect = [NEVER] * n
    earliest_start = [t] * n
    for s in problem.topo:
        st = status[s]
        if st == COMPLETED:
            ect[s] = node.completed_at[s]
            continue
        if st == RUNNING:
            best = node.run_end[s] if node.run_result[s] == SUCCEEDS else NEVER
            est = t + 1
        else:
            best = NEVER
            est = t
            if st == PENDING:
                for p in preds[s]:
                    if ect[p] > est:
                        est = ect[p]
        earliest_start[s] = est
        if est < limit:
            for slot, table, _, _, _ in options[s]:
                f = table[pair_attempts[slot]][est]
                if f < best:
                    best = f
        ect[s] = best if best <= limit else NEVER
    return ect, earliest_start


def assemble_bound(problem: TickProblem, node: TickNode, ect: list[int], finish_all: int) -> float:
    """The bound on the score given completion bounds ``ect`` and a time
    ``finish_all`` before which not everything can be complete."""
    w = problem.weights
    n, t, limit = problem.n, node.t, problem.limit
    status = node.status
    pair_attempts = node.pair_attempts
    options = problem.options
    done = node.done_count
    pending_reach = [s for s in range(n) if status[s] != COMPLETED and ect[s] <= limit]
    n_reach = done + len(pending_reach)

    # Dimensions that do not depend on how many subtasks end up completed.
    fixed = 0.0
    if w.deadlines:
        due = problem.deadline_subtasks
        deadline = problem.deadline
        met = 0
        for s in due:
            if ect[s] <= deadline[s]:  # type: ignore[operator]
                met += 1
        fixed += w.deadlines * round(met / len(due), 6)
    if w.conflict_handling:
        handled = 0
        for at, tracks in problem.conflicts:
            if ect[at] > limit or any(ect[s] > limit for s in tracks):
                continue
            agents = [node.completed_by[s] for s in tracks if status[s] == COMPLETED]
            if len(set(agents)) == len(agents):
                handled += 1
        fixed += w.conflict_handling * round(handled / len(problem.conflicts), 6)
    if w.pillar_balance:
        pillar = min(
            (sum(1 for s in members if ect[s] <= limit) / len(members) for members in problem.pillars), default=1.0
        )
        fixed += w.pillar_balance * round(pillar, 6)
    if w.parallelism:
        width = problem.width
        future = min(problem.max_capacity_from[t], n - done) if t < limit else 0
        peak = node.peak if node.peak > future else future
        if peak == 0:
            parallel = 0.0
        elif width <= 1 or peak >= width:
            parallel = 1.0
        else:
            parallel = (peak - 1) / (width - 1)
        fixed += w.parallelism * round(parallel, 6)

    # Gated dimensions whose bound does not depend on the number completed (before the gate).
    gated_fixed: list[tuple[float, float]] = []  # (weight, value before the gate)
    if w.recovery:
        failed = node.failed_mask
        if failed:
            failed_count = bin(failed).count("1")
            recovered = sum(1 for s in range(n) if failed >> s & 1 and ect[s] <= limit)
            fresh = sum(1 for s in pending_reach if not failed >> s & 1)
            gated_fixed.append((w.recovery, (recovered + fresh) / (failed_count + fresh)))
        else:
            gated_fixed.append((w.recovery, 1.0))
    if w.recovery_speed:
        if node.failures:
            open_credit = 0.0
            step = t + 1
            for steps in node.open_failures:
                for f in steps:
                    open_credit += 1.0 / (step - f)
            future_failures = problem.max_capacity_from[t] * max(0, limit - t)
            speed = min(1.0, (node.credit + open_credit + future_failures) / (node.failures + future_failures))
            gated_fixed.append((w.recovery_speed, speed))
        else:
            gated_fixed.append((w.recovery_speed, 1.0))
    if w.error_classification:
        gated_fixed.append((w.error_classification, max(0.0, 1.0 - 0.5 * node.repeated)))
    if w.valid_actions:
        gated_fixed.append((w.valid_actions, 1.0))

    # Cost: what is certain to be charged, and the least each remaining completion adds.
    agent_cost = problem.agent_cost
    sunk = node.cost
    extra: list[float] = []
    if w.cost_efficiency or w.budget:
        for s in range(n):
            if status[s] == RUNNING and node.run_end[s] <= limit:
                sunk += agent_cost[node.run_agent[s]] * (t - node.run_start[s])
        for s in pending_reach:
            restart = math.inf
            for slot, _, costs, _, _ in options[s]:
                c = costs[pair_attempts[slot]]
                if c < restart:
                    restart = c
            if status[s] == RUNNING:
                a0 = node.run_agent[s]
                if node.run_end[s] <= limit:
                    if node.run_result[s] == SUCCEEDS:
                        current = agent_cost[a0] * (node.run_end[s] - t)
                        if current < restart:
                            restart = current
                else:
                    restart += agent_cost[a0] * (t - node.run_start[s])
            extra.append(restart)
        extra.sort()

    # Time efficiency and patience, for an episode that synthesizes.
    synth_term = -1.0
    p = problem.patience_index
    wanted = problem.patience_waits
    if p >= 0:
        wait_from = t if status[p] == COMPLETED else ect[p]
        waits_possible = limit - wait_from if wait_from <= limit else 0
        patience_free = round(min(1.0, (node.patience_waits + waits_possible) / wanted), 6)
    else:
        wait_from = 0
        patience_free = 1.0
    if n_reach == n and (w.time_efficiency or w.patience):
        last = finish_all
        for s in pending_reach:
            if ect[s] > last:
                last = ect[s]
        time_lb = problem.time_lb
        if p >= 0:
            for more in range(0, max(0, wanted - node.patience_waits) + 1):
                synth_at = max(last, wait_from + more)
                if synth_at > limit - 1:
                    break
                value = w.time_efficiency * round(min(1.0, time_lb / (synth_at + 1)), 6) + w.patience * round(
                    min(1.0, (node.patience_waits + more) / wanted), 6
                )
                if value > synth_term:
                    synth_term = value
        elif last <= limit - 1:
            synth_term = w.time_efficiency * round(min(1.0, time_lb / (last + 1)), 6) + w.patience
    no_synth_term = w.patience * patience_free

    # Maximise over the number k of subtasks completed at the end, from the most
    # down; a cheap bound for each k (every gated dimension at 1) ends the loop early.
    gated_total = w.cost_efficiency + w.budget + sum(weight for weight, _ in gated_fixed)
    gate_scale = 1.0 / (n * problem.activity_gate)
    prefix = [sunk]
    for c in extra:
        prefix.append(prefix[-1] + c)
    best_total = 0.0
    min_cost = problem.min_cost
    for k in range(n_reach, done - 1, -1):
        gate = min(1.0, k * gate_scale)
        ending = max(synth_term, no_synth_term) if k == n else no_synth_term
        base = fixed + w.completion * round(k / n, 6) + ending
        if base + gated_total * gate <= best_total:
            break
        total = base
        spent = prefix[k - done] if extra else sunk
        if w.cost_efficiency:
            cost_value = 1.0 if spent <= 0 else min(1.0, min_cost / spent)
            total += w.cost_efficiency * round(cost_value * gate, 6)
        if w.budget:
            budget = problem.budget
            if budget is None or spent <= budget:
                budget_value = 1.0
            else:
                budget_value = max(0.0, 1.0 - 2.0 * (spent - budget) / budget)
            total += w.budget * round(budget_value * gate, 6)
        for weight, value in gated_fixed:
            total += weight * round(value * gate, 6)
        if total > best_total:
            best_total = total
    # The nudge keeps ties at a rounding boundary on the high side, whatever the summation order.
    return round(best_total + 1e-9, 6)


def contention_bounds(problem: TickProblem, node: TickNode, earliest_start: list[int], ect: list[int]) -> int:
    """Bounds from agents and slots being shared, for a state whose every
    subtask can still complete: returns a time by which the last subtask cannot
    yet be complete, and raises ``ect`` of the subtasks with deadlines in place.

    * Slots: at most ``capacity`` (and at most one per agent) work at once, so
      the agent time still needed, spread over them, ends no earlier than
      ``t + ceil(work / slots)``; the same for the ancestors of a subtask.
    * Agents: the subtasks that only one agent can still complete run on it one
      at a time. With release times (earliest starts) and tails (the least
      time after each), the preemptive schedule that always runs the job with
      the longest tail bounds the finish of everything (Jackson's bound); the
      ancestors of a subtask on one agent, run in release order, bound when it
      can start.
    """
    n, m, t, limit = problem.n, problem.m, node.t, problem.limit
    status = node.status
    pair_attempts = node.pair_attempts
    usable_options = problem.usable_options[t]
    slots = min(problem.max_capacity_from[t], m)
    need = [0] * n
    dedicated = [-1] * n
    for s in range(n):
        st = status[s]
        if st == COMPLETED:
            continue
        usable = usable_options[s]
        least = NEVER
        for slot, _, _, times, _ in usable:
            if times[pair_attempts[slot]] < least:
                least = times[pair_attempts[slot]]
        if st == RUNNING and node.run_result[s] == SUCCEEDS and node.run_end[s] <= limit:
            least = min(least, node.run_end[s] - t)
        need[s] = least
        if len(usable) == 1:
            dedicated[s] = usable[0][4]
    total = sum(need)
    finish_all = t + -(-total // slots) if total else t
    # Jackson's preemptive bound per agent.
    jobs: dict[int, list[tuple[int, int, int]]] = {}
    for s in range(n):
        if dedicated[s] >= 0:
            release = t if status[s] == RUNNING else earliest_start[s]
            jobs.setdefault(dedicated[s], []).append((release, need[s], problem.tail_after[s]))
    for agent_jobs in jobs.values():
        bound = _jackson(agent_jobs)
        if bound > finish_all:
            finish_all = bound
    # Subtasks with deadlines: their ancestors first.
    for d in problem.deadline_subtasks:
        if status[d] == COMPLETED or status[d] == RUNNING:
            continue
        waiting = [x for x in problem.ancestors[d] if status[x] != COMPLETED]
        if not waiting:
            continue
        work = sum(need[x] for x in waiting)
        start = t + -(-work // slots)
        per_agent: dict[int, list[tuple[int, int]]] = {}
        for x in waiting:
            if dedicated[x] >= 0:
                release = t if status[x] == RUNNING else earliest_start[x]
                per_agent.setdefault(dedicated[x], []).append((release, need[x]))
        own = dedicated[d]
        for agent, agent_jobs in per_agent.items():
            clock = 0
            for release, length in sorted(agent_jobs):
                clock = max(clock, release) + length
            if agent == own:
                start = max(start, clock)
            elif clock > start:
                start = clock
        if start + need[d] > ect[d]:
            ect[d] = start + need[d]
    return finish_all


def _jackson(jobs: list[tuple[int, int, int]]) -> int:
    """max(completion + tail) of the preemptive schedule that runs the released
    job with the longest tail (optimal for one machine with preemption)."""
    jobs = sorted(jobs)
    waiting: list[tuple[int, int]] = []  # (-tail, remaining)
    clock = jobs[0][0]
    i, best = 0, 0
    while i < len(jobs) or waiting:
        if not waiting and clock < jobs[i][0]:
            clock = jobs[i][0]
        while i < len(jobs) and jobs[i][0] <= clock:
            heapq.heappush(waiting, (-jobs[i][2], jobs[i][1]))
            i += 1
        negative_tail, remaining = heapq.heappop(waiting)
        next_release = jobs[i][0] if i < len(jobs) else NEVER
        run = min(remaining, next_release - clock)
        clock += run
        if run < remaining:
            heapq.heappush(waiting, (negative_tail, remaining - run))
        elif clock - negative_tail > best:
            best = clock - negative_tail
    return best


class TickSearch:
    """:class:`TickProblem` as a :class:`~.search.SearchProblem`."""

    def __init__(self, problem: TickProblem) -> None:
        self.problem = problem

    def root(self) -> TickNode:
        return self.problem.root()

    def moves(self, node: TickNode) -> list[PlanAction]:
        return legal_moves(self.problem, node)

    def apply(self, node: TickNode, move: PlanAction) -> TickNode:
        return apply_action(self.problem, node, move)

    def ended(self, node: TickNode) -> bool:
        return node.ended

    def score(self, node: TickNode) -> float:
        return leaf_score(self.problem, node)

    def bound(self, node: TickNode, floor: float = -1.0) -> float:
        return upper_bound(self.problem, node, floor)

    def key(self, node: TickNode) -> tuple[Any, ...]:
        return state_key(self.problem, node)

    def values(self, node: TickNode) -> tuple[float, int, float]:
        return state_values(self.problem, node)

    def dominated(self, stored: list[tuple[float, int, float]], values: tuple[float, int, float]) -> bool:
        return dominated(stored, values)

    def wire(self, node: TickNode, move: PlanAction) -> list[dict[str, Any]]:
        return action_to_wire(self.problem, node, move)
