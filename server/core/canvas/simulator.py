"""The simulated executor: what a canvas does to a problem, from seeded hidden
per-instance operator parameters.

Hidden parameters (:func:`hidden_parameters`, drawn from the episode's key, so
sealed by the outcome secret like the other families' hidden facts): per
operator a quality (a solver's chance of a right answer, a planner's boost, a
checker's true positive rate, a reviser's fix rate, an aggregator's pick
rate), a checker's false positive rate, a token cost and a latency around the
public catalogue's, and the quality a prompt style adds or takes away.

The answer's state is a distribution over (correct, flagged, formatted); each
operator maps it linearly:

* a solver writes a fresh answer, right with ``q + (1 - q) * boost``;
* a planner raises ``boost`` for the solvers after it (the k-th planner by
  ``b * 0.5^k``: diminishing);
* a checker flags a wrong answer with its true positive rate and a right one
  with its false positive rate (``Test`` on code with tests: the truth);
* a reviser fixes a flagged wrong answer with ``r * 0.6^k`` (the k-th
  revision: loops have diminishing returns) and breaks a flagged right one
  with a small rate; after no check it revises blind (a third of the fixes);
* a parallel structure's solver branches are independent samples: an
  ensemble right after it votes (plurality; wrong answers differ, ties are
  drawn), ``Aggregate`` also picks a right sample the vote missed with its
  rate; without an ensemble only the first branch counts;
* ``C ? T : F`` runs ``T`` on the flagged part and ``F`` on the rest; each
  part keeps what its branch did to the context (the exact expectation is a
  mixture of the parts, one per context);
* ``Format`` formats; a verbose problem's unformatted right answer counts half.

:meth:`SimulatedExecutor.expected` is the exact expected correctness, tokens
and latency of a canvas (what the grade reads); :meth:`SimulatedExecutor.execute`
draws one realisation for the feedback, seeded by the episode's key and the
canvas, so re-executing an unchanged canvas gives the same result.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from itertools import product
from typing import Protocol

from .canvas import Canvas, Node, render_dsl
from .operators import (
    CHECKER,
    CONDITIONAL,
    ENSEMBLE,
    FORMATTER,
    LOOP,
    OPERATOR,
    OPERATORS,
    PARALLEL,
    PLANNER,
    REVISER,
    ROLE,
    SOLVER,
    STYLE_LATENCY,
    STYLE_TOKENS,
)
from .problem import Problem

SOLVER_QUALITY: dict[str, dict[str, float]] = {
    "AnswerGenerate": {"math": 0.55, "code": 0.35, "qa": 0.6},
    "Programmer": {"math": 0.7, "code": 0.6, "qa": 0.2},
    "Custom": {"math": 0.5, "code": 0.45, "qa": 0.55},
}
DIFFICULTY_SHIFT: dict[str, float] = {"easy": 0.15, "medium": 0.0, "hard": -0.2}
PLANNER_BOOST: dict[str, dict[str, float]] = {
    "Plan": {"math": 0.3, "code": 0.25, "qa": 0.15},
    "Decompose": {"math": 0.2, "code": 0.2, "qa": 0.35},
}
PLANNER_SCALE: dict[str, float] = {"easy": 0.6, "medium": 1.0, "hard": 1.3}
# (true positive rate, false positive rate) by problem type.
CHECKER_RATES: dict[str, dict[str, tuple[float, float]]] = {
    "Review": {"math": (0.55, 0.15), "code": (0.5, 0.15), "qa": (0.55, 0.15)},
    "Verify": {"math": (0.75, 0.1), "code": (0.5, 0.1), "qa": (0.6, 0.12)},
    "Test": {"math": (0.25, 0.1), "code": (0.3, 0.1), "qa": (0.25, 0.1)},
}
REVISE_FIX: dict[str, float] = {"math": 0.55, "code": 0.5, "qa": 0.45}
REVISE_BREAK = 0.06
BLIND_REVISION = 1 / 3
REVISION_DECAY = 0.6
PLANNER_DECAY = 0.5
AGGREGATE_PICK = 0.35
FORMAT_QUALITY = 0.97
UNFORMATTED_CREDIT = 0.5
STEP_GAIN: dict[str, float] = {"easy": 0.5, "medium": 1.0, "hard": 1.5}

# Cells of the answer's state: index correct * 4 + flagged * 2 + formatted.
CELLS = 8


@dataclass(frozen=True, slots=True)
class OperatorParameters:
    quality: float  # the role's main rate (see the module docstring)
    false_positive: float  # checkers only
    tokens: float
    latency: float
    step_gain: float  # step_by_step: quality + (1 - quality) * step_gain
    concise_loss: float  # concise: quality * (1 - concise_loss)

    def styled(self, style: str) -> float:
        if style == "step_by_step":
            return self.quality + (1.0 - self.quality) * self.step_gain
        if style == "concise":
            return self.quality * (1.0 - self.concise_loss)
        return self.quality


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def hidden_parameters(problem: Problem, key: int) -> dict[str, OperatorParameters]:
    """Every operator's hidden parameters for one instance (``key``: the episode's)."""
    rng = random.Random(key ^ 0x6A09E667F3BCC908)
    kind, level = problem.problem_type, problem.difficulty
    params: dict[str, OperatorParameters] = {}
    for op in OPERATORS:
        noise = rng.uniform(-0.08, 0.08)
        fp_noise = rng.uniform(-0.04, 0.04)
        tokens = round(op.tokens * rng.uniform(0.8, 1.25))
        latency = round(op.latency * rng.uniform(0.8, 1.25), 2)
        gain = rng.uniform(0.0, 0.2) * STEP_GAIN[level]
        loss = rng.uniform(0.0, 0.1)
        false_positive = 0.0
        if op.role == SOLVER:
            quality = _clamp(SOLVER_QUALITY[op.name][kind] + DIFFICULTY_SHIFT[level] + noise, 0.02, 0.98)
        elif op.role == PLANNER:
            quality = _clamp(PLANNER_BOOST[op.name][kind] * PLANNER_SCALE[level] + noise / 2, 0.0, 0.9)
        elif op.role == CHECKER:
            if op.name == "Test" and kind == "code" and problem.has_tests:
                quality, false_positive, gain, loss = 1.0, 0.0, 0.0, 0.0
            else:
                tpr, fpr = CHECKER_RATES[op.name][kind]
                quality = _clamp(tpr + noise, 0.05, 0.98)
                false_positive = _clamp(fpr + fp_noise, 0.0, 0.5)
        elif op.role == REVISER:
            quality = _clamp(REVISE_FIX[kind] + noise, 0.05, 0.95)
        elif op.role == ENSEMBLE:
            quality = _clamp(AGGREGATE_PICK + noise, 0.0, 0.9) if op.name == "Aggregate" else 0.0
        else:
            quality, gain, loss = FORMAT_QUALITY, 0.0, 0.0
        params[op.name] = OperatorParameters(quality, false_positive, tokens, latency, gain, loss)
    return params


# ---------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Expected:
    """A canvas's exact expected outcome under the hidden parameters."""

    correctness: float
    tokens: float
    latency: float


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution of a canvas, as an executor reports it."""

    dsl: str
    answer: str | None
    correct: bool  # whether ``answer`` is right (hidden from the policy)
    verdict: str  # what the workflow's own checks said (shown)
    tokens: int
    latency: float
    outputs: tuple[str, ...]  # one line per top-level node
    expected_correctness: float | None = None  # the simulated executor's exact expectation (hidden)


class Executor(Protocol):
    """Runs a canvas on a problem. ``execute`` returns the per-node outputs, the
    final answer, the verdict of the workflow's own checks, and the tokens and
    latency spent. A model executor (operators as prompts to a model) plugs in
    here; the simulated one also knows the exact expectation."""

    def execute(self, problem: Problem, canvas: Canvas) -> Execution: ...


# ----------------------------------------------------------------------- the walk


@dataclass(slots=True)
class _Walk:
    """One pass over a canvas: the answer's state (a distribution, or a point
    mass when sampling), the context, and the expected tokens and latency."""

    params: dict[str, OperatorParameters]
    problem: Problem
    rng: random.Random | None  # None: exact expectation
    cells: list[float] = field(default_factory=lambda: [1.0] + [0.0] * (CELLS - 1))
    has_answer: bool = False
    checked: bool = False
    boost: float = 0.0
    plans: int = 0
    revisions: int = 0
    tokens: float = 0.0
    latency: float = 0.0
    last_check: tuple[str, bool] | None = None
    outputs: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- helpers

    def mass(self) -> float:
        return sum(self.cells)

    def collapse(self) -> None:
        """Sampling: draw one cell (keeps a point mass)."""
        rng = self.rng
        if rng is None:
            return
        total = sum(self.cells)
        if total <= 0:
            return
        u = rng.random() * total
        chosen = CELLS - 1
        for i, p in enumerate(self.cells):
            if u < p:
                chosen = i
                break
            u -= p
        self.cells = [0.0] * CELLS
        self.cells[chosen] = total

    def pay(self, name: str, style: str, weight: float) -> tuple[float, float]:
        p = self.params[name]
        tokens = p.tokens * STYLE_TOKENS[style] * weight
        latency = p.latency * STYLE_LATENCY[style] * weight
        return tokens, latency

    def solver_quality(self, name: str, style: str) -> float:
        q = self.params[name].styled(style)
        return q + (1.0 - q) * self.boost

    # ------------------------------------------------------------- operators

    def apply(self, name: str, style: str) -> None:
        """One operator on the current state (costs are counted by the caller)."""
        role = ROLE[name]
        cells = self.cells
        total = sum(cells)
        if role == SOLVER:
            q = self.solver_quality(name, style)
            new = [0.0] * CELLS
            new[4] = total * q
            new[0] = total * (1.0 - q)
            self.cells = new
            self.has_answer, self.checked = True, False
        elif role == PLANNER:
            b = self.params[name].styled(style) * PLANNER_DECAY**self.plans
            self.boost = 1.0 - (1.0 - self.boost) * (1.0 - b)
            self.plans += 1
        elif role == CHECKER:
            if not self.has_answer:
                return
            p = self.params[name]
            tpr, fpr = p.styled(style), p.false_positive
            new = [0.0] * CELLS
            for i, mass in enumerate(cells):
                if mass:
                    correct, fmt = i >> 2, i & 1
                    flag = fpr if correct else tpr
                    new[(correct << 2) | 2 | fmt] += mass * flag
                    new[(correct << 2) | fmt] += mass * (1.0 - flag)
            self.cells = new
            self.checked = True
        elif role == REVISER:
            if not self.has_answer:
                return
            fix = self.params[name].styled(style) * REVISION_DECAY**self.revisions
            self.revisions += 1
            new = [0.0] * CELLS
            for i, mass in enumerate(cells):
                if not mass:
                    continue
                correct, flagged = i >> 2, (i >> 1) & 1
                if self.checked and not flagged:
                    new[i & ~2] += mass  # left as it was (formatting kept)
                    continue
                rate = fix if self.checked else fix * BLIND_REVISION
                if correct:
                    new[4] += mass * (1.0 - REVISE_BREAK)
                    new[0] += mass * REVISE_BREAK
                else:
                    new[4] += mass * rate
                    new[0] += mass * (1.0 - rate)
            self.cells = new
            self.checked = False
        elif role == FORMATTER:
            if not self.has_answer:
                return
            q = self.params[name].quality
            new = [0.0] * CELLS
            for i, mass in enumerate(cells):
                if mass:
                    new[i | 1] += mass * (q if not i & 1 else 1.0)
                    if not i & 1:
                        new[i] += mass * (1.0 - q)
            self.cells = new
        # An ensemble outside a vote changes nothing.

    def operator(self, name: str, style: str, weight: float) -> None:
        tokens, latency = self.pay(name, style, weight)
        self.tokens += tokens
        self.latency += latency
        self.apply(name, style)
        if ROLE[name] == CHECKER and self.has_answer:
            self.collapse()
            if self.rng is not None:
                self.last_check = (name, bool((self.cells.index(max(self.cells)) >> 1) & 1))
        else:
            self.collapse()

    # --------------------------------------------------------------- nodes

    def node(self, node: Node, ensemble: Node | None) -> list[_Walk]:
        weight = self.mass()
        style = node.style
        if node.kind == OPERATOR:
            self.operator(node.operators[0], style, weight)
        elif node.kind == LOOP:
            for _ in range(node.count):
                for name in node.operators:
                    self.operator(name, style, weight)
        elif node.kind == PARALLEL:
            self.parallel(node, ensemble, weight)
        elif node.kind == CONDITIONAL:
            return self.conditional(node, weight)
        return [self]

    def parallel(self, node: Node, ensemble: Node | None, weight: float) -> None:
        costs = [self.pay(name, node.style, weight) for name in node.operators]
        self.tokens += sum(t for t, _ in costs)
        self.latency += max(lat for _, lat in costs)
        solvers = [name for name in node.operators if ROLE[name] == SOLVER]
        if ensemble is None or not solvers:
            self.apply(node.operators[0], node.style)
            self.collapse()
            return
        rates = [self.solver_quality(name, node.style) for name in solvers]
        p = self.vote(rates, ensemble)
        total = self.mass()
        new = [0.0] * CELLS
        new[4], new[0] = total * p, total * (1.0 - p)
        self.cells = new
        self.has_answer, self.checked = True, False
        self.collapse()

    def vote(self, rates: list[float], ensemble: Node) -> float:
        """The chance that the ensemble's answer is right, over independent samples."""
        k = len(rates)
        vote = anyone = 0.0
        for outcome in product((0, 1), repeat=k):
            p = 1.0
            for right, rate in zip(outcome, rates, strict=True):
                p *= rate if right else 1.0 - rate
            right_count = sum(outcome)
            if right_count >= 2:
                vote += p
            elif right_count == 1:
                vote += p / k  # a tie of single answers, drawn
            if right_count:
                anyone += p
        name = ensemble.operators[0]
        if name == "Aggregate":
            pick = self.params[name].styled(ensemble.style)
            vote += pick * (anyone - vote)
        return vote

    def fork(self, cells: list[float], keep_costs: bool) -> _Walk:
        """A copy of the walk's context holding ``cells`` (costs so far kept by one part only)."""
        return _Walk(
            self.params,
            self.problem,
            self.rng,
            cells,
            self.has_answer,
            self.checked,
            self.boost,
            self.plans,
            self.revisions,
            self.tokens if keep_costs else 0.0,
            self.latency if keep_costs else 0.0,
            self.last_check,
            self.outputs,
        )

    def context(self) -> tuple[bool, bool, float, int, int]:
        return (self.has_answer, self.checked, self.boost, self.plans, self.revisions)

    def conditional(self, node: Node, weight: float) -> list[_Walk]:
        """The parts after ``C ? T : F``: the flagged part through ``T``, the rest
        through ``F``, each with the context its branch left (a mixture when
        exact: the branches may plan or revise differently)."""
        check, if_flagged, otherwise = node.operators
        self.operator(check, node.style, weight)
        if not self.has_answer:
            # Nothing to check: all of it takes the other branch.
            self.operator(otherwise, node.style, weight)
            return [self]
        flagged = [m if (i >> 1) & 1 else 0.0 for i, m in enumerate(self.cells)]
        clear = [0.0 if (i >> 1) & 1 else m for i, m in enumerate(self.cells)]
        parts: list[_Walk] = []
        for cells, name in ((flagged, if_flagged), (clear, otherwise)):
            share = sum(cells)
            if share <= 0:
                continue
            part = self.fork(cells, keep_costs=not parts)
            part.operator(name, node.style, share)
            parts.append(part)
        return parts

    def step(self, canvas: Canvas, i: int) -> list[_Walk]:
        """Node ``i`` of ``canvas`` on this walk: the walks (parts of the mixture) after it."""
        node = canvas[i]
        if node.kind == OPERATOR and ROLE[node.operators[0]] == ENSEMBLE and i and canvas[i - 1].kind == PARALLEL:
            # The vote was taken with the parallel structure before it: pay for it only.
            tokens, latency = self.pay(node.operators[0], node.style, self.mass())
            self.tokens += tokens
            self.latency += latency
            self.outputs.append(f"{node.operators[0]}: voted")
            return [self]
        following = canvas[i + 1] if i + 1 < len(canvas) else None
        ensemble = (
            following
            if following is not None and following.kind == OPERATOR and ROLE[following.operators[0]] == ENSEMBLE
            else None
        )
        walks = self.node(node, ensemble)
        if self.rng is not None:
            walk = walks[0]
            walk.outputs.append(walk.describe(node))
        return walks

    def describe(self, node: Node) -> str:
        label = node.dsl()
        if not self.has_answer:
            return f"{label}: no answer yet"
        if self.last_check is not None and ROLE[self.last_check[0]] == CHECKER and node.kind in (OPERATOR, CONDITIONAL):
            if any(ROLE[name] == CHECKER for name in node.operators):
                flagged = self.last_check[1]
                return f"{label}: {'flagged a problem' if flagged else 'found no problem'}"
        return f"{label}: answer written"

    def realised_correct(self) -> bool:
        """Sampling: whether the drawn final answer counts as right."""
        if not self.has_answer or self.rng is None:
            return False
        cell = self.cells.index(max(self.cells))
        if not cell >> 2:
            return False
        return not self.problem.verbose or bool(cell & 1) or self.rng.random() < UNFORMATTED_CREDIT

    def credit(self) -> tuple[float, float]:
        """The answer's expected credit (as a mass) and the walk's mass."""
        cells = self.cells
        total = sum(cells)
        if not self.has_answer:
            return 0.0, total
        formatted, unformatted = cells[5] + cells[7], cells[4] + cells[6]
        if self.problem.verbose:
            return formatted + unformatted * UNFORMATTED_CREDIT, total
        return formatted + unformatted, total


