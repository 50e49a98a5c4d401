"""The shared formulas of grades, rewards, hints and bounds, each written once.

Pure functions of numbers: the grader, the arena's metrics and rewards, the
hint, the dashboard and the oracle's leaf values and bounds all call these,
so that a rule (when is a deadline met, how is an overrun scored) cannot
drift between them.
"""

from __future__ import annotations


def deadline_met(completed_at: int | None, deadline: int) -> bool:
    """Whether work completed at ``completed_at`` (``None``: not completed) met
    its deadline: completed at or before it."""
    return completed_at is not None and completed_at <= deadline


def deadline_open(completed_at: int | None, deadline: int, now: int) -> bool:
    """Whether a deadline can still be met at time ``now``: not completed, not passed."""
    return completed_at is None and now <= deadline


def unit(x: float) -> float:
    """``x`` clamped to [0, 1], as ``max(0.0, min(1.0, x))`` gives it (without the
    builtins' argument parsing, which costs more than the comparisons)."""
    if x >= 1.0:
        return 1.0
    if x <= 0.0:
        return 0.0
    return x


def ratio(numerator: float, denominator: float, empty: float = 1.0) -> float:
    """``numerator / denominator`` clamped to [0, 1] (``empty`` when there is nothing to count)."""
    if denominator <= 0:
        return empty
    x = numerator / denominator  # clamped as unit does, without calling it: this runs often
    return 1.0 if x >= 1.0 else (0.0 if x <= 0.0 else x)


def efficiency(bound: float, used: float) -> float:
    """A lower bound on what was used, as a fraction of what was used (at least
    1 unit): 1 when the bound was reached, capped at 1."""
    return ratio(bound, used if used > 1 else 1)


def budget_score(cost: float, budget: float | None) -> float:
    """1 within budget (or without one); ``1 - 2 x overrun / budget`` beyond it, floored at 0."""
    if budget is None or cost <= budget:
        return 1.0
    return max(0.0, 1.0 - 2.0 * (cost - budget) / budget)


def budget_pressure(spent: float, budget: float | None) -> bool:
    """Whether more than 80% of the budget is spent (the hint warns then)."""
    return budget is not None and spent > 0.8 * budget
