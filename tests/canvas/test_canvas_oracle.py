"""The canvas oracle: on small grammars a plain enumeration without pruning finds
the same optimum; its plans replay to its score through a real episode; no
built-in policy beats a shipped hindsight best."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest

from workflow_orchestrator.oracle.canvas import SLACK, CanvasOracle, grade_of, oracle_for, solve_canvas
from workflow_orchestrator.oracle.solver import OPTIMAL, replay
from workflow_orchestrator.server.core.canvas.canvas import Canvas, Node, gate_counts
from workflow_orchestrator.server.core.canvas.operators import (
    CHECKER,
    CONDITIONAL,
    LOOP,
    OPERATOR,
    PARALLEL,
    ROLE,
    Grammar,
)
from workflow_orchestrator.server.core.canvas.simulator import expected_outcome
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.server.tasks.best_scores import load_entries

PRESETS = ("canvas/math", "canvas/code", "canvas/qa", "canvas/mixed")


def nodes_of(grammar: Grammar, operators: tuple[str, ...], styles: tuple[str, ...]) -> list[Node]:
    """Every node of the grammar over ``operators`` and ``styles``."""
    nodes: list[Node] = []
    for style in styles:
        nodes += [Node(OPERATOR, (name,), 1, style) for name in operators]
        for width in range(grammar.min_parallel, grammar.max_parallel + 1):
            nodes += [Node(PARALLEL, names, 1, style) for names in product(operators, repeat=width)]
        checkers = [name for name in operators if ROLE[name] == CHECKER]
        nodes += [Node(CONDITIONAL, (c, t, f), 1, style) for c in checkers for t in operators for f in operators]
        for size in range(1, grammar.max_loop_body + 1):
            for body in product(operators, repeat=size):
                for count in range(grammar.min_loop_count, grammar.max_loop_count + 1):
                    nodes.append(Node(LOOP, body, count, style))
    return nodes


def brute_force(oracle: CanvasOracle, operators: tuple[str, ...], styles: tuple[str, ...]) -> tuple[float, Canvas]:
    """The best grade over every canvas of the grammar, each run from scratch."""
    problem, params, grammar = oracle.problem, oracle.params, oracle.grammar
    nodes = nodes_of(grammar, operators, styles)
    best: tuple[float, Canvas] = (-1.0, ())
    for length in range(1, grammar.max_nodes + 1):
        for canvas in product(nodes, repeat=length):
            solver, checker, test = gate_counts(canvas)
            needs_test = problem.problem_type == "code" and problem.has_tests
            if not (solver and checker and (test or not needs_test)):
                continue
            outcome = expected_outcome(problem, params, canvas)
            if round(outcome.tokens) > oracle.budget:
                continue
            limit = oracle.latency_limit
            score = grade_of(outcome.correctness, outcome.tokens, outcome.latency, oracle.budget, limit)[0]
            if score > best[0]:
                best = (score, canvas)
    return best


SMALL = Grammar(max_nodes=2, min_parallel=2, max_parallel=2, max_loop_body=1, min_loop_count=2, max_loop_count=2)
SMALL_OPERATORS = ("Plan", "Programmer", "AnswerGenerate", "Test", "Verify", "Revise", "ScEnsemble", "Format")


@pytest.mark.parametrize(("task_id", "seed"), [*((task, 0) for task in PRESETS), ("canvas/code", 1), ("canvas/qa", 1)])
def test_the_oracle_finds_the_brute_force_optimum_on_a_small_grammar(task_id: str, seed: int) -> None:
    compiled = default_registry().resolve(task_id, seed=seed).compiled
    oracle = oracle_for(compiled, seed, grammar=SMALL, operators=SMALL_OPERATORS, styles=("default",))
    result = oracle.solve(seconds=300)
    assert result.status == OPTIMAL
    best, canvas = brute_force(oracle, SMALL_OPERATORS, ("default",))
    assert result.best_score == best, (result.dsl, canvas)
    # The edits build that canvas in a real episode, which grades it the same.
    assert replay(compiled, seed, result.plan)[0]["score"] == result.best_score


def test_the_oracle_finds_the_brute_force_optimum_three_nodes_deep() -> None:
    grammar = Grammar(max_nodes=3, min_parallel=2, max_parallel=2, max_loop_body=1, min_loop_count=2, max_loop_count=2)
    operators = ("Programmer", "Test", "Revise", "Format")
    styles = ("concise",)
    compiled = default_registry().resolve("canvas/code", seed=3).compiled
    oracle = oracle_for(compiled, 3, grammar=grammar, operators=operators, styles=styles)
    result = oracle.solve(seconds=300)
    assert result.status == OPTIMAL
    best, canvas = brute_force(oracle, operators, styles)
    assert result.best_score == best, (result.dsl, canvas)
    assert replay(compiled, 3, result.plan)[0]["score"] == result.best_score


@pytest.mark.parametrize(("task_id", "seed"), [("canvas/qa", 0), ("canvas/math", 2), ("canvas/mixed", 5)])
def test_the_bound_holds_with_plans_and_revisions_in_branches(task_id: str, seed: int) -> None:
    # Planners at their own boost (a weak plan is not the best one), plans and revisions inside a
    # conditional's branches, loops of plans: the bound's planning levels and revision counts.
    grammar = Grammar(max_nodes=3, min_parallel=2, max_parallel=2, max_loop_body=1, min_loop_count=2, max_loop_count=2)
    operators = ("Plan", "AnswerGenerate", "Verify", "Revise")
    compiled = default_registry().resolve(task_id, seed=seed).compiled
    for styles in (("concise",), ("step_by_step",)):
        oracle = oracle_for(compiled, seed, grammar=grammar, operators=operators, styles=styles)
        result = oracle.solve(seconds=300)
        assert result.status == OPTIMAL
        best, canvas = brute_force(oracle, operators, styles)
        assert result.best_score == best, (result.dsl, canvas)


def test_a_solved_canvas_task_replays_to_its_score() -> None:
    compiled = default_registry().resolve("canvas/math", seed=4).compiled
    result = solve_canvas(compiled, 4, seconds=1.0)
    assert result.status in ("optimal", "best_found")
    assert result.upper_bound >= result.best_score > 0
    assert replay(compiled, 4, result.plan)[0]["score"] == result.best_score
    assert result.plan[-1] == {"action_type": "finish"}


def _canvas_entries() -> list[dict[str, Any]]:
    return [entry for entry in load_entries() if entry["task_id"].startswith("canvas/")]


def test_the_shipped_slice_covers_seeds_0_to_19_of_every_preset() -> None:
    shipped = {(entry["task_id"], entry["seed"]) for entry in _canvas_entries()}
    assert {(task, seed) for task in PRESETS for seed in range(20)} <= shipped


@pytest.mark.parametrize("policy_name", ["noop", "random", "template", "heuristic"])
def test_no_built_in_policy_beats_the_hindsight_best(policy_name: str) -> None:
    registry = default_registry()
    from workflow_orchestrator.server.inprocess import WorkflowEnv

    env = WorkflowEnv(registry=registry)
    for entry in _canvas_entries():
        policy = make_policy(policy_name, entry["seed"])
        observation = env.reset(entry["task_id"], seed=entry["seed"])
        while not observation["done"]:
            observation = env.step(policy.act(observation))
        grade = env.grade()
        assert grade["hindsight_best"] == entry["best_score"]
        assert grade["score"] <= entry["best_score"], (policy_name, entry["task_id"], entry["seed"])
        if entry["status"] == OPTIMAL:
            assert grade["normalized_score"] == round(grade["score"] / entry["best_score"], 6)


# ------------------------------------------------------------ the bound, unit by unit

BOUND_GRAMMAR = Grammar(
    max_nodes=2, min_parallel=2, max_parallel=2, max_loop_body=1, min_loop_count=2, max_loop_count=2
)
BOUND_OPERATORS = ("Plan", "Programmer", "AnswerGenerate", "Test", "Verify", "Revise", "ScEnsemble", "Format")


def bound_violations(oracle: CanvasOracle) -> list[tuple[Canvas, float, float]]:
    """Every prefix and unit after it whose bound is below the best grade of a canvas that extends the
    prefix with that unit (the bound's promise), found by walking every sequence of units."""
    violations: list[tuple[Canvas, float, float]] = []

    def best(walks: list[Any], stats: Any, canvas: Canvas) -> float:
        oracle.best_score = -1.0
        # The units it leaves out have no bound above the best so far (-1): as if it were -1.
        bounds = {id(unit): bound for bound, unit in oracle.visit(walks, stats, canvas)}
        found = oracle.best_score if oracle.best_canvas == canvas else -1.0
        for unit in oracle.units:
            if len(canvas) + len(unit.nodes) > oracle.grammar.max_nodes:
                continue
            child, counted = oracle.extend(walks, stats, unit)
            value = best(child, counted, (*canvas, *unit.nodes))
            bound = bounds.get(id(unit), -1.0)
            if bound + SLACK < value:  # SLACK: the grade rounds tokens and each dimension
                violations.append(((*canvas, *unit.nodes), bound, value))
            found = max(found, value)
        return found

    from workflow_orchestrator.server.core.canvas.simulator import _Walk

    oracle.best_canvas = ()
    best([_Walk(oracle.params, oracle.problem, None)], (False, False, False), ())
    return violations


def _bound_oracle(task_id: str, seed: int) -> CanvasOracle:
    compiled = default_registry().resolve(task_id, seed=seed).compiled
    return oracle_for(compiled, seed, grammar=BOUND_GRAMMAR, operators=BOUND_OPERATORS, styles=("default",))


BOUND_CASES = [("canvas/qa", 0), ("canvas/code", 2), ("canvas/math", 1)]  # verbose; code with tests; neither


@pytest.mark.parametrize(("task_id", "seed"), BOUND_CASES)
def test_the_bound_is_above_every_canvas_it_covers(task_id: str, seed: int) -> None:
    oracle = _bound_oracle(task_id, seed)
    assert bound_violations(oracle) == []


def _too_tight(name: str, oracle: CanvasOracle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make one of the bound's tightenings wrong, too tight by a little."""
    import workflow_orchestrator.oracle.canvas as module

    relax = oracle.relax
    if name == "formatting":  # a verbose answer's credit by formatting level
        relax.factors = [factor - 0.01 for factor in relax.factors]
    elif name == "gate":  # the gate as a hard constraint: no unit sets the gate's bit
        relax.bits = [[False] * len(bits) for bits in relax.bits]
    elif name == "branches":  # a conditional's branches paid by their share
        paid = module.Relaxation.branches
        monkeypatch.setattr(
            module.Relaxation, "branches", staticmethod(lambda cost, tpr, fpr: (paid(cost, tpr, fpr)[0] + 40.0, 0.0))
        )
    elif name == "chord":  # the value between grid points
        chord = module._chord
        monkeypatch.setattr(module, "_chord", lambda x, grid, values: chord(x, grid, values) - 0.005)


@pytest.mark.parametrize(
    ("name", "task_id", "seed"),
    [
        ("formatting", "canvas/qa", 0),
        ("gate", "canvas/math", 1),
        ("branches", "canvas/code", 2),
        ("chord", "canvas/math", 1),
    ],
)
def test_each_tightening_made_too_tight_is_caught(
    name: str, task_id: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check above is not vacuous: each tightening of the bound, made wrong, breaks the promise.
    oracle = _bound_oracle(task_id, seed)
    _too_tight(name, oracle, monkeypatch)
    assert bound_violations(oracle), name


@pytest.mark.parametrize("task_id", PRESETS)
def test_a_finished_episode_on_a_shipped_seed_has_a_normalised_score(task_id: str) -> None:
    from workflow_orchestrator.server.inprocess import WorkflowEnv

    env = WorkflowEnv(registry=default_registry())
    policy = make_policy("heuristic", 3)
    observation = env.reset(task_id, seed=3)
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    grade = env.grade()
    assert grade["hindsight_best_status"] == OPTIMAL
    assert grade["normalized_score"] is not None and grade["normalized_score"] > 0
    assert grade["normalized_score"] == round(grade["score"] / grade["hindsight_best"], 6)
