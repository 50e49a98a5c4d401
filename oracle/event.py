"""The arena (event time model) as a search problem with hindsight.

An arena episode is graded by its ``benchmark_score`` (see ``core/arena.py``):
priority-weighted completion, on-time completion and makespan. Workers are
interchangeable except for the seeded outcomes of their attempts, and two
facts make those outcomes avoidable with hindsight:

* In the event model an action takes no time, so a ``dispatch`` followed at
  once by an ``abort`` costs nothing but two steps, and moves that worker to
  its next attempt at that subtask (an abort is not a failure: the retry cap
  does not move). So before any start, the oracle can skip a worker's doomed
  attempts and start the subtask with an attempt that succeeds.
* An attempt that fails only holds a worker; leaving the worker idle instead
  is never worse for the score.

The search therefore solves the schedule in which every start succeeds
(ignoring the step limit), and turns the best schedule into actions by
replaying it: each start goes to the idle worker with the fewest doomed
attempts ahead, skipped as above. The replay's grade is reported; if a
schedule cannot be realised (no succeeding attempt within reach, or the step
limit), the result is reported as best found, with the search's bound.

Starts happen only at events (a completion or a capacity change): a start
between events could be moved back to the previous event, since nothing that
allows it changes in between, and every part of the score only improves when
work finishes earlier. A move is a set of ready subtasks to start (possibly
none), followed by a wait for the next event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..server.core.arena import BENCHMARK_WEIGHTS, ArenaTables
from ..server.core.compiled import CompiledTask
from ..server.core.episode import Episode
from ..server.core.families import new_episode
from ..server.core.outcomes import decide_attempt, episode_key
from ..server.core.states import COMPLETED, IDLE, PENDING, READY, RUNNING

# The most doomed attempts the plan will skip for one start.
MAX_SKIPPED_ATTEMPTS = 64

_C, _T, _M = BENCHMARK_WEIGHTS["completion"], BENCHMARK_WEIGHTS["on_time"], BENCHMARK_WEIGHTS["makespan"]


class ArenaNode:
    """An arena episode at a decision point (time ``t``, after the events at ``t``)."""

    __slots__ = (
        "t",
        "status",
        "unmet",
        "finish",
        "running",
        "done_count",
        "done_priority",
        "on_time_priority",
        "ended",
    )

    t: int
    status: list[int]
    unmet: list[int]
    finish: list[int]
    running: int
    done_count: int
    done_priority: int
    on_time_priority: int
    ended: bool

    def copy(self) -> ArenaNode:
        c = ArenaNode()
        c.t = self.t
        c.status = self.status[:]
        c.unmet = self.unmet[:]
        c.finish = self.finish[:]
        c.running = self.running
        c.done_count = self.done_count
        c.done_priority = self.done_priority
        c.on_time_priority = self.on_time_priority
        c.ended = self.ended
        return c


class ArenaProblem:
    """One arena task and seed, prepared for search (every start succeeds)."""

    def __init__(self, compiled: CompiledTask, seed: int) -> None:
        tables = compiled.tables
        if not isinstance(tables, ArenaTables):
            raise ValueError(f"task {compiled.spec.task_id!r} is not an arena task")
        self.compiled = compiled
        self.seed = seed
        self.tables: ArenaTables = tables
        dag = compiled.dag
        self.n = len(dag.ids)
        self.ids = dag.ids
        self.preds = dag.predecessors
        self.succs = dag.successors
        self.topo = dag.topological_order
        self.duration = tables.durations
        self.priority = tables.priorities
        self.deadline = tables.deadlines
        self.total_priority = tables.total_priority
        self.lower_bound = tables.lower_bound
        self.limit = compiled.spec.time_limit
        # Times at which the usable capacity changes, after time 0.
        self.capacity_changes = tuple(at for at, _ in tables.capacity_steps if at > 0)
        self.max_capacity = max(capacity for _, capacity in tables.capacity_steps)

    def root(self) -> ArenaNode:
        node = ArenaNode()
        node.t = 0
        node.unmet = [len(p) for p in self.preds]
        node.status = [READY if c == 0 else PENDING for c in node.unmet]
        node.finish = [0] * self.n
        node.running = 0
        node.done_count = 0
        node.done_priority = 0
        node.on_time_priority = 0
        node.ended = False
        return node

    def next_change(self, t: int) -> int | None:
        for at in self.capacity_changes:
            if at > t:
                return at
        return None

    # ------------------------------------------------------------- moves

    def moves(self, node: ArenaNode) -> list[tuple[int, ...]]:
        ready = [s for s in range(self.n) if node.status[s] == READY]
        free = max(0, self.tables.capacity_at(node.t) - node.running)
        room = min(free, len(ready))
        moves: list[tuple[int, ...]] = []
        if room > 0:
            _subsets(ready, 0, room, [], moves)
        if node.running or self.next_change(node.t) is not None:
            moves.append(())  # start nothing, wait for the next event
        return moves

    def apply(self, node: ArenaNode, move: tuple[int, ...]) -> ArenaNode:
        child = node.copy()
        t = node.t
        for s in move:
            child.status[s] = RUNNING
            child.finish[s] = t + self.duration[s]
        child.running += len(move)
        target = min((child.finish[s] for s in range(self.n) if child.status[s] == RUNNING), default=None)
        change = self.next_change(t)
        if change is not None and (target is None or change < target):
            target = change
        assert target is not None, "a move always leaves something to wait for"
        if self.limit is not None and target > self.limit:
            target = self.limit
        for s in range(self.n):
            if child.status[s] == RUNNING and child.finish[s] <= target:
                child.status[s] = COMPLETED
                child.running -= 1
                child.done_count += 1
                child.done_priority += self.priority[s]
                due = self.deadline[s]
                if due is None or child.finish[s] <= due:
                    child.on_time_priority += self.priority[s]
                for succ in self.succs[s]:
                    child.unmet[succ] -= 1
                    if child.unmet[succ] == 0 and child.status[succ] == PENDING:
                        child.status[succ] = READY
        child.t = target
        if child.done_count == self.n or (self.limit is not None and target >= self.limit):
            child.ended = True
        return child

    # ----------------------------------------------------------- scoring

    def score(self, node: ArenaNode) -> float:
        total = self.total_priority
        makespan = min(1.0, self.lower_bound / max(1, node.t)) if node.done_count == self.n else 0.0
        value = _C * node.done_priority / total + _T * node.on_time_priority / total + _M * makespan
        return round(max(0.0, min(1.0, value)), 4)

    def bound(self, node: ArenaNode, floor: float = -1.0) -> float:
        """Every remaining subtask at its earliest finish without capacity, and
        the makespan at least the remaining work spread over the most workers."""
        n, t, limit = self.n, node.t, self.limit
        horizon = limit if limit is not None else 1 << 30
        status = node.status
        ect = [0] * n
        work = 0
        reachable_priority = node.done_priority
        on_time = node.on_time_priority
        last = t
        all_reachable = True
        for s in self.topo:
            st = status[s]
            if st == COMPLETED:
                ect[s] = node.finish[s]
                continue
            if st == RUNNING:
                ect[s] = node.finish[s]
                work += node.finish[s] - t
            else:
                start = t
                for p in self.preds[s]:
                    if ect[p] > start:
                        start = ect[p]
                ect[s] = start + self.duration[s]
                work += self.duration[s]
            if ect[s] > horizon:
                all_reachable = False
                continue
            reachable_priority += self.priority[s]
            due = self.deadline[s]
            if due is None or ect[s] <= due:
                on_time += self.priority[s]
            if ect[s] > last:
                last = ect[s]
        makespan = 0.0
        if all_reachable:
            last = max(last, self._work_finish(t, work))
            if last <= horizon:
                makespan = min(1.0, self.lower_bound / max(1, last))
        total = self.total_priority
        value = _C * reachable_priority / total + _T * on_time / total + _M * makespan
        return round(min(1.0, value) + 1e-9, 4)

    def _work_finish(self, t: int, work: int) -> int:
        """The earliest time by which ``work`` units can be done from ``t``. Running
        work is not interrupted when the usable capacity drops, so only the
        largest capacity bounds how many work at once."""
        if work <= 0:
            return t
        return t + -(-work // self.max_capacity)

    # ------------------------------------------------------------ memo

    def key(self, node: ArenaNode) -> tuple[Any, ...]:
        running = tuple((s, node.finish[s]) for s in range(self.n) if node.status[s] == RUNNING)
        return (node.t, tuple(node.status), running)

    def values(self, node: ArenaNode) -> tuple[int]:
        return (node.on_time_priority,)

    def dominated(self, stored: list[tuple[int]], values: tuple[int]) -> bool:
        return any(v[0] >= values[0] for v in stored)

    def ended(self, node: ArenaNode) -> bool:
        return node.ended

    def wire(self, node: ArenaNode, move: tuple[int, ...]) -> list[dict[str, Any]]:
        actions: list[dict[str, Any]] = []
        if move:
            actions.append({"action_type": "dispatch", "task_ids": [self.ids[s] for s in move]})
        actions.append({"action_type": "wait"})
        return actions


def _subsets(items: list[int], start: int, room: int, chosen: list[int], out: list[tuple[int, ...]]) -> None:
    for i in range(start, len(items)):
        chosen.append(items[i])
        out.append(tuple(chosen))
        if room > 1:
            _subsets(items, i + 1, room - 1, chosen, out)
        chosen.pop()


def realise(compiled: CompiledTask, seed: int, schedule: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn a schedule (dispatches of ``task_ids`` and waits) into actions on named
    workers, skipping doomed attempts as the module docstring explains."""
    episode: Episode = new_episode(compiled, seed)
    seed_key = episode_key(compiled.spec.task_id, seed)
    spec = compiled.spec
    cap = spec.retry_cap
    index = compiled.dag.index
    plan: list[dict[str, Any]] = []

    def take(action: dict[str, Any]) -> None:
        plan.append(action)
        episode.step(action)

    for action in schedule:
        if episode.done:
            break
        if action["action_type"] == "dispatch":
            taken: set[int] = set()
            batch: list[dict[str, str]] = []
            for subtask_id in action["task_ids"]:
                s = index[subtask_id]
                worker, skips = _best_worker(episode, seed_key, s, taken, cap)
                assignment = {"subtask_id": subtask_id, "agent_name": spec.agents[worker].name}
                for _ in range(skips):
                    take({"action_type": "dispatch", "assignments": [dict(assignment)]})
                    take({"action_type": "abort", "subtask_id": subtask_id})
                taken.add(worker)
                batch.append(assignment)
            take({"action_type": "dispatch", "assignments": batch})
        else:
            # A skipped attempt leaves its completion in the clock's queue: a wait can stop
            # there with nothing happening, and then the schedule's wait continues.
            while True:
                before = len(episode.log)
                take({"action_type": "wait"})
                happened = any(
                    row[0] in ("completed", "failed", "capacity_changed") for row in episode.log.rows[before:]
                )
                if happened or episode.done:
                    break
    return plan


def _best_worker(episode: Episode, seed_key: int, s: int, taken: set[int], cap: int | None) -> tuple[int, int]:
    """The idle worker with the fewest doomed attempts at ``s`` ahead, and that number."""
    spec = episode.task
    subtask = spec.subtasks[s]
    best, best_skips = -1, MAX_SKIPPED_ATTEMPTS + 1
    for a, agent in enumerate(spec.agents):
        if a in taken or episode.agent_status[a] != IDLE or subtask.type not in agent.capabilities:
            continue
        first = episode.pair_attempts.get((s, a), 0)
        for skips in range(min(best_skips, MAX_SKIPPED_ATTEMPTS + 1)):
            if decide_attempt(seed_key, subtask, agent, first + skips, episode.failure_count[s], cap) is None:
                if skips < best_skips:
                    best, best_skips = a, skips
                break
    if best < 0:
        # No succeeding attempt within reach: start the first idle worker anyway.
        best = next(a for a in range(len(spec.agents)) if a not in taken and episode.agent_status[a] == IDLE)
        best_skips = 0
    return best, best_skips
