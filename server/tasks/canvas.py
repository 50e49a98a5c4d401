"""The canvas tasks: ``(preset, seed)`` -> a problem for the policy to build a
workflow for (``canvas/math``, ``canvas/code``, ``canvas/qa``, ``canvas/mixed``),
or a user's JSONL file of problems in the published row format.

Each instance is a :class:`~..core.canvas.problem.Problem` (type, difficulty,
surface text, verifiable answer) drawn by a procedural generator:

* math: arithmetic and algebra word problems (more steps when harder);
* code: a small function to write, with unit tests computed by a reference
  implementation;
* qa: a multi-hop question over a generated fact table (1, 2 or 3 hops).

The problem, its token budget and latency limit go in the task's
``parameters``; the hidden operator parameters are drawn by the episode from
its key (so sealed by the outcome secret). The rows of a JSONL file have
``problem``, ``answer`` or ``ground_truth``, ``problem_type`` and, for code,
``entry_point`` and ``test`` (assertions, one per line).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.canvas.operators import DIFFICULTIES, PROBLEM_TYPES
from ..core.canvas.problem import Problem
from ..core.model import AgentSpec, SubtaskSpec, TaskSpec, TimeModel

CANVAS_PREFIX = "canvas"
ROUNDS = 20
BUDGET: dict[str, int] = {"easy": 5000, "medium": 6000, "hard": 8000}
LATENCY_LIMIT: dict[str, float] = {"easy": 30.0, "medium": 30.0, "hard": 40.0}
PRESETS: dict[str, tuple[str, ...]] = {
    "math": ("math",),
    "code": ("code",),
    "qa": ("qa",),
    "mixed": PROBLEM_TYPES,
}

# ------------------------------------------------------------------------- math


def _math(rng: random.Random, difficulty: str) -> Problem:
    if difficulty == "easy":
        a, b, c = rng.randint(3, 12), rng.randint(4, 15), rng.randint(1, 20)
        item = rng.choice(["rolls", "apples", "pencils", "stamps"])
        text = f"A shop packs {a} boxes of {b} {item} each and sells {c} {item}. How many {item} are left?"
        answer = a * b - c
    elif difficulty == "medium":
        x, a, b = rng.randint(-9, 15), rng.randint(2, 9), rng.randint(-20, 30)
        c = a * x + b
        sign = "+" if b >= 0 else "-"
        text = f"Solve for x: {a}x {sign} {abs(b)} = {c}. Give x as a whole number."
        answer = x
    else:
        x, y = rng.randint(2, 20), rng.randint(2, 20)
        s, d = x + y, x - y
        k = rng.randint(2, 5)
        text = (
            f"Two numbers add up to {s}, and the first exceeds the second by {d}. "
            f"What is {k} times the product of the two numbers?"
        )
        answer = k * x * y
    wrong = sorted({answer + delta for delta in (-2, -1, 1, 2, 10)} - {answer})
    return Problem("math", difficulty, text, str(answer), distractors=tuple(str(w) for w in wrong))


# ------------------------------------------------------------------------- code


def _sum_of_multiples(n: int, k: int) -> int:
    return sum(range(0, n, k))


def _count_vowels(s: str) -> int:
    return sum(1 for ch in s.lower() if ch in "aeiou")


def _digit_sum(n: int) -> int:
    return sum(int(ch) for ch in str(abs(n)))


def _longest_run(xs: list[int]) -> int:
    best = run = 0
    for i, x in enumerate(xs):
        run = run + 1 if i and xs[i - 1] == x else 1
        best = max(best, run)
    return best


def _second_largest(xs: list[int]) -> int | None:
    values = sorted(set(xs))
    return values[-2] if len(values) > 1 else None


# name, signature, description, reference, its source, a maker of arguments
_CodeTemplate = tuple[str, str, str, Callable[..., Any], str, Callable[[random.Random], tuple[Any, ...]]]

_CODE: dict[str, tuple[_CodeTemplate, ...]] = {
    "easy": (
        (
            "count_vowels",
            "s: str",
            "the number of vowels (a, e, i, o, u, either case) in s",
            _count_vowels,
            "def count_vowels(s):\n    return sum(1 for ch in s.lower() if ch in 'aeiou')",
            lambda r: ("".join(r.choice("abcdeiouxyzAEIOU ") for _ in range(r.randint(0, 12))),),
        ),
        (
            "digit_sum",
            "n: int",
            "the sum of the decimal digits of n (ignore a minus sign)",
            _digit_sum,
            "def digit_sum(n):\n    return sum(int(ch) for ch in str(abs(n)))",
            lambda r: (r.randint(-99999, 99999),),
        ),
    ),
    "medium": (
        (
            "sum_of_multiples",
            "n: int, k: int",
            "the sum of the non-negative multiples of k below n",
            _sum_of_multiples,
            "def sum_of_multiples(n, k):\n    return sum(range(0, n, k))",
            lambda r: (r.randint(0, 200), r.randint(1, 9)),
        ),
        (
            "second_largest",
            "xs: list[int]",
            "the second largest distinct value in xs, or None when there is none",
            _second_largest,
            "def second_largest(xs):\n    values = sorted(set(xs))\n    return values[-2] if len(values) > 1 else None",
            lambda r: ([r.randint(-5, 9) for _ in range(r.randint(0, 7))],),
        ),
    ),
    "hard": (
        (
            "longest_run",
            "xs: list[int]",
            "the length of the longest run of equal adjacent values in xs (0 for an empty list)",
            _longest_run,
            "def longest_run(xs):\n    best = run = 0\n    for i, x in enumerate(xs):\n"
            "        run = run + 1 if i and xs[i - 1] == x else 1\n        best = max(best, run)\n    return best",
            lambda r: ([r.randint(0, 2) for _ in range(r.randint(0, 10))],),
        ),
    ),
}


def _code(rng: random.Random, difficulty: str) -> Problem:
    name, signature, description, reference, source, make = rng.choice(_CODE[difficulty])
    count = {"easy": 3, "medium": 5, "hard": 6}[difficulty]
    tests = []
    for _ in range(count):
        args = make(rng)
        call = f"{name}({', '.join(repr(a) for a in args)})"
        tests.append(f"assert {call} == {reference(*args)!r}")
    text = f"Write a Python function `{name}({signature})` that returns {description}."
    return Problem("code", difficulty, text, source, entry_point=name, tests=tuple(tests))


# --------------------------------------------------------------------------- qa

_PEOPLE = ("Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kemal", "Lena")
_CITIES = ("Arlen", "Brisk", "Corvo", "Dunmere", "Esk", "Falun", "Gorm", "Halden", "Isel", "Jarrow")
_COUNTRIES = ("Norland", "Ostria", "Pellia", "Quarn", "Rusk")


def _qa(rng: random.Random, difficulty: str) -> Problem:
    people = rng.sample(_PEOPLE, 6)
    cities = rng.sample(_CITIES, 5)
    countries = rng.sample(_COUNTRIES, 3)
    born = {p: rng.choice(cities) for p in people}
    country = {c: rng.choice(countries) for c in cities}
    mentor = {p: rng.choice([q for q in people if q != p]) for p in people}
    facts = [f"{p} was born in {born[p]}." for p in people]
    facts += [f"{c} is a city in {country[c]}." for c in cities]
    facts += [f"{p} was mentored by {mentor[p]}." for p in people]
    rng.shuffle(facts)
    subject = rng.choice(people)
    if difficulty == "easy":
        question, answer, pool = f"In which city was {subject} born?", born[subject], cities
    elif difficulty == "medium":
        question, answer, pool = f"In which country was {subject} born?", country[born[subject]], countries
    else:
        question = f"In which country was the mentor of {subject} born?"
        answer, pool = country[born[mentor[subject]]], countries
    text = " ".join(facts) + " Question: " + question + " Answer with the name only."
    distractors = tuple(x for x in pool if x != answer)
    return Problem("qa", difficulty, text, answer, verbose=True, distractors=distractors)


GENERATORS: dict[str, Callable[[random.Random, str], Problem]] = {"math": _math, "code": _code, "qa": _qa}


def generate_problem(preset: str, seed: int) -> Problem:
    """The problem of a preset and seed; the same in any process."""
    rng = random.Random(f"canvas:{preset}:{seed}")
    kind = rng.choice(PRESETS[preset])
    difficulty = rng.choice(DIFFICULTIES)
    return GENERATORS[kind](rng, difficulty)


def canvas_task(task_id: str, problem: Problem, seed: int, preset: str) -> TaskSpec:
    budget = BUDGET[problem.difficulty]
    latency = LATENCY_LIMIT[problem.difficulty]
    return TaskSpec(
        task_id=task_id,
        title=f"Canvas {preset}: a {problem.difficulty} {problem.problem_type} problem",
        description=(
            "Build a workflow of operators on the canvas, execute it, read the feedback and finish with "
            f"an answer, within {ROUNDS} rounds and {budget} tokens."
        ),
        family=CANVAS_PREFIX,
        difficulty=problem.difficulty,
        time_model=TimeModel.TICK,
        time_limit=None,
        capacity=1,
        budget=None,
        subtasks=(SubtaskSpec("answer", CANVAS_PREFIX),),
        agents=(AgentSpec("canvas", frozenset({CANVAS_PREFIX})),),
        canonical_seed=seed,
        step_limit=ROUNDS,
        parameters={
            "preset": preset,
            "seed": seed,
            "problem": problem,
            "problem_type": problem.problem_type,
            "budget": budget,
            "latency_limit": latency,
        },
    )


def _check_worker_count(worker_count: int | None) -> None:
    if worker_count is not None:
        raise ValueError("canvas tasks take no worker_count")


class CanvasTaskFamily:
    """``canvas/math``, ``canvas/code``, ``canvas/qa``, ``canvas/mixed``: seeded problems."""

    prefix = CANVAS_PREFIX

    def variants(self) -> list[str]:
        return list(PRESETS)

    def describe(self, variant: str) -> dict[str, Any]:
        return {
            "task_id": f"{self.prefix}/{variant}",
            "title": f"Canvas {variant}",
            "family": self.prefix,
            "difficulty": "mixed",
            "time_model": TimeModel.TICK.value,
            "description": (
                "Build the workflow yourself: add operators (Plan, Programmer, Test, Review, Revise, ScEnsemble, "
                "...) and parallel, conditional and loop structures to a canvas, execute it on a "
                f"{'/'.join(PRESETS[variant])} problem, read the feedback, finish with an answer. reset takes seed."
            ),
            "parameters": {
                "problem_types": list(PRESETS[variant]),
                "difficulties": list(DIFFICULTIES),
                "rounds": ROUNDS,
                "budget": BUDGET,
                "latency_limit": LATENCY_LIMIT,
            },
        }

    def build(self, variant: str, seed: int, worker_count: int | None, secret: bytes | None = None) -> TaskSpec:
        _check_worker_count(worker_count)
        return canvas_task(f"{self.prefix}/{variant}", generate_problem(variant, seed), seed, variant)


# ------------------------------------------------------------------- JSONL files

_TYPE_NAMES: dict[str, str] = {"math": "math", "code": "code", "qa": "qa", "mathematics": "math", "coding": "code"}


def problem_from_row(row: dict[str, Any], where: str = "row") -> Problem:
    """One row of the published format as a problem (ValueError naming what is wrong)."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a row is a JSON object")
    text = row.get("problem")
    answer = row.get("answer", row.get("ground_truth"))
    kind = _TYPE_NAMES.get(str(row.get("problem_type", "")).lower())
    if not isinstance(text, str) or not text:
        raise ValueError(f"{where}: problem (the text) is missing")
    if kind is None:
        raise ValueError(f"{where}: problem_type must be one of math, code, qa; got {row.get('problem_type')!r}")
    tests: Sequence[str] = ()
    entry_point = row.get("entry_point")
    if kind == "code":
        test = row.get("test") or ""
        tests = tuple(line.strip() for line in str(test).splitlines() if line.strip().startswith("assert"))
        if not entry_point:
            raise ValueError(f"{where}: a code problem needs entry_point")
    if answer is None and kind != "code":
        raise ValueError(f"{where}: answer (or ground_truth) is missing")
    difficulty = str(row.get("difficulty", "medium"))
    if difficulty not in DIFFICULTIES:
        difficulty = "medium"
    return Problem(
        kind,
        difficulty,
        text,
        "" if answer is None else str(answer),
        entry_point=None if entry_point is None else str(entry_point),
        tests=tuple(tests),
        verbose=kind == "qa",
        source="file",
    )


