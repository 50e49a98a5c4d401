"""The exact expectation after a conditional: the branches leave different
planning and revision counters (and checks), so the walk is a mixture of
their parts; the realised frequency over many draws agrees with it."""

from __future__ import annotations

import random

import pytest

from workflow_orchestrator.server.core.canvas import parse_dsl
from workflow_orchestrator.server.core.canvas.simulator import _Walk, expected_outcome, hidden_parameters, run
from workflow_orchestrator.server.tasks.canvas import generate_problem

DRAWS = 20_000


def realised_frequency(dsl: str, preset: str, seed: int, key: int) -> tuple[float, float]:
    problem = generate_problem(preset, seed)
    params = hidden_parameters(problem, key)
    canvas = parse_dsl(dsl)
    right = 0
    for draw in range(DRAWS):
        (walk,) = run(_Walk(params, problem, random.Random(draw)), canvas)
        right += walk.realised_correct()
    return right / DRAWS, expected_outcome(problem, params, canvas).correctness


@pytest.mark.parametrize(
    ("dsl", "preset"),
    [
        # The clear branch keeps its check: the revisions after it leave unflagged answers alone.
        ("Programmer -> Verify ? Revise : Format -> (Revise) * 3", "math"),
        # Only the flagged branch revised: the next revisions decay on that part only.
        ("Custom -> Review ? Revise : Custom -> (Review -> Revise) * 3", "qa"),
        # A plan on one branch only raises the solver after it on that part.
        ("Custom -> Verify ? Plan : Format -> Review ? Custom : Format", "qa"),
    ],
)
def test_expected_correctness_after_a_conditional_is_the_realised_frequency(dsl: str, preset: str) -> None:
    frequency, expected = realised_frequency(dsl, preset, 3, 12345)
    # 20,000 draws (the same ones every run): a standard error below 0.0036. Keeping the
    # counters of the last branch processed put the first two 0.013 and 0.029 off.
    assert abs(frequency - expected) < 0.008, (frequency, expected)


def test_a_hand_computed_mixture() -> None:
    """``S -> C ? Revise : Format -> Revise`` on a problem without a verbose answer."""
    problem = generate_problem("math", 0)
    params = hidden_parameters(problem, 99)
    q = params["AnswerGenerate"].quality
    tpr, fpr = params["Verify"].quality, params["Verify"].false_positive
    fix = params["Revise"].quality
    break_rate = 0.06
    # The flagged part: revised once (fix), then revised blind (a third of the fix, decayed by 0.6).
    flagged_right = q * fpr * (1 - break_rate) + (1 - q) * tpr * fix
    flagged_wrong = q * fpr * break_rate + (1 - q) * tpr * (1 - fix)
    flagged_right_after = flagged_right * (1 - break_rate) + flagged_wrong * fix * 0.6 / 3
    # The clear part: checked and not flagged, so the second revision leaves it as it is.
    clear_right = q * (1 - fpr)
    expected = flagged_right_after + clear_right
    canvas = parse_dsl("AnswerGenerate -> Verify ? Revise : Format -> Revise")
    assert expected_outcome(problem, params, canvas).correctness == pytest.approx(expected, abs=1e-12)
