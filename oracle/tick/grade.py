"""The grade of a finished tick node, by the definitions in ``grading.py``.

:func:`leaf_score` reads a node the search has played to its end and rounds
each dimension and the total as ``grade_episode`` rounds them, so that the
search compares plans by the grade the episode would give them. The rules
shared with the grader (ratios and clamps, the budget score, when a deadline
is met) are called from ``formulas.py``, as the grader calls them. It is kept
honest by replay: the plan found is replayed through the real episode and
graded there, and a disagreement raises ``ModelMismatchError``.
"""

from __future__ import annotations

from ...server.core.formulas import budget_score, deadline_met, efficiency, ratio, unit
from ...server.core.grading import GATED_DIMENSIONS, UNDELIVERED_SHARE
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
    values: dict[str, float] = {"completion": done / n if node.synthesized else done / n * UNDELIVERED_SHARE}
    values["recovery"] = ratio(sum(1 for s in failed if completed[s]), len(failed))
    values["recovery_speed"] = 1.0 if node.failures == 0 else node.credit / node.failures
    values["error_classification"] = unit(1.0 - 0.5 * node.repeated)
    width = problem.width
    if node.peak == 0:
        values["parallelism"] = 0.0
    else:
        values["parallelism"] = 1.0 if width <= 1 else ratio(node.peak - 1, width - 1)
    if node.cost <= 0:
        values["cost_efficiency"] = 0.0 if done == 0 else 1.0
    else:
        values["cost_efficiency"] = ratio(problem.min_cost, node.cost)
    values["budget"] = budget_score(node.cost, problem.budget)
    due = problem.deadline_subtasks
    met = sum(1 for s in due if deadline_met(node.completed_at[s] if completed[s] else None, problem.deadline[s]))
    values["deadlines"] = ratio(met, len(due))
    values["time_efficiency"] = efficiency(problem.time_lb, node.t) if node.synthesized else 0.0
    handled = 0
    for at, tracks in problem.conflicts:
        agents = [node.completed_by[s] if completed[s] else None for s in tracks]
        if None not in agents and len(set(agents)) == len(agents) and completed[at]:
            handled += 1
    values["conflict_handling"] = handled / len(problem.conflicts) if problem.conflicts else 1.0
    values["patience"] = ratio(node.patience_waits, problem.patience_waits) if problem.patience_index >= 0 else 1.0
    values["pillar_balance"] = min(
        (sum(1 for s in members if completed[s]) / len(members) for members in problem.pillars), default=1.0
    )
    values["valid_actions"] = 0.0 if steps == 0 else 1.0
    return values


def leaf_score(problem: TickProblem, node: TickNode) -> float:
    """The grade of a finished episode, rounded as ``grade_episode`` rounds it."""
    gate = unit((node.done_count / problem.n) / problem.activity_gate)
    if not node.synthesized and gate > UNDELIVERED_SHARE:
        gate = UNDELIVERED_SHARE
    values = dimension_values(problem, node)
    total = 0.0
    for name, weight in problem.spec.grade_weights.items():
        value = values[name]
        if name in GATED_DIMENSIONS:
            value *= gate
        total += weight * round(value, 6)
    return round(unit(total), 6)
