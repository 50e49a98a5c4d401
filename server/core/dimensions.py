"""What every grade dimension measures, in words: the one source of these texts.

:mod:`.grading` computes the dimensions of a scenario's grade and :mod:`.arena`
the three parts of an arena grade; this module says what each of them means,
so that the dashboard, the documentation and anyone reading a grade use the
same definitions. Nothing here takes part in grading.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# Dimension -> a sentence on what a value of 1 takes, and how points are lost.
SCENARIO_DIMENSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "completion": "Completed subtasks as a fraction of all subtasks.",
        "recovery": "Subtasks that failed and were later completed, as a fraction of the subtasks that failed "
        "(1 when nothing failed).",
        "recovery_speed": "How soon a failed subtask was started again by an agent not known to fail it "
        "permanently: the mean over failures of 1 / the steps until that restart; a failure never so retried "
        "counts 0 (1 when nothing failed).",
        "error_classification": "Telling permanent failures from transient ones: 1, less 0.5 for every attempt "
        "given to an agent already seen to fail that subtask permanently (at least 0).",
        "parallelism": "Using the width of the workflow: (the most subtasks running at once - 1) / "
        "(the achievable width - 1).",
        "cost_efficiency": "The lowest cost that could have finished the work, known in hindsight, / the cost spent.",
        "budget": "1 within the budget; beyond it, 1 - 2 x overrun / budget (at least 0).",
        "deadlines": "Deadlines met (the subtask completed at or before its deadline) / deadlines.",
        "time_efficiency": "A lower bound on the time to finish, known in hindsight, / the time used; 0 unless "
        "the workflow was synthesized.",
        "conflict_handling": "Conflicts resolved (the conflict point completed) on tracks completed by pairwise "
        "different agents / conflicts.",
        "patience": "Waits made after the patience subtask completed / the waits wanted (the task asks to wait "
        "for something to settle before going on).",
        "pillar_balance": "The lowest completed fraction over the task's pillars: neglecting one pillar costs "
        "even when the others are done.",
        "valid_actions": "1 - invalid actions / actions.",
    }
)

# The parts of the arena's benchmark score (see arena.py for the symbols; cost only with a budget).
ARENA_DIMENSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "completion": "Priority-weighted completion: the priorities of the completed subtasks / all priorities.",
        "on_time": "Priority-weighted on-time completion: the priorities of the subtasks completed by their "
        "deadline / all priorities.",
        "makespan": "A lower bound on the makespan (the critical path, or the work spread over every worker) / "
        "the makespan, when every subtask completed; else 0.",
        "cost": "On-time completion within the budget (tasks with a budget, arena/expert): the on-time part, times "
        "budget / spent when more than the budget was spent.",
    }
)

# The canvas family's grade (canvas/grade.py): score = validity gate x the weighted sum of these.
CANVAS_DIMENSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "correctness": "The expected correctness of the finished canvas under the executor's hidden parameters, "
        "when the answer is its execution's; else whether the answer given is the right one.",
        "cost": "1 - tokens spent over the whole episode / the budget.",
        "latency": "1 - the latency of one execution of the finished canvas / the latency limit (at least 0).",
        "valid_actions": "The share of steps whose action was valid.",
    }
)

# Said of the canvas grade's gate, which multiplies the whole score.
CANVAS_GATE_NOTE: Final = (
    "The validity gate is 1 when the episode finished with a well-formed canvas (a solver and a checker, and Test "
    "for code with tests) that was executed as it stands, else 0, and multiplies the whole score."
)

# Said of the "doing no harm" dimensions, which grading scales by the activity gate.
GATE_NOTE: Final = (
    "Scaled by the activity gate, min(1, completed fraction / the task's activity gate), so that doing nothing "
    "earns nothing."
)


def describe_dimension(name: str, arena: bool = False, canvas: bool = False) -> str:
    """What dimension ``name`` measures, in a scenario's, an arena's or a canvas task's grade ('' if unknown)."""
    table = CANVAS_DIMENSIONS if canvas else ARENA_DIMENSIONS if arena else SCENARIO_DIMENSIONS
    return table.get(name, "")
