"""One arena task and seed as a search problem in which every start succeeds.

:class:`ArenaProblem` holds the task's tables (durations, priorities,
deadlines, capacity steps) and implements the
:class:`~..search.SearchProblem` the branch and bound explores: the moves (a
set of ready subtasks to start, then a wait for the next event), the node
after a move, the ``benchmark_score`` of a finished node, an admissible upper
bound, and the dominance rule. The schedule it finds is turned into actions on
named workers by :mod:`.realise` and replayed through the real episode; the
replay's grade is the one reported, which keeps this model honest.
"""

from __future__ import annotations

from typing import Any

from ...server.core.arena import BENCHMARK_WEIGHTS, ArenaTables
from ...server.core.compiled import CompiledTask
from ...server.core.states import COMPLETED, PENDING, READY, RUNNING
from .node import ArenaNode

_C, _T, _M = BENCHMARK_WEIGHTS["completion"], BENCHMARK_WEIGHTS["on_time"], BENCHMARK_WEIGHTS["makespan"]


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
