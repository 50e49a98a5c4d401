"""The validity gate counts only the operators that act on the answer: a checker
with an answer to check, a parallel structure's voted solver branches or, with
no ensemble after it, its first branch alone."""

from __future__ import annotations

from typing import Any

import pytest

from workflow_orchestrator.server.core.canvas.canvas import gate_counts, parse_dsl
from workflow_orchestrator.server.inprocess import WorkflowEnv


def finish_with(task_id: str, seed: int, dsl: str) -> dict[str, Any]:
    """The grade of an episode that builds ``dsl`` node by node and finishes with its answer."""
    env = WorkflowEnv()
    env.reset(task_id, seed=seed)
    for node in parse_dsl(dsl):
        action: dict[str, Any] = {"action_type": "add", "operators": list(node.operators)}
        if node.kind != "operator":
            action["structure"] = node.kind
        if node.kind == "loop":
            action["count"] = node.count
        observation = env.step(action)
        assert observation["errors"] == [], observation["errors"]
    observation = env.step({"action_type": "finish"})
    assert observation["done"] and observation["canvas"]["dsl"] == dsl
    return dict(observation["grade"])


def test_a_conditional_that_checks_before_any_answer_has_no_checker() -> None:
    # Verify runs on no answer, so all of it takes the other branch: AnswerGenerate then Format.
    dsl = "Verify ? Revise : AnswerGenerate -> Format"
    assert gate_counts(parse_dsl(dsl)) == (True, False, False)
    grade = finish_with("canvas/math", 0, dsl)
    assert grade["activity_gate"] == 0.0 and grade["score"] == 0.0
    # After an answer the same conditional checks it.
    checked = finish_with("canvas/math", 0, "AnswerGenerate -> Verify ? Revise : Format")
    assert checked["activity_gate"] == 1.0 and checked["score"] > 0.0


def test_a_parallel_structure_without_a_vote_counts_its_first_branch_alone() -> None:
    # Without an ensemble after it only Format acts: Test never runs.
    dsl = "Programmer -> [Format, Test]"
    assert gate_counts(parse_dsl(dsl)) == (True, False, False)
    grade = finish_with("canvas/code", 1, dsl)
    assert grade["activity_gate"] == 0.0 and grade["score"] == 0.0
    # Its first branch counts: Test first, and it checks the program.
    assert finish_with("canvas/code", 1, "Programmer -> [Test, Format]")["activity_gate"] == 1.0


@pytest.mark.parametrize(
    ("dsl", "counts"),
    [
        # A vote's solver branches write the answer; a checker branch of a vote acts on nothing.
        ("[AnswerGenerate, Custom, Review] -> ScEnsemble", (True, False, False)),
        ("[AnswerGenerate, Custom] -> ScEnsemble -> Review", (True, True, False)),
        # No vote, first branch a solver: it answers, the checker branch does not check.
        ("[Programmer, Test] -> Format", (True, False, False)),
        # A checker before the first answer checks nothing; in a loop it checks the second time round.
        ("Test -> Programmer", (True, False, False)),
        ("(Test -> Programmer) * 2", (True, True, True)),
        # A conditional's flagged branch runs only on a checked answer.
        ("Review ? AnswerGenerate : Format", (False, False, False)),
        ("Custom -> Review ? Test : Format", (True, True, True)),
    ],
)
def test_what_the_gate_counts(dsl: str, counts: tuple[bool, bool, bool]) -> None:
    assert gate_counts(parse_dsl(dsl)) == counts
