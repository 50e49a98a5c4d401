"""The canvas family's exact oracle: the best expected grade of a canvas task
and seed, with the canvas that earns it and the edits that build it.

It is a clairvoyant reference (``hindsight_best``): it reads the simulator's
hidden operator parameters of the episode, and its correctness is the
simulator's exact expectation under them (the grade's). The best episode adds
the canvas's nodes one by one and finishes with the canvas's own answer (one
execution, no invalid action), so the grade is a function of the final canvas
alone (executing intermediate canvases only spends tokens); an answer the
policy writes itself is outside what it searches.

The search is a branch and bound over the bounded grammar (top-level length,
parallel width, loop body and count, prompt styles), unit by unit, where a unit
is a node, or a parallel structure with the ensemble that votes on it (two
nodes). Exact dominance cuts the units before the search:

* a unit whose effect on the simulator's walk is the same as another's, with
  no more tokens and latency (per part: a conditional's branches are paid by
  the share of the answer that takes them) and at least what the validity gate
  counts in it (a solver, a checker, ``Test``; with no answer before it and
  with one: ``canvas.node_contribution``) is dropped; the
  effect is named by the operators' effective rates under the node's prompt
  style (``Format`` and ``Test`` on code with tests rate the same under every
  style), so equivalent canvases are searched once;
* an ensemble that votes on nothing, and an ensemble branch of a parallel
  structure, change nothing and cost tokens; planner, reviser and formatter
  branches of a vote, and every branch but the first of a parallel structure
  without one, only cost (the gate does not count them either); a vote over
  one solver is that solver.

The bound: an upper bound on the grade of any canvas that extends a prefix,
``bound(r, k, p, g, f, c)`` over the nodes left ``r``, the fewest revisions any
part has had ``k`` (a revision in a conditional's branch counts for its part),
a planning level ``p``, the validity gate's bit ``g`` (a checker, or ``Test``
for code with tests, as ``canvas.gate_counts`` counts them), a formatting level
``f`` and the chance ``c`` that the answer is right, from a relaxation where
every unit moves a right answer to right with at most ``a`` and a wrong one
with at most ``b`` (rates at their best over the contexts the unit may meet),
less its fewest tokens and latency:

* the gate is a hard constraint: a canvas may stop only with an answer and the
  gate's bit set (else it scores 0, below any incumbent);
* a verbose problem's unformatted right answer counts half: formatting level
  ``n`` below the top means at least ``(1 - q)^n`` of the right answers are
  unformatted (``q``: Format's rate; a fresh answer is level 0, each Format
  adds one, a revision keeps it), so the stop value is ``0.6 c (1 - (1 - q)^n / 2)``;
* a conditional's branches are paid by the share each takes, flagged
  ``tpr + c (fpr - tpr)``, affine in ``c`` (its slope kept only where it is
  negative: the relaxation's ``c`` is at least the canvas's);
* the bound is a maximum of affine functions of ``c``, so convex: it is kept on
  a grid of ``c`` and read between grid points by the chord, which is above it.

The planning levels are boosts: none, each single plan's (planner and prompt
style), a few groups of what two or three plans give (each the most of its
group) and the most any number of plans may give; a plan moves a level to the
lowest level at or above the most it may leave (its k-th plan raises the boost
by its rate times ``0.5^k``, and ``k`` plans give at most what ``k`` best plans
give), so a weak plan counts as itself. The tables are numpy arrays, built on
demand; units that read neither ``k`` nor ``p`` (or only one) are grouped once
for every value of the other. The tests check the bound's promise unit by unit
against every canvas of small grammars, and that each tightening made too tight
by a little breaks it.

The first incumbent is the best of the built-in policies' episodes and of a
beam over the units (a few canvases kept a level, by grade and by bound), run
within a CPU budget of its own; the branch and bound's budget starts after it.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass, replace
from itertools import combinations_with_replacement
from typing import Any

import numpy as np

from ..server.core.canvas.canvas import Canvas, Node, node_contribution, render_dsl
from ..server.core.canvas.episode import CanvasTables
from ..server.core.canvas.grade import WEIGHTS
from ..server.core.canvas.operators import (
    CHECKER,
    CONDITIONAL,
    DEFAULT_STYLE,
    ENSEMBLE,
    FORMATTER,
    GRAMMAR,
    LOOP,
    OPERATOR,
    OPERATOR_NAMES,
    PARALLEL,
    PLANNER,
    PROMPT_STYLES,
    REVISER,
    ROLE,
    SOLVER,
    STYLE_LATENCY,
    STYLE_TOKENS,
    Grammar,
)
from ..server.core.canvas.problem import Problem
from ..server.core.canvas.simulator import (
    BLIND_REVISION,
    PLANNER_DECAY,
    REVISE_BREAK,
    REVISION_DECAY,
    UNFORMATTED_CREDIT,
    OperatorParameters,
    _Walk,
    hidden_parameters,
    merge,
    outcome_of,
)
from ..server.core.compiled import CompiledTask
from ..server.core.outcomes import episode_key
from .solver import BEST_FOUND, OPTIMAL, ModelMismatchError, OracleResult, policy_plan, replay

# The built-in policies whose episodes are the first incumbents.
SEED_POLICIES = ("heuristic", "template")

GRID = 48  # the bound's grid over the chance of a right answer
MAX_K = 3  # revision counts from which the bound's fix rate stays that of MAX_K
MAX_P = 3  # plans counted (from MAX_P on, every later plan decays as the MAX_P-th)
BEAM_WIDTH = 6  # the first incumbent's beam: canvases kept per level (by grade, and as many by bound)
BEAM_TRIES = 40  # units tried from each
LADDER = 8  # planning levels beyond single plans: groups of the boosts two or three plans give
# The grade rounds tokens to whole ones and each dimension to 6 decimals: a bound within
# SLACK of the best found cannot be told apart from it.
SLACK = 3e-5
FORMAT_LEVELS = 3  # formatting levels with a bound (see Relaxation.format_level)
INFEASIBLE = -10.0  # the bound of a state no canvas the gate passes can extend

Stats = tuple[bool, bool, bool]  # a solver, a checker, Test


@dataclass(frozen=True, slots=True)
class Unit:
    nodes: tuple[Node, ...]
    stats: tuple[Stats, Stats]  # what the gate counts in it, with no answer before it and with one
    tokens: tuple[float, float, float]  # unconditional, if flagged, if not (per unit of share)
    latency: tuple[float, float, float]


@dataclass(slots=True)
class CanvasOracleResult:
    status: str
    best_score: float
    upper_bound: float
    canvas: Canvas
    plan: list[dict[str, Any]]
    breakdown: dict[str, float]
    seconds: float
    nodes: int

    @property
    def dsl(self) -> str:
        return render_dsl(self.canvas)


# --------------------------------------------------------------------- the grade


def grade_of(
    correctness: float, tokens: float, latency: float, budget: int, latency_limit: float
) -> tuple[float, dict[str, float]]:
    """The grade of an episode that adds a well-formed canvas and finishes with its answer
    (grade.py's arithmetic: one execution, every action valid)."""
    breakdown = {
        "correctness": round(correctness, 6),
        "cost": round(max(0.0, 1.0 - round(tokens) / budget), 6),
        "latency": round(max(0.0, 1.0 - latency / latency_limit), 6),
        "valid_actions": round(1.0, 6),
    }
    score = sum(weight * breakdown[name] for name, weight in WEIGHTS.items())
    return round(min(1.0, max(0.0, score)), 6), breakdown


def edits(canvas: Canvas) -> list[dict[str, Any]]:
    """The actions that build ``canvas`` on an empty one and finish with its answer."""
    plan: list[dict[str, Any]] = []
    for node in canvas:
        action: dict[str, Any] = {"action_type": "add", "operators": list(node.operators)}
        if node.kind != OPERATOR:
            action["structure"] = node.kind
        if node.kind == LOOP:
            action["count"] = node.count
        if node.style != DEFAULT_STYLE:
            action["prompt"] = node.style
        plan.append(action)
    plan.append({"action_type": "finish"})
    return plan


# ------------------------------------------------------------------------ units


def _stats(nodes: tuple[Node, ...]) -> tuple[Stats, Stats]:
    """What the validity gate counts in a unit, with no answer before it and with one."""
    voted = len(nodes) == 2
    return (node_contribution(nodes[0], voted, False)[0], node_contribution(nodes[0], voted, True)[0])


class Units:
    """The units of one instance after exact dominance (see the module docstring)."""

    def __init__(
        self,
        params: dict[str, OperatorParameters],
        grammar: Grammar = GRAMMAR,
        operators: tuple[str, ...] = OPERATOR_NAMES,
        styles: tuple[str, ...] = PROMPT_STYLES,
    ) -> None:
        self.params = params
        self.grammar = grammar
        self.operators = operators
        self.styles = styles
        self.units = self._build()

    def cost(self, name: str, style: str) -> tuple[float, float]:
        p = self.params[name]
        return p.tokens * STYLE_TOKENS[style], p.latency * STYLE_LATENCY[style]

    def key(self, name: str, style: str) -> tuple[Any, ...]:
        """What an operator does under ``style`` (an ensemble outside a vote: nothing)."""
        role = ROLE[name]
        if role == ENSEMBLE:
            return ("nothing",)
        if role == FORMATTER:
            return (name,)
        return (name, self.params[name].styled(style))

    def _build(self) -> list[Unit]:
        g = self.grammar
        ops = self.operators
        acting = tuple(name for name in ops if ROLE[name] != ENSEMBLE)
        solvers = tuple(name for name in ops if ROLE[name] == SOLVER)
        checkers = tuple(name for name in ops if ROLE[name] == CHECKER)
        ensembles = tuple(name for name in ops if ROLE[name] == ENSEMBLE)
        candidates: list[tuple[tuple[Any, ...], Unit]] = []

        def add(
            effect: tuple[Any, ...],
            nodes: tuple[Node, ...],
            names: tuple[str, ...],
            tokens: tuple[float, float, float],
            latency: tuple[float, float, float],
        ) -> None:
            candidates.append((effect, Unit(nodes, _stats(nodes), tokens, latency)))

        effect: tuple[Any, ...]
        names: tuple[str, ...]
        for style in self.styles:
            for name in acting:
                t, lat = self.cost(name, style)
                add(
                    ("op", self.key(name, style)),
                    (Node(OPERATOR, (name,), 1, style),),
                    (name,),
                    (t, 0.0, 0.0),
                    (lat, 0.0, 0.0),
                )
            # Loops (no ensemble in a body: it would only cost).
            for size in range(1, g.max_loop_body + 1):
                for body in _tuples(acting, size):
                    t = sum(self.cost(name, style)[0] for name in body)
                    lat = sum(self.cost(name, style)[1] for name in body)
                    for count in range(g.min_loop_count, g.max_loop_count + 1):
                        effect = ("loop", tuple(self.key(name, style) for name in body), count)
                        add(
                            effect,
                            (Node(LOOP, body, count, style),),
                            body,
                            (t * count, 0.0, 0.0),
                            (lat * count, 0.0, 0.0),
                        )
            # Conditionals (an ensemble branch: nothing done).
            branch_options = acting + ensembles
            for check in checkers:
                tc, lc = self.cost(check, style)
                for if_flagged in branch_options:
                    tf, lf = self.cost(if_flagged, style)
                    for otherwise in branch_options:
                        to, lo = self.cost(otherwise, style)
                        effect = ("if", self.key(check, style), self.key(if_flagged, style), self.key(otherwise, style))
                        names = (check, if_flagged, otherwise)
                        add(effect, (Node(CONDITIONAL, names, 1, style),), names, (tc, tf, to), (lc, lf, lo))
            # A parallel structure without a vote: its first branch acts, and only it counts for the
            # gate; the others cost (so the plain operator beats it: the same effect, fewer tokens).
            # A vote: two or more solvers (other branches act on nothing: only padding up to the
            # grammar's narrowest structure), then an ensemble.
            padding = tuple(name for name in acting if ROLE[name] != SOLVER)
            for voters in range(2, g.max_parallel + 1):
                for group in combinations_with_replacement(solvers, voters):
                    short = max(0, g.min_parallel - voters)
                    options: list[tuple[str, ...]] = list(combinations_with_replacement(padding, short))
                    for extra in options:
                        names = (*group, *extra)
                        rates = tuple(sorted(self.params[name].styled(style) for name in group))
                        t = sum(self.cost(name, style)[0] for name in names)
                        lat = max(self.cost(name, style)[1] for name in names)
                        for ensemble in ensembles:
                            for ens_style in self.styles:
                                te, le = self.cost(ensemble, ens_style)
                                aggregate = ROLE[ensemble] == ENSEMBLE and ensemble == "Aggregate"
                                pick = self.params[ensemble].styled(ens_style) if aggregate else 0.0
                                nodes = (Node(PARALLEL, names, 1, style), Node(OPERATOR, (ensemble,), 1, ens_style))
                                effect = ("vote", rates, aggregate, pick)
                                add(effect, nodes, names, (t + te, 0.0, 0.0), (lat + le, 0.0, 0.0))
        return _pareto(candidates)


def _tuples(names: tuple[str, ...], size: int) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for _ in range(size):
        out = [(*prefix, name) for prefix in out for name in names]
    return out


def _pareto(candidates: list[tuple[tuple[Any, ...], Unit]]) -> list[Unit]:
    """Drop every unit that another with the same effect and size beats (or ties, earlier)."""
    groups: dict[tuple[Any, ...], list[Unit]] = {}
    for effect, unit in candidates:
        groups.setdefault((effect, len(unit.nodes)), []).append(unit)
    kept: list[Unit] = []
    for units in groups.values():
        front: list[Unit] = []
        for unit in units:
            if any(_beats(other, unit) for other in front):
                continue
            front = [other for other in front if not _beats(unit, other)]
            front.append(unit)
        kept.extend(front)
    return kept


def _beats(a: Unit, b: Unit) -> bool:
    return (
        all(x >= y for sa, sb in zip(a.stats, b.stats, strict=True) for x, y in zip(sa, sb, strict=True))
        and all(x <= y for x, y in zip(a.tokens, b.tokens, strict=True))
        and all(x <= y for x, y in zip(a.latency, b.latency, strict=True))
    )


# ---------------------------------------------------------------------- search


class CanvasOracle:
    def __init__(
        self,
        problem: Problem,
        params: dict[str, OperatorParameters],
        budget: int,
        latency_limit: float,
        grammar: Grammar = GRAMMAR,
        operators: tuple[str, ...] = OPERATOR_NAMES,
        styles: tuple[str, ...] = PROMPT_STYLES,
    ) -> None:
        self.problem = problem
        self.params = params
        self.budget = budget
        self.latency_limit = latency_limit
        self.grammar = grammar
        self.units = Units(params, grammar, operators, styles).units
        self.needs_test = problem.problem_type == "code" and problem.has_tests
        self.relax = Relaxation(self)
        self.best_score = -1.0
        self.best_canvas: Canvas = ()
        self.best_breakdown: dict[str, float] = {}
        self.expanded = 0

    def well_formed(self, stats: Stats) -> bool:
        return stats[0] and stats[1] and (stats[2] or not self.needs_test)

    def step(self, walks: list[_Walk], unit: Unit) -> list[_Walk]:
        nodes = unit.nodes
        for i in range(len(nodes)):
            parts: list[_Walk] = []
            for walk in walks:
                parts.extend(walk.step(nodes, i))
            walks = merge(parts)
        return walks

    def solve(
        self, seconds: float = 60.0, incumbent: tuple[float, list[dict[str, Any]]] | None = None
    ) -> CanvasOracleResult:
        """The best canvas within ``seconds`` of CPU time (``incumbent``: a score and the
        plan that earns it, to beat; the result's plan when nothing beats it)."""
        start = time.process_time()
        if incumbent is not None:
            self.best_score = incumbent[0]
        # The beam has a budget of its own: the search's starts after it.
        self.deadline = start + seconds
        self.timed_out = False
        self.open_bound = -1.0
        self.beam()
        self.deadline = time.process_time() + seconds
        self.expanded = 0
        self.search([_Walk(self.params, self.problem, None)], (False, False, False), ())
        elapsed = time.process_time() - start
        status = BEST_FOUND if self.timed_out else OPTIMAL
        upper = max(self.best_score, self.open_bound + SLACK) if self.timed_out else self.best_score
        plan = edits(self.best_canvas) if self.best_canvas or incumbent is None else incumbent[1]
        return CanvasOracleResult(
            status,
            self.best_score,
            round(upper, 6),
            self.best_canvas,
            plan,
            self.best_breakdown,
            round(elapsed, 3),
            self.expanded,
        )

    def visit(self, walks: list[_Walk], stats: Stats, canvas: Canvas) -> list[tuple[float, Unit]]:
        """Grade ``canvas`` (the walks after it) as a finished one, and the units that may extend
        it to something better than the best so far, with their bounds, highest first."""
        self.expanded += 1
        outcome = outcome_of(walks)
        tokens, latency = outcome.tokens, outcome.latency
        if canvas and self.well_formed(stats) and round(tokens) <= self.budget:
            score, breakdown = grade_of(outcome.correctness, tokens, latency, self.budget, self.latency_limit)
            if score > self.best_score:
                self.best_score, self.best_canvas, self.best_breakdown = score, canvas, breakdown
        left = self.grammar.max_nodes - len(canvas)
        if left <= 0:
            return []
        right = sum(w.cells[4] + w.cells[5] + w.cells[6] + w.cells[7] for w in walks if w.has_answer)
        k = min(w.revisions for w in walks)
        relax = self.relax
        p = relax.level(max(w.boost for w in walks))
        answered = any(w.has_answer for w in walks)
        g = stats[2] if self.needs_test else stats[1]
        base = 0.2 * (1.0 - tokens / self.budget) + 0.1
        room = max(0.0, 1.0 - latency / self.latency_limit)
        found = relax.children(
            left, k, p, answered, g, relax.format_level(walks), right, room, base, self.best_score - SLACK
        )
        return [(bound, self.units[index]) for bound, index in found]

    def extend(self, walks: list[_Walk], stats: Stats, unit: Unit) -> tuple[list[_Walk], Stats]:
        """The walks and the gate's counts after ``unit``."""
        answered = any(w.has_answer for w in walks)
        child = self.step([w.fork(list(w.cells), True) for w in walks], unit)
        counted = unit.stats[answered]
        return child, (stats[0] or counted[0], stats[1] or counted[1], stats[2] or counted[2])

    def beam(self, width: int = BEAM_WIDTH, tries: int = BEAM_TRIES) -> None:
        """A first incumbent: a beam over the units, level by level, the ``tries`` best bounded
        units of each of the ``width`` canvases kept (those whose finished grade is highest,
        well-formed or not, and those with the highest bound)."""
        level: list[tuple[list[_Walk], Stats, Canvas]] = [([_Walk(self.params, self.problem, None)], (False,) * 3, ())]
        while level and time.process_time() < self.deadline:
            scored: list[tuple[float, float, int, tuple[list[_Walk], Stats, Canvas]]] = []
            for walks, stats, canvas in level:
                for bound, unit in self.visit(walks, stats, canvas)[:tries]:
                    child, counted = self.extend(walks, stats, unit)
                    outcome = outcome_of(child)
                    now = grade_of(
                        outcome.correctness, outcome.tokens, outcome.latency, self.budget, self.latency_limit
                    )
                    scored.append((now[0], bound, len(scored), (child, counted, (*canvas, *unit.nodes))))
            by_grade = sorted(scored, key=lambda item: (-item[0], item[2]))[:width]
            by_bound = sorted(scored, key=lambda item: (-item[1], item[2]))[:width]
            seen: set[int] = set()
            level = []
            for item in (*by_grade, *by_bound):
                if item[2] not in seen:
                    seen.add(item[2])
                    level.append(item[3])

    def search(self, walks: list[_Walk], stats: Stats, canvas: Canvas) -> None:
        for bound, unit in self.visit(walks, stats, canvas):
            if bound + SLACK <= self.best_score:
                break
            if time.process_time() > self.deadline:
                self.timed_out = True
                self.open_bound = max(self.open_bound, bound)
                continue
            child, union = self.extend(walks, stats, unit)
            self.search(child, union, (*canvas, *unit.nodes))


# ------------------------------------------------------------------- the bound


class Relaxation:
    """``bound(r, k, p, c)``: see the module docstring. Every unit's ``(a, b)`` at
    ``(k, p)``, its fewest tokens, and the ``(k, p)`` after it."""

    def __init__(self, oracle: CanvasOracle) -> None:
        self.oracle = oracle
        params = oracle.params
        self.params = params
        self.planners = [name for name in OPERATOR_NAMES if ROLE[name] == PLANNER]
        self.plan_memo: dict[tuple[int, float], int] = {}
        self.ladder = self._ladder()
        checkers = [name for name in OPERATOR_NAMES if ROLE[name] == CHECKER]
        self.caught = max(
            max(params[name].styled(style) for name in checkers for style in PROMPT_STYLES), BLIND_REVISION
        )
        self.transitions: dict[
            tuple[int, int, int, bool], tuple[float, float, int, int, bool, float, float, float, float]
        ] = {}
        self.memo: dict[tuple[int, int, int, bool, bool, int], Any] = {}
        self.group_memo: dict[tuple[int, int, bool], list[Group]] = {}
        self.class_memo: dict[tuple[bool, bool, int, int, bool], list[Group]] = {}
        self.move_memo: dict[tuple[int, int, bool, bool, int], list[Move]] = {}
        self.grid = np.linspace(0.0, 1.0, GRID + 1)
        # Formatting levels (a verbose problem's unformatted right answer counts half): level n below
        # the top, at least keep^n of the right answers unformatted; the top, no bound.
        self.keep = 1.0 - params["Format"].quality if "Format" in params else 1.0
        if oracle.problem.verbose:
            self.factors = [1.0 - UNFORMATTED_CREDIT * self.keep**n for n in range(FORMAT_LEVELS)] + [1.0]
        else:
            self.factors = [1.0]
        # Per unit, with no answer before it and with one: the gate's bit it sets and the formatting map.
        units = oracle.units
        self.bits = [
            [bool(unit.stats[answered][2 if oracle.needs_test else 1]) for unit in units] for answered in (0, 1)
        ]
        levels = range(len(self.factors))
        self.fmaps = [
            [tuple(self.format_after(index, bool(answered), f) for f in levels) for index in range(len(units))]
            for answered in (0, 1)
        ]
        self.walk = _Walk(params, oracle.problem, None)
        self.votes: dict[tuple[tuple[float, ...], Node], float] = {}
        self.reads = [
            (
                any(ROLE[name] == REVISER for node in unit.nodes for name in node.operators),
                any(ROLE[name] in (SOLVER, PLANNER) for node in unit.nodes for name in node.operators),
            )
            for unit in oracle.units
        ]
        self.classes: dict[tuple[bool, bool], list[int]] = {}
        for index, reads in enumerate(self.reads):
            self.classes.setdefault(reads, []).append(index)
        for reads in ((False, False), (True, False), (False, True), (True, True)):
            self.classes.setdefault(reads, [])

    def _ladder(self) -> list[float]:
        """The planning levels: no boost, every boost one plan gives, a few that two or three
        plans give (the most of each group), and the most any number of plans may give."""
        rates = sorted({self.params[name].styled(style) for name in self.planners for style in PROMPT_STYLES})
        best = rates[-1] if rates else 0.0
        # most[n]: the most boost n plans give (the best plan every time).
        self.most = [0.0]
        for n in range(MAX_P):
            self.most.append(1.0 - (1.0 - self.most[-1]) * (1.0 - best * PLANNER_DECAY**n))
        top = self.most[-1]
        for n in range(MAX_P, 64):
            top = 1.0 - (1.0 - top) * (1.0 - best * PLANNER_DECAY**n)
        self.top = min(1.0, top + 1e-12)
        singles = [self.after(0.0, rate) for rate in rates]
        more = set(singles)
        frontier = list(singles)
        for _ in range(2):
            frontier = [self.after(value, rate) for value in frontier for rate in rates]
            more.update(frontier)
        rest = sorted(value for value in more if value not in singles and value < self.top)
        groups = [rest[i * len(rest) // LADDER : (i + 1) * len(rest) // LADDER] for i in range(LADDER)]
        return sorted({0.0, *singles, *(group[-1] for group in groups if group), self.top})

    def after(self, boost: float, rate: float) -> float:
        """The most boost a plan of ``rate`` leaves on a part whose boost is at most ``boost``
        (its k-th plan raises it by ``rate * 0.5^k``, and k plans give at most ``most[k]``)."""
        found = 0.0
        for n, most in enumerate(self.most):
            decay = PLANNER_DECAY ** min(n, MAX_P)
            start = min(boost, most) if n < MAX_P else boost
            found = max(found, 1.0 - (1.0 - start) * (1.0 - rate * decay))
        return min(self.top, found)

    def level(self, boost: float) -> int:
        """The planning state of a boost: the lowest level at or above it."""
        return min(bisect_left(self.ladder, boost - 1e-12), len(self.ladder) - 1)

    def plan(self, p: int, rate: float) -> int:
        """The planning state after a planner of ``rate``."""
        found = self.plan_memo.get((p, rate))
        if found is None:
            found = self.plan_memo[(p, rate)] = self.level(self.after(self.ladder[p], rate))
        return found

    def op(
        self, name: str, style: str, k: int, p: int, answered: bool, flagged: bool | None
    ) -> tuple[float, float, int, int, bool]:
        """``(a, b)`` of one call, and ``k``, ``p`` and whether there is an answer after it;
        ``flagged``: in a conditional's branch, the part it runs on."""
        role = ROLE[name]
        params = self.params[name]
        if role == SOLVER:
            q = params.styled(style)
            q = q + (1.0 - q) * self.ladder[p]
            return q, q, k, p, True
        if role == PLANNER:
            return 1.0, 0.0, k, self.plan(p, params.styled(style)), answered
        if role == REVISER and answered:
            fix = params.styled(style) * REVISION_DECAY ** min(k, MAX_K)
            # A revision in a branch counts for that branch's part like any other.
            if flagged is False:
                return 1.0, 0.0, min(MAX_K, k + 1), p, answered
            if flagged:
                return 1.0 - REVISE_BREAK, fix, min(MAX_K, k + 1), p, answered
            # Checked: the flagged wrong answers (at most the best true positive rate); else blind.
            return 1.0, fix * self.caught, min(MAX_K, k + 1), p, answered
        return 1.0, 0.0, k, p, answered

    @staticmethod
    def branches(cost: tuple[float, float, float], tpr: float, fpr: float) -> tuple[float, float]:
        """A conditional's branches' cost (``cost[1]`` if flagged, ``cost[2]`` if not, per unit of
        share) at ``c = 0`` and its slope in ``c``: the flagged share is ``tpr + c (fpr - tpr)``,
        affine in ``c``. The relaxation's ``c`` is at least the canvas's, so the slope is kept only
        where it is negative (paying less); else the least, at ``c = 0``."""
        return cost[2] + (cost[1] - cost[2]) * tpr, min(0.0, (cost[1] - cost[2]) * (fpr - tpr))

    def _transition(
        self, index: int, k: int, p: int, answered: bool
    ) -> tuple[float, float, int, int, bool, float, float, float, float]:
        key = (index, k, p, answered)
        found = self.transitions.get(key)
        if found is not None:
            return found
        unit = self.oracle.units[index]
        a, b = 1.0, 0.0  # P(right after | right now), P(right after | wrong now)
        tokens, latency = unit.tokens[0], unit.latency[0]
        tokens_slope = latency_slope = 0.0  # the cost at c: tokens + tokens_slope * c

        def then(alpha: float, beta: float) -> None:
            nonlocal a, b
            a, b = a * alpha + (1.0 - a) * beta, b * alpha + (1.0 - b) * beta

        nodes = unit.nodes
        head = nodes[0]
        if len(nodes) == 2:  # a vote
            rates = []
            for name in head.operators:
                if ROLE[name] == SOLVER:
                    q = self.params[name].styled(head.style)
                    rates.append(q + (1.0 - q) * self.ladder[p])
            vote_key = (tuple(rates), nodes[1])
            v = self.votes.get(vote_key)
            if v is None:
                v = self.votes[vote_key] = self.walk.vote(rates, nodes[1])
            then(v, v)
            answered = True
        elif head.kind in (OPERATOR, PARALLEL):
            alpha, beta, k, p, answered = self.op(head.operators[0], head.style, k, p, answered, None)
            then(alpha, beta)
        elif head.kind == LOOP:
            for _ in range(head.count):
                for name in head.operators:
                    alpha, beta, k, p, answered = self.op(name, head.style, k, p, answered, None)
                    then(alpha, beta)
        else:
            check, if_flagged, otherwise = head.operators
            if not answered:
                # Nothing to check: all of it takes the other branch.
                alpha, beta, k, p, answered = self.op(otherwise, head.style, k, p, answered, None)
                then(alpha, beta)
                tokens += unit.tokens[2]
                latency += unit.latency[2]
            else:
                params = self.params[check]
                tpr, fpr = params.styled(head.style), params.false_positive
                at, bt, kt, pt, _ = self.op(if_flagged, head.style, k, p, True, True)
                ao, bo, ko, po, _ = self.op(otherwise, head.style, k, p, True, False)
                then(fpr * at + (1.0 - fpr) * ao, tpr * bt + (1.0 - tpr) * bo)
                # The parts: the fewest revisions and the highest boost.
                k = min(kt, ko)
                p = max(pt, po)
                branch_tokens, tokens_slope = self.branches(unit.tokens, tpr, fpr)
                branch_latency, latency_slope = self.branches(unit.latency, tpr, fpr)
                tokens += branch_tokens
                latency += branch_latency
        if a < b:
            a = b = max(a, b)
        found = self.transitions[key] = (a, b, k, p, answered, tokens, latency, tokens_slope, latency_slope)
        return found

    def format_after(self, index: int, answered: bool, f: int) -> int:
        """The formatting level after unit ``index`` (see :meth:`factor`)."""
        top = len(self.factors) - 1
        if top == 0:
            return 0
        nodes = self.oracle.units[index].nodes
        head = nodes[0]

        def op(name: str, f: int, answered: bool) -> tuple[int, bool]:
            role = ROLE[name]
            if role == SOLVER:
                return 0, True
            if role == FORMATTER and answered:
                return min(top, f + 1), answered
            return f, answered

        if len(nodes) == 2:  # a vote: a fresh answer
            return 0
        if head.kind in (OPERATOR, PARALLEL):
            return op(head.operators[0], f, answered)[0]
        if head.kind == LOOP:
            for _ in range(head.count):
                for name in head.operators:
                    f, answered = op(name, f, answered)
            return f
        _, if_flagged, otherwise = head.operators
        if not answered:
            return op(otherwise, f, answered)[0]
        # The parts: the unformatted share of the right answers is at least the least of theirs.
        return max(op(if_flagged, f, True)[0], op(otherwise, f, True)[0])

    def format_level(self, walks: list[_Walk]) -> int:
        """The formatting level of a mixture: the highest of its parts' (a part without right
        answers: 0, since every right answer it gets later is a fresh, unformatted one)."""
        top = len(self.factors) - 1
        level = 0
        for walk in walks:
            cells = walk.cells
            right = cells[4] + cells[5] + cells[6] + cells[7]
            if not walk.has_answer or right <= 0.0:
                continue
            share = (cells[4] + cells[6]) / right  # unformatted
            n = 0
            while n < top and share < self.keep**n * (1.0 - 1e-9):
                n += 1
            level = max(level, n)
        return level

    def groups(self, k: int, p: int, answered: bool) -> list[Group]:
        """Every unit's move from ``(k, p, answered)``, by size and state after (the gate's bit and
        the formatting map included): their ``(a, b)``, tokens and latency as arrays. The units that
        read neither ``k`` nor ``p`` (or only one) are grouped once for every value of the other."""
        key = (k, p, answered)
        found = self.group_memo.get(key)
        if found is not None:
            return found
        found = []
        for reads_k, reads_p in ((False, False), (True, False), (False, True), (True, True)):
            for group in self._groups(reads_k, reads_p, k if reads_k else 0, p if reads_p else 0, answered):
                if not (reads_k and reads_p):
                    group = replace(group, k=group.k if reads_k else k, p=group.p if reads_p else p)
                found.append(group)
        self.group_memo[key] = found
        return found

    def _groups(self, reads_k: bool, reads_p: bool, k: int, p: int, answered: bool) -> list[Group]:
        key = (reads_k, reads_p, k, p, answered)
        found = self.class_memo.get(key)
        if found is not None:
            return found
        by_key: dict[tuple[Any, ...], list[tuple[int, float, float, float, float, float, float]]] = {}
        bits, fmaps = self.bits[answered], self.fmaps[answered]
        units = self.oracle.units
        for index in self.classes[(reads_k, reads_p)]:
            a, b, k2, p2, answered2, tokens, latency, tokens_slope, latency_slope = self._transition(
                index, k, p, answered
            )
            by_key.setdefault((len(units[index].nodes), k2, p2, answered2, bits[index], fmaps[index]), []).append(
                (index, a, b, tokens, latency, tokens_slope, latency_slope)
            )
        found = []
        budget, limit = self.oracle.budget, self.oracle.latency_limit
        for (size, k2, p2, answered2, bit, fmap), rows in by_key.items():
            columns = np.array(rows).T
            idx = columns[0].astype(np.int64)
            a, b = columns[1], columns[2]
            tok, lat = 0.2 * columns[3] / budget, 0.1 * columns[4] / limit
            tok_slope, lat_slope = 0.2 * columns[5] / budget, 0.1 * columns[6] / limit
            found.append(
                Group(size, k2, p2, answered2, bit, fmap, idx, a, b, tok, lat, tok_slope, lat_slope, _front(columns))
            )
        self.class_memo[key] = found
        return found

    def moves(self, k: int, p: int, answered: bool, g: bool, f: int) -> list[Move]:
        """The table's moves from a state: the groups' units no other beats, by state after."""
        key = (k, p, answered, g, f)
        found = self.move_memo.get(key)
        if found is not None:
            return found
        by_target: dict[tuple[int, int, int, bool, bool, int], list[Group]] = {}
        for group in self.groups(k, p, answered):
            target = (group.size, group.k, group.p, group.answered, g or group.bit, group.fmap[f])
            by_target.setdefault(target, []).append(group)
        found = []
        for (size, k2, p2, answered2, g2, f2), groups in by_target.items():
            keep = [group.keep for group in groups]
            a = np.concatenate([group.a[i] for group, i in zip(groups, keep, strict=True)])
            b = np.concatenate([group.b[i] for group, i in zip(groups, keep, strict=True)])
            tok = np.concatenate([group.tokens[i] for group, i in zip(groups, keep, strict=True)])
            lat = np.concatenate([group.latency[i] for group, i in zip(groups, keep, strict=True)])
            tok_slope = np.concatenate([group.tokens_slope[i] for group, i in zip(groups, keep, strict=True)])
            lat_slope = np.concatenate([group.latency_slope[i] for group, i in zip(groups, keep, strict=True)])
            x = b[:, None] + (a - b)[:, None] * self.grid[None, :]
            timed = (tok + lat)[:, None] + (tok_slope + lat_slope)[:, None] * self.grid[None, :]
            untimed = tok[:, None] + tok_slope[:, None] * self.grid[None, :]
            found.append(Move(size, (k2, p2, answered2, g2, f2), x, timed, untimed))
        found.sort(key=lambda move: move.size)
        self.move_memo[key] = found
        return found

    def table(self, left: int, k: int, p: int, answered: bool, g: bool, f: int) -> Any:
        """``bound(left, k, p, c)`` at ``c = i / GRID``, with the latency term (row 0) and without
        (row 1), for a canvas whose gate bit is ``g`` and formatting level ``f``: a convex, increasing
        function of ``c`` (a maximum of affine ones), so the chord between grid points bounds it."""
        key = (left, k, p, answered, g, f)
        found = self.memo.get(key)
        if found is not None:
            return found
        if answered and g:
            stop = 0.6 * self.factors[f] * self.grid
            values = np.stack([stop, stop])
        else:
            values = np.full((2, GRID + 1), INFEASIBLE)
        if left > 0:
            grid = self.grid
            for move in self.moves(k, p, answered, g, f):
                if move.size > left:
                    break
                sub = self.table(left - move.size, *move.state)
                if sub[0, -1] <= INFEASIBLE / 2:
                    continue
                timed = (_chord(move.x, grid, sub[0]) - move.timed).max(axis=0)
                untimed = (_chord(move.x, grid, sub[1]) - move.untimed).max(axis=0)
                np.maximum(values[0], timed, out=values[0])
                np.maximum(values[1], untimed, out=values[1])
        self.memo[key] = values
        return values

    def children(
        self,
        left: int,
        k: int,
        p: int,
        answered: bool,
        g: bool,
        f: int,
        right: float,
        room: float,
        base: float,
        floor: float,
    ) -> list[tuple[float, int]]:
        """The units whose bound (``base`` plus the most ``0.6 correctness - 0.2 tokens / budget + 0.1
        latency score`` may reach after them; ``room``: the latency score the prefix leaves) is above
        ``floor``, highest first."""
        out: list[tuple[float, int]] = []
        for group in self.groups(k, p, answered):
            if group.size > left:
                continue
            sub = self.table(left - group.size, group.k, group.p, group.answered, g or group.bit, group.fmap[f])
            if sub[0, -1] <= INFEASIBLE / 2:
                continue
            x = group.b + (group.a - group.b) * right
            tokens = group.tokens + group.tokens_slope * right
            bound = np.maximum(
                _chord(x, self.grid, sub[0]) - tokens - group.latency - group.latency_slope * right + 0.1 * room,
                _chord(x, self.grid, sub[1]) - tokens,
            )
            bound += base
            chosen = np.nonzero(bound > floor)[0]
            if len(chosen):
                out.extend(zip(bound[chosen].tolist(), group.index[chosen].tolist(), strict=True))
        out.sort(key=lambda item: -item[0])
        return out


def _chord(x: Any, grid: Any, values: Any) -> Any:
    """A table's value at ``x`` by the chord between its grid points (a bound: the table is convex)."""
    return np.interp(x, grid, values)


def _front(columns: Any) -> Any:
    """The rows (index, a, b, tokens, latency, their slopes) no other beats: at least as high an
    ``a`` and ``b``, no more tokens or latency at ``c = 0`` nor at ``c = 1`` (ties: the first)."""
    better = np.stack(
        [columns[1], columns[2], -columns[3], -(columns[3] + columns[5]), -columns[4], -(columns[4] + columns[6])]
    )
    n = better.shape[1]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    weak = (better[:, :, None] >= better[:, None, :]).all(axis=0)  # weak[j, i]: j at least as good as i
    strict = (better[:, :, None] > better[:, None, :]).any(axis=0)
    earlier = np.arange(n)[:, None] < np.arange(n)[None, :]
    beaten = (weak & (strict | earlier)).any(axis=0)
    return np.nonzero(~beaten)[0]


@dataclass(frozen=True, slots=True)
class Move:
    """The table's moves to one state (see ``Relaxation.moves``): per move and grid point, the
    chance of a right answer after it and its cost with latency and without."""

    size: int
    state: tuple[int, int, bool, bool, int]
    x: Any
    timed: Any
    untimed: Any


@dataclass(frozen=True, slots=True)
class Group:
    """Units with the same size and state after them, from one state (see ``Relaxation.groups``)."""

    size: int
    k: int
    p: int
    answered: bool
    bit: bool
    fmap: tuple[int, ...]
    index: Any  # the units' indices
    a: Any
    b: Any
    tokens: Any  # 0.2 tokens / budget
    latency: Any  # 0.1 latency / latency limit
    tokens_slope: Any  # in c, the chance of a right answer before the unit
    latency_slope: Any
    keep: Any  # those no other in the group beats


def oracle_for(compiled: CompiledTask, seed: int, **options: Any) -> CanvasOracle:
    """The oracle of a canvas task's (unsealed) episode at ``seed``: its hidden parameters."""
    tables: CanvasTables = compiled.tables
    key = episode_key(compiled.spec.task_id, seed)
    params = hidden_parameters(tables.problem, key)
    return CanvasOracle(tables.problem, params, tables.budget, tables.latency_limit, **options)


def solve_canvas(compiled: CompiledTask, seed: int, seconds: float = 10.0) -> OracleResult:
    """The best expected grade of a canvas task at ``seed``, replayed through a real episode."""
    started = time.perf_counter()
    incumbent: tuple[float, list[dict[str, Any]]] | None = None
    for name in SEED_POLICIES:
        plan = policy_plan(compiled, seed, name)
        score = replay(compiled, seed, plan)[0]["score"]
        if incumbent is None or score > incumbent[0]:
            incumbent = (score, plan)
    result = oracle_for(compiled, seed).solve(seconds, incumbent)
    grade = replay(compiled, seed, result.plan)[0]
    if grade["score"] != result.best_score:
        raise ModelMismatchError(
            f"{compiled.spec.task_id} seed {seed}: the oracle scored {result.dsl!r} {result.best_score}, "
            f"its replay {grade['score']}"
        )
    return OracleResult(
        task_id=compiled.spec.task_id,
        seed=seed,
        status=result.status,
        best_score=grade["score"],
        upper_bound=max(result.upper_bound, grade["score"]),
        plan=result.plan,
        seconds=time.perf_counter() - started,
        nodes=result.nodes,
        breakdown=grade["breakdown"],
        method="canvas_branch_and_bound",
    )