def merge(walks: list[_Walk]) -> list[_Walk]:
    """The parts of a mixture, those with the same context added up (in order)."""
    if len(walks) < 2:
        return walks
    merged: dict[tuple[bool, bool, float, int, int], _Walk] = {}
    for walk in walks:
        key = walk.context()
        into = merged.get(key)
        if into is None:
            merged[key] = walk
            continue
        into.cells = [a + b for a, b in zip(into.cells, walk.cells, strict=True)]
        into.tokens += walk.tokens
        into.latency += walk.latency
    return list(merged.values())


def run(walk: _Walk, canvas: Canvas) -> list[_Walk]:
    """Every node of ``canvas`` from ``walk``: the parts of the final mixture (one when sampling)."""
    walks = [walk]
    for i in range(len(canvas)):
        if len(walks) == 1:
            walks = merge(walks[0].step(canvas, i))
        else:
            walks = merge([part for w in walks for part in w.step(canvas, i)])
    return walks


def outcome_of(walks: list[_Walk]) -> Expected:
    """The expected outcome of a mixture of walks."""
    credit = total = tokens = latency = 0.0
    for walk in walks:
        c, t = walk.credit()
        credit += c
        total += t
        tokens += walk.tokens
        latency += walk.latency
    return Expected(credit / (total or 1.0), tokens, latency)


