"""The tick model as the :class:`~..search.SearchProblem` the branch and bound explores.

:class:`TickSearch` binds a :class:`~.problem.TickProblem` to the functions of
:mod:`.node`, :mod:`.grade` and :mod:`.bound`; it adds no rule of its own.
"""

from __future__ import annotations

from typing import Any

from .bound import upper_bound
from .grade import leaf_score
from .node import PlanAction, TickNode, action_to_wire, apply_action, dominated, legal_moves, state_key, state_values
from .problem import TickProblem


class TickSearch:
    """:class:`TickProblem` as a :class:`~..search.SearchProblem`."""

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