def load_problems(path: Path) -> list[Problem]:
    problems = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
                problems.append(problem_from_row(row, f"{path}:{number}"))
    if not problems:
        raise ValueError(f"{path}: no problems")
    return problems


class CanvasFileFamily:
    """A user's JSONL file of problems as ``<prefix>/all``: seed ``i`` plays row ``i mod rows``."""

    def __init__(self, path: Path, prefix: str = "canvas-file") -> None:
        self.prefix = prefix
        self.path = path
        self.problems = load_problems(path)

    def variants(self) -> list[str]:
        return ["all"]

    def describe(self, variant: str) -> dict[str, Any]:
        return {
            "task_id": f"{self.prefix}/{variant}",
            "title": f"Canvas problems from {self.path.name}",
            "family": CANVAS_PREFIX,
            "difficulty": "mixed",
            "time_model": TimeModel.TICK.value,
            "description": f"{len(self.problems)} problems from a JSONL file; seed i plays row i mod rows.",
            "parameters": {"rows": len(self.problems), "rounds": ROUNDS},
        }

    def build(self, variant: str, seed: int, worker_count: int | None, secret: bytes | None = None) -> TaskSpec:
        _check_worker_count(worker_count)
        problem = self.problems[seed % len(self.problems)]
        return canvas_task(f"{self.prefix}/{variant}", problem, seed, "file")
