"""One (task, seed) of the tick model, prepared for search.

:class:`TickProblem` holds what does not change during an episode: the
timelines of agent speed, availability and capacity that the scheduled events
produce, the seeded outcome of every attempt (by the episode's own rule,
``outcomes.decide_attempt``), the task's grade weights and reference figures,
and the per-(subtask, agent) tables that :mod:`.bound` reads. Nodes
(:mod:`.node`) only index into it, so that copying a node stays cheap.

These tables restate what the episode computes as it goes; they are kept
honest by replay, since every plan is replayed through the real episode and
its replayed grade is the one reported (see the package docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...server.core.compiled import CompiledTask
from ...server.core.episode import Episode
from ...server.core.families import new_episode
from ...server.core.grading import hindsight
from ...server.core.model import EventKind, TimeModel
from ...server.core.outcomes import PERMANENT, decide_attempt, episode_key
from ...server.core.states import PENDING, READY
from .node import FAILS_PERMANENT, FAILS_TRANSIENT, NEVER, SUCCEEDS, TickNode


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
        return cls(**{name: float(weights.get(name, 0.0)) for name in cls.__slots__})


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
        # Only the subtasks in deadline_subtasks have a deadline; the others never come due.
        self.deadline = tuple(NEVER if s.deadline is None else s.deadline for s in spec.subtasks)
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