def expected_outcome(problem: Problem, params: dict[str, OperatorParameters], canvas: Canvas) -> Expected:
    """The exact expected correctness, tokens and latency of ``canvas``: after a
    conditional the walk is a mixture of the branches' parts, each with the
    planning and revision counters its branch left."""
    return outcome_of(run(_Walk(params, problem, None), canvas))


def _draw_key(key: int, dsl: str) -> int:
    digest = hashlib.blake2b(f"{key}\x1f{dsl}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class SimulatedExecutor:
    """The offline executor of one episode: its hidden parameters, and a memo of
    the canvases it ran (an unchanged canvas gives the same result)."""

    def __init__(self, problem: Problem, key: int) -> None:
        self.problem = problem
        self.key = key
        self.params = hidden_parameters(problem, key)
        self._expected: dict[Canvas, Expected] = {}
        self._runs: dict[Canvas, Execution] = {}

    def expected(self, canvas: Canvas) -> Expected:
        found = self._expected.get(canvas)
        if found is None:
            if len(self._expected) > 512:
                self._expected.clear()
            found = self._expected[canvas] = expected_outcome(self.problem, self.params, canvas)
        return found

    def execute(self, problem: Problem, canvas: Canvas) -> Execution:
        found = self._runs.get(canvas)
        if found is not None:
            return found
        expected = self.expected(canvas)
        dsl = render_dsl(canvas)
        rng = random.Random(_draw_key(self.key, dsl))
        (walk,) = run(_Walk(self.params, problem, rng), canvas)
        correct = walk.realised_correct()
        answer = realised_answer(problem, correct, rng) if walk.has_answer else None
        execution = Execution(
            dsl=dsl,
            answer=answer,
            correct=bool(correct),
            verdict=verdict(problem, canvas, walk.last_check, correct, walk.has_answer, rng),
            tokens=round(expected.tokens),
            latency=round(expected.latency, 2),
            outputs=tuple(walk.outputs),
            expected_correctness=expected.correctness,
        )
        if len(self._runs) > 512:
            self._runs.clear()
        self._runs[canvas] = execution
        return execution


def realised_answer(problem: Problem, correct: bool, rng: random.Random) -> str:
    if problem.problem_type == "code":
        name = problem.entry_point or "solution"
        return f"<program {name}: passes its tests>" if correct else f"<program {name}: variant {rng.randrange(1000)}>"
    if correct:
        return problem.answer
    if problem.distractors:
        return problem.distractors[rng.randrange(len(problem.distractors))]
    return f"not {problem.answer}"


def verdict(
    problem: Problem,
    canvas: Canvas,
    last_check: tuple[str, bool] | None,
    correct: bool,
    has_answer: bool,
    rng: random.Random,
) -> str:
    if not has_answer:
        return "no answer: the workflow has no solver"
    names = [name for node in canvas for name in node.operators]
    if problem.problem_type == "code" and problem.has_tests and "Test" in names:
        n = len(problem.tests)
        if correct:
            return f"tests passed {n}/{n}"
        return f"tests failed {1 + rng.randrange(n)}/{n}"
    if last_check is not None:
        name, flagged = last_check
        return f"{name} flagged a problem" if flagged else f"{name} found no problem"
    return "unverified: the workflow has no checker"
