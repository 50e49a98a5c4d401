"""Depth-first branch and bound over a finite-horizon decision problem.

The search is exact: it visits every decision sequence except those cut off by
an admissible upper bound (no continuation can score more than the best plan
already found) or by dominance (the same state was reached before with
quantities at least as good, and its future was searched then). When it ends
within its budget, the best plan is optimal. When the budget runs out, the
largest bound among the unexplored branches is a proven upper bound on the
best achievable score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

NodeT = TypeVar("NodeT")


class SearchProblem(Protocol[NodeT]):
    """What the search needs from a time model."""

    def root(self) -> NodeT: ...

    def moves(self, node: NodeT) -> list[Any]: ...

    def apply(self, node: NodeT, move: Any) -> NodeT: ...

    def ended(self, node: NodeT) -> bool: ...

    def score(self, node: NodeT) -> float: ...

    def bound(self, node: NodeT, floor: float = -1.0) -> float:
        """An upper bound on the score of any continuation; when it is at most
        ``floor`` it may be a looser one (the node is cut off either way)."""
        ...

    def key(self, node: NodeT) -> Any: ...

    def values(self, node: NodeT) -> tuple[Any, ...]: ...

    def dominated(self, stored: list[tuple[Any, ...]], values: tuple[Any, ...]) -> bool: ...

    def wire(self, node: NodeT, move: Any) -> list[dict[str, Any]]: ...


class _OutOfBudget(Exception):
    def __init__(self) -> None:
        super().__init__("search budget exhausted")
        self.open_bound = 0.0


@dataclass(slots=True)
class SearchOutcome:
    best_score: float
    plan: list[dict[str, Any]]
    proven: bool  # the search finished: best_score is optimal
    upper_bound: float  # no plan scores more than this
    nodes: int
    seconds: float
    memo_states: int
    improvements: list[tuple[float, float]] = field(default_factory=list)  # (seconds, score)


class BranchAndBound(Generic[NodeT]):
    def __init__(
        self,
        problem: SearchProblem[NodeT],
        incumbent_score: float = -1.0,
        incumbent_plan: list[dict[str, Any]] | None = None,
        seconds: float | None = None,
        max_nodes: int | None = None,
        max_memo: int = 4_000_000,
        accept: Callable[[list[dict[str, Any]], float], tuple[float, list[dict[str, Any]]]] | None = None,
    ) -> None:
        self.problem = problem
        self.best_score = incumbent_score
        self.best_plan = list(incumbent_plan or [])
        self.seconds = seconds
        self.max_nodes = max_nodes
        self.max_memo = max_memo
        # Called with every improving plan; returns the score to keep (a replay's
        # grade) and the plan that earns it (the actions the episode takes).
        self.accept = accept
        self.nodes = 0
        self.memo: dict[Any, list[tuple[Any, ...]]] = {}
        self.memo_size = 0
        self._path: list[dict[str, Any]] = []
        self._deadline = 0.0
        self._started = 0.0
        self.improvements: list[tuple[float, float]] = []

    def run(self) -> SearchOutcome:
        problem = self.problem
        self._started = time.perf_counter()
        self._deadline = self._started + self.seconds if self.seconds is not None else float("inf")
        root = problem.root()
        root_bound = problem.bound(root)
        proven = True
        open_bound = 0.0
        try:
            if root_bound > self.best_score + 1e-12:
                self._search(root, root_bound)
        except _OutOfBudget as stop:
            proven = False
            open_bound = stop.open_bound
        upper = self.best_score if proven else max(self.best_score, min(open_bound, root_bound))
        return SearchOutcome(
            best_score=self.best_score,
            plan=self.best_plan,
            proven=proven,
            upper_bound=round(upper, 6),
            nodes=self.nodes,
            seconds=time.perf_counter() - self._started,
            memo_states=self.memo_size,
            improvements=self.improvements,
        )

    def _offer(self, node: NodeT, move: Any, child: NodeT) -> None:
        score = self.problem.score(child)
        if score <= self.best_score + 1e-12:
            return
        plan = self._path + self.problem.wire(node, move)
        if self.accept is not None:
            score, plan = self.accept(plan, score)
        if score > self.best_score + 1e-12:
            self.best_score = score
            self.best_plan = plan
            self.improvements.append((time.perf_counter() - self._started, score))

    def _search(self, node: NodeT, node_bound: float) -> None:
        problem = self.problem
        self.nodes += 1
        if self.nodes & 255 == 0:
            if time.perf_counter() > self._deadline or (self.max_nodes is not None and self.nodes > self.max_nodes):
                stop = _OutOfBudget()
                stop.open_bound = node_bound
                raise stop
        children: list[tuple[float, int, Any, NodeT]] = []
        for order, move in enumerate(problem.moves(node)):
            child = problem.apply(node, move)
            if problem.ended(child):
                self._offer(node, move, child)
                continue
            bound = problem.bound(child, self.best_score)
            if bound > self.best_score + 1e-12:
                children.append((bound, order, move, child))
        # Most promising first, so that good plans raise the bar early.
        children.sort(key=lambda c: (-c[0], c[1]))
        for index, (bound, _, move, child) in enumerate(children):
            if bound <= self.best_score + 1e-12:
                break
            key = problem.key(child)
            values = problem.values(child)
            stored = self.memo.get(key)
            if stored is not None and problem.dominated(stored, values):
                continue
            if self.memo_size < self.max_memo:
                if stored is None:
                    self.memo[key] = [values]
                else:
                    stored.append(values)
                self.memo_size += 1
            depth = len(self._path)
            self._path.extend(problem.wire(node, move))
            try:
                self._search(child, bound)
            except _OutOfBudget as stop:
                # What is left unexplored: the deeper frames (already in the bound) and
                # the siblings not yet searched, the best of which comes first.
                if index + 1 < len(children):
                    stop.open_bound = max(stop.open_bound, children[index + 1][0])
                raise
            finally:
                del self._path[depth:]
