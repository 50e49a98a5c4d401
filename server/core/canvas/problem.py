"""A canvas task's problem: what the policy reads, and the answer it is checked against."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .operators import DIFFICULTIES, PROBLEM_TYPES


@dataclass(frozen=True, slots=True)
class Problem:
    problem_type: str  # math, code or qa
    difficulty: str  # easy, medium or hard
    text: str
    # The exact answer (math, qa), or a reference solution (code, checked by ``tests``).
    answer: str
    entry_point: str | None = None
    # Code: the problem's tests, one assertion each (``assert f(2) == 4``).
    tests: tuple[str, ...] = ()
    # Whether the expected answer has a form to respect (Format pays off).
    verbose: bool = False
    # Plausible wrong answers (what a failed workflow answers); hidden.
    distractors: tuple[str, ...] = ()
    source: str = "generated"

    def __post_init__(self) -> None:
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {', '.join(PROBLEM_TYPES)}, got {self.problem_type!r}")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {self.difficulty!r}")

    @property
    def has_tests(self) -> bool:
        return bool(self.tests)

    def public(self) -> dict[str, Any]:
        """What the policy sees: never the answer, nor the tests' expected values."""
        view: dict[str, Any] = {
            "type": self.problem_type,
            "difficulty": self.difficulty,
            "text": self.text,
            "verbose": self.verbose,
            "source": self.source,
        }
        if self.entry_point is not None:
            view["entry_point"] = self.entry_point
        if self.tests:
            view["test_count"] = len(self.tests)
        return view


def normalise_answer(text: str) -> str:
    """Answers compare case-, space- and trailing-punctuation-free; numbers by value."""
    value = " ".join(str(text).strip().lower().split()).rstrip(".")
    try:
        number = float(value.replace(",", ""))
    except ValueError:
        return value
    if not math.isfinite(number):
        return value
    return repr(int(number)) if number == int(number) else repr(round(number, 6))
