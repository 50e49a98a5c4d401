"""The canvas grade, read from the event log, and the canvas rewards.

``score = gate * (0.6 correctness + 0.2 cost + 0.1 latency + 0.1 valid_actions)``:

* ``gate`` (validity): 1 when the episode finished with a well-formed, executed
  canvas (a solver and a checker, and ``Test`` for code with tests), else 0;
  only operators that act on the answer count (``canvas.gate_counts``): a
  checker with an answer to check, a parallel structure's voted solver
  branches or, with no ensemble after it, its first branch alone;
* ``correctness``: the expected correctness of the finished canvas under the
  simulator's hidden parameters when the answer is its execution's answer,
  else whether the answer given is the right one;
* ``cost``: ``1 - tokens spent / budget`` over the whole episode (the
  episode's budget: the task's times the executor's ``budget_scale``);
* ``latency``: ``1 - latency of the final canvas / latency limit`` (at least 0);
* ``valid_actions``: the share of steps whose action was valid.

The published reward (``reward_mode="published"``), for comparison:
``-1 + S + C * [S = 1]`` at the end, ``S`` the share of the published finish
rules met (five operators, a solver and a checker, a structure, ``Test`` for
code with tests, ``Format`` for a verbose answer), ``C`` whether the realised
answer is right; ``-1`` when the episode did not finish.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ....vocabulary import CanvasGradeDimensionName
from .canvas import Canvas, EditError, gate_counts, parse_dsl, published_checks, statistics
from .problem import normalise_answer

if TYPE_CHECKING:
    from .episode import CanvasEpisode, StepOutcome

WEIGHTS: Mapping[CanvasGradeDimensionName, float] = {
    "correctness": 0.6,
    "cost": 0.2,
    "latency": 0.1,
    "valid_actions": 0.1,
}

SHAPED_TABLE: Mapping[str, float] = {"invalid_action": -0.05, "cost": -0.2}
SHAPED_CHANNELS: tuple[str, ...] = ("invalid_action", "cost", "grade")
PUBLISHED_CHANNELS: tuple[str, ...] = ("published",)


@lru_cache(maxsize=4096)
def _canvas_of(dsl: str) -> Canvas:
    """The canvas a logged DSL names (the empty canvas if it names none)."""
    try:
        return parse_dsl(dsl)
    except EditError:
        return ()


def _final(episode: CanvasEpisode) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int, int]:
    """From the log: the finish row, the last execution row, tokens spent, invalid actions."""
    finished = executed = None
    tokens = invalid = 0
    for row in episode.log.rows:
        kind = row["kind"]
        if kind == "executed":
            executed = row
            tokens += row["tokens"]
        elif kind == "invalid_action":
            invalid += 1
        elif kind == "finished":
            finished = row
    return finished, executed, tokens, invalid


def grade_canvas(episode: CanvasEpisode) -> dict[str, Any]:
    """The grade (a new dict each call; computed once per state of the episode)."""
    key = (len(episode.log), episode.step_count, episode.invalid_count, episode.seed_key)
    cached = episode.grade_cache
    if cached is None or cached[0] != key:
        cached = episode.grade_cache = (key, _grade(episode))
    grade = dict(cached[1])
    grade["breakdown"] = dict(grade["breakdown"])
    grade["weights"] = dict(grade["weights"])
    grade["counts"] = dict(grade["counts"])
    grade["canvas"] = dict(grade["canvas"])
    return grade


def _grade(episode: CanvasEpisode) -> dict[str, Any]:
    tables = episode.tables
    problem = episode.problem
    finished, executed, tokens, _ = _final(episode)
    # Every error counts, including those after the end.
    invalid = episode.invalid_count
    steps = max(1, episode.step_count)
    valid = max(0.0, 1.0 - invalid / steps)
    correctness = latency = 0.0
    gate = 0.0
    stats: dict[str, Any] = {}
    if finished is not None:
        canvas = _canvas_of(finished["dsl"])
        stats = statistics(canvas, problem.problem_type, problem.has_tests, problem.verbose)
        solver, checker, test = gate_counts(canvas)
        well_formed = solver and checker and (test or not stats["needs_test"])
        ran = executed is not None and executed["dsl"] == finished["dsl"]
        gate = 1.0 if (well_formed and ran) else 0.0
        if ran and canvas:
            expected = episode.executor.expected(canvas)
            assert executed is not None
            if finished["answer"] is None or finished["answer"] == executed["answer"]:
                correctness = expected.correctness
            else:
                correctness = float(normalise_answer(finished["answer"]) == normalise_answer(problem.answer))
            latency = max(0.0, 1.0 - expected.latency / tables.latency_limit)
    cost = max(0.0, 1.0 - tokens / episode.budget)
    breakdown = {
        "correctness": round(correctness, 6),
        "cost": round(cost, 6),
        "latency": round(latency, 6),
        "valid_actions": round(valid, 6),
    }
    score = gate * sum(weight * breakdown[name] for name, weight in WEIGHTS.items())
    return {
        "task_id": episode.task.task_id,
        "seed": episode.seed,
        "score": round(min(1.0, max(0.0, score)), 6),
        "breakdown": breakdown,
        "weights": dict(WEIGHTS),
        "activity_gate": gate,
        "finished": episode.done,
        "counts": {
            "steps": episode.step_count,
            "invalid_actions": invalid,
            "tokens_used": tokens,
            "budget": episode.budget,
            "executions": sum(1 for row in episode.log.rows if row["kind"] == "executed"),
            "valid_canvas": int(gate),
        },
        # What the numbers above do not say: the finished canvas and its statistics.
        "canvas": {"final_dsl": None if finished is None else finished["dsl"], "statistics": stats},
    }


def published_reward(episode: CanvasEpisode) -> float:
    """The published trajectory reward ``-1 + S + C * [S = 1]`` (see the module docstring)."""
    finished, executed, _, _ = _final(episode)
    if finished is None:
        return -1.0
    problem = episode.problem
    canvas = _canvas_of(finished["dsl"])
    checks = published_checks(statistics(canvas, problem.problem_type, problem.has_tests, problem.verbose))
    structure = sum(checks.values()) / len(checks)
    correct = 0.0
    if finished["answer"] is not None:
        if executed is not None and executed["dsl"] == finished["dsl"] and finished["answer"] == executed["answer"]:
            assert episode.last_execution is not None
            correct = float(episode.last_execution.correct)
        else:
            correct = float(normalise_answer(finished["answer"]) == normalise_answer(problem.answer))
    return -1.0 + structure + (correct if structure == 1.0 else 0.0)


class CanvasRewards:
    """The shaped reward (default): ``invalid_action`` per refused action, ``cost``
    (``-0.2 * tokens / budget``) per execution, and the grade when the episode ends."""

    channels = SHAPED_CHANNELS
    reads_busy_time = False

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def step_reward(self, episode: CanvasEpisode, outcome: StepOutcome) -> dict[str, float]:
        return {
            "invalid_action": SHAPED_TABLE["invalid_action"] if outcome.error else 0.0,
            "cost": SHAPED_TABLE["cost"] * outcome.tokens / episode.budget,
            "grade": float(grade_canvas(episode)["score"]) if outcome.ended else 0.0,
        }


class PublishedRewards:
    """``reward_mode="published"``: 0 every step, the published reward at the step that ends the episode."""

    channels = PUBLISHED_CHANNELS
    reads_busy_time = False

    def step_reward(self, episode: CanvasEpisode, outcome: StepOutcome) -> dict[str, float]:
        return {"published": published_reward(episode) if outcome.ended else 0.0}
