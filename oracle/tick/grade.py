"""The grade of a finished tick node, by the definitions in ``grading.py``.

:func:`leaf_score` reads a node the search has played to its end and rounds
each dimension and the total as ``grade_episode`` rounds them, so that the
search compares plans by the grade the episode would give them. It is kept
honest by replay: the plan found is replayed through the real episode and
graded there, and a disagreement raises ``ModelMismatchError``.
"""

from __future__ import annotations

from ...server.core.grading import GATED_DIMENSIONS
from ...server.core.states import COMPLETED
from .node import TickNode
from .problem import TickProblem


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
    met = sum(1 for s in due if completed[s] and node.completed_at[s] <= problem.deadline[s])
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
