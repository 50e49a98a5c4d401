"""The operator library of the canvas family and the bounds of its grammar.

Every operator has a role (what it does to the workflow's answer in the
simulated executor, simulator.py), a public description, and a public base
token cost and latency; the seeded per-instance parameters around them are
hidden (simulator.hidden_parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

# Roles.
PLANNER = "planner"  # raises the quality of the solvers after it
SOLVER = "solver"  # writes a fresh answer
CHECKER = "checker"  # flags the current answer as wrong, or not
REVISER = "reviser"  # fixes some flagged answers
ENSEMBLE = "ensemble"  # votes over the answers of the parallel structure before it
FORMATTER = "formatter"  # puts the answer in the expected form

PROBLEM_TYPES: tuple[str, ...] = ("math", "code", "qa")
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")


@dataclass(frozen=True, slots=True)
class OperatorInfo:
    name: str
    role: str
    description: str
    tokens: int  # base token cost of one call
    latency: float  # base latency of one call, seconds


OPERATORS: tuple[OperatorInfo, ...] = (
    OperatorInfo("Plan", PLANNER, "Write a step-by-step plan that later operators follow.", 300, 2.0),
    OperatorInfo("Decompose", PLANNER, "Split the problem into sub-questions answered in order.", 350, 2.5),
    OperatorInfo("Programmer", SOLVER, "Write and run a program that computes the answer.", 500, 4.0),
    OperatorInfo("Test", CHECKER, "Run the problem's tests on the answer (code); otherwise spot checks.", 150, 1.5),
    OperatorInfo("Review", CHECKER, "Read the answer critically and flag errors.", 250, 2.0),
    OperatorInfo("Revise", REVISER, "Rewrite the answer to fix the flagged errors.", 400, 3.0),
    OperatorInfo("ScEnsemble", ENSEMBLE, "Self-consistency: the most frequent of the parallel answers.", 120, 1.0),
    OperatorInfo("Verify", CHECKER, "Check the answer step by step against the problem.", 250, 2.0),
    OperatorInfo("Aggregate", ENSEMBLE, "Combine the parallel answers into one, judging each.", 200, 1.5),
    OperatorInfo("Format", FORMATTER, "Put the final answer in the form the problem asks for.", 100, 0.8),
    OperatorInfo("AnswerGenerate", SOLVER, "Reason about the problem and state an answer.", 400, 3.0),
    OperatorInfo("Custom", SOLVER, "A general-purpose call with the node's own prompt.", 350, 2.5),
)

OPERATOR_NAMES: tuple[str, ...] = tuple(op.name for op in OPERATORS)
OPERATOR_INFO: dict[str, OperatorInfo] = {op.name: op for op in OPERATORS}
ROLE: dict[str, str] = {op.name: op.role for op in OPERATORS}
SOLVERS: tuple[str, ...] = tuple(op.name for op in OPERATORS if op.role == SOLVER)
CHECKERS: tuple[str, ...] = tuple(op.name for op in OPERATORS if op.role == CHECKER)

# Prompt styles: a node's prompt is one of these (token and latency factors public,
# the quality they buy hidden per instance).
DEFAULT_STYLE = "default"
PROMPT_STYLES: tuple[str, ...] = (DEFAULT_STYLE, "step_by_step", "concise")
STYLE_TOKENS: dict[str, float] = {"default": 1.0, "step_by_step": 1.6, "concise": 0.6}
STYLE_LATENCY: dict[str, float] = {"default": 1.0, "step_by_step": 1.5, "concise": 0.7}

# Node kinds (structures and plain operators).
OPERATOR = "operator"
PARALLEL = "parallel"
CONDITIONAL = "conditional"
LOOP = "loop"
STRUCTURES: tuple[str, ...] = (PARALLEL, CONDITIONAL, LOOP)


@dataclass(frozen=True, slots=True)
class Grammar:
    """The bounds of a canvas: what the oracle enumerates."""

    max_nodes: int = 6  # top-level nodes
    min_parallel: int = 2
    max_parallel: int = 4  # branches of a parallel structure
    max_loop_body: int = 2  # operators in a loop's body
    min_loop_count: int = 2
    max_loop_count: int = 3

    def table(self) -> dict[str, int]:
        return {
            "max_nodes": self.max_nodes,
            "parallel_width": self.max_parallel,
            "loop_body": self.max_loop_body,
            "loop_count": self.max_loop_count,
        }


GRAMMAR = Grammar()


def catalogue() -> list[dict[str, object]]:
    """The public operator catalogue, as the observation shows it."""
    return [
        {"name": op.name, "role": op.role, "description": op.description, "tokens": op.tokens, "latency": op.latency}
        for op in OPERATORS
    ]
