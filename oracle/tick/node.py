"""An episode of the tick model at a decision point, and the mirror of its dynamics.

:class:`TickNode` is the state of an episode before the action of the next
tick, with just enough history to grade it. The functions here are the rules
of ``episode.py`` restated for such nodes: :func:`legal_moves` (the moves worth
considering), :func:`apply_action` (the node one tick after a move),
:func:`action_to_wire` (a move as the actions the episode accepts), and the
dominance rule of the search: :func:`state_key`, :func:`state_values`,
:func:`dominated`.

A second statement of the rules can drift from the first; this one is kept
honest by replay: every plan is replayed through the real episode, the
replay's grade is the one reported, and a replay that disagrees with the
search's own score raises ``ModelMismatchError`` (see ``solver.py``). The
model tests check the mirror step by step against the episode too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...server.core.states import COMPLETED, FAILED, PENDING, READY, RUNNING

if TYPE_CHECKING:
    from .problem import TickProblem

# How a running attempt will end, known with hindsight at its start.
SUCCEEDS, FAILS_TRANSIENT, FAILS_PERMANENT, DROPS_OUT = range(4)

NEVER = 1 << 30  # a time that never comes


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
        node.status[s] == COMPLETED and node.completed_at[s] <= problem.deadline[s] for s in problem.deadline_subtasks
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
