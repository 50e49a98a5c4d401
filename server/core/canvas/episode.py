"""A canvas episode: the policy edits the canvas, executes it, reads the
feedback and finishes with an answer, within a number of rounds (steps) and a
token budget.

Every step is one round. Edits (``add``, ``delete``, ``modify``,
``set_prompt``) change the canvas; ``execute`` runs it (its tokens are
charged; re-executing the canvas last executed returns the same result and
costs nothing); ``finish`` ends the episode with an answer (by default the
last execution's), executing the canvas first when it changed since. An
invalid action gets a structured error code and changes nothing. The episode
is truncated when the rounds run out.

The event log (rows as dicts, see :data:`FIELDS`) is what the grade reads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ....vocabulary import CanvasEventKindName
from ..outcomes import episode_key
from .canvas import EMPTY, Canvas, EditError, apply_edit, render_dsl
from .problem import Problem
from .simulator import Execution, Expected, SimulatedExecutor
from .xml import parse_xml_action

if TYPE_CHECKING:
    from ..compiled import CompiledTask

# The fields of each kind of row, after ``kind`` and ``step`` (a test checks them against the vocabulary).
FIELDS: dict[CanvasEventKindName, tuple[str, ...]] = {
    "edited": ("action", "dsl"),
    "invalid_action": ("code", "message"),
    "executed": ("dsl", "tokens", "latency", "answer", "verdict", "cached"),
    "finished": ("dsl", "answer"),
    "episode_end": ("reason",),
}


class GradedExecutor(Protocol):
    """An executor the grade can read: ``expected`` is the simulator's exact
    expectation, or a model executor's realised outcome of the canvas."""

    def execute(self, problem: Problem, canvas: Canvas) -> Execution: ...

    def expected(self, canvas: Canvas) -> Expected: ...


def budget_for(budget: int, executor: object) -> int:
    """An episode's token budget under ``executor``: the task's ``budget`` times the executor's
    ``budget_scale`` (at least 1 token; 1 when the executor declares none)."""
    scale = getattr(executor, "budget_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"an executor's budget_scale is a positive number, not {scale!r}")
    return max(1, round(budget * scale))


EDITS = frozenset({"add", "delete", "modify", "set_prompt"})
MAX_LABEL = 200


@dataclass(frozen=True, slots=True)
class CanvasTables:
    """What every episode of one canvas task shares."""

    problem: Problem
    budget: int  # tokens for the whole episode
    latency_limit: float  # seconds for one execution of the final canvas
    rounds: int  # steps before truncation
    public_problem: dict[str, Any]


class CanvasLog:
    """The event log: rows as dicts ``{"kind", "step", *FIELDS[kind]}``."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def append(self, kind: CanvasEventKindName, step: int, *values: Any) -> None:
        row = {"kind": kind, "t": step, "step": step}
        row.update(zip(FIELDS[kind], values, strict=True))
        self.rows.append(row)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.rows]

    def records_since(self, start: int) -> list[dict[str, Any]]:
        return [dict(row) for row in self.rows[start:]]

    def digest(self) -> str:
        payload = json.dumps(self.rows, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.rows)


class StepOutcome:
    """What one step did, for the reward models."""

    __slots__ = ("error", "tokens", "ended", "finished")

    def __init__(self) -> None:
        self.error: str | None = None
        self.tokens = 0
        self.ended = False
        self.finished = False


def _label(action: Mapping[str, Any]) -> dict[str, Any]:
    """The action as the trace keeps it (strings shortened)."""
    out: dict[str, Any] = {}
    for key, value in list(action.items())[:12]:
        if isinstance(value, str):
            value = value[:MAX_LABEL]
        elif isinstance(value, (list, tuple)):
            value = [str(v)[:64] for v in value[:8]]
        elif not isinstance(value, (int, float, bool)) and value is not None:
            value = str(value)[:MAX_LABEL]
        out[str(key)[:64]] = value
    return out


class CanvasEpisode:
    def __init__(self, compiled: CompiledTask, seed: int | None, reward_model: Any) -> None:
        tables: CanvasTables = compiled.tables
        self.compiled = compiled
        self.task = compiled.spec
        self.tables = tables
        self.problem = tables.problem
        self.seed = compiled.spec.canonical_seed if seed is None else seed
        self.seed_key = episode_key(self.task.task_id, self.seed)
        self.sealed = False
        self.executor: GradedExecutor = SimulatedExecutor(self.problem, self.seed_key)
        self.simulated = True  # False once another executor is in use (use_executor)
        self.reward_model = reward_model
        self.canvas: Canvas = EMPTY
        self.executed: Canvas | None = None  # the canvas of the last execution
        self.last_execution: Execution | None = None
        self.step_count = 0
        self.budget = tables.budget  # the task's, times the executor's budget_scale (use_executor)
        self.budget_used = 0
        self.invalid_count = 0
        self.terminated = False
        self.truncated = False
        self.answer: str | None = None
        self.rewards: list[float] = []
        self.last_reward = 0.0
        self.last_breakdown: dict[str, float] = {}
        self.errors: list[dict[str, str]] = []
        self.log = CanvasLog()
        self._trace: list[dict[str, Any]] = []
        self.outcome = StepOutcome()
        # The grade of the latest state (grade.grade_canvas), keyed by what it reads.
        self.grade_cache: tuple[Any, dict[str, Any]] | None = None

    # ------------------------------------------------------------ the seam's

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def now(self) -> int:
        return self.step_count

    def seal(self, secret: bytes) -> None:
        """Draw the hidden operator parameters under ``secret`` (before the first step)."""
        if self.step_count:
            raise RuntimeError("an episode is sealed before its first step")
        self.seed_key = episode_key(self.task.task_id, self.seed, secret)
        if self.simulated:
            self.executor = SimulatedExecutor(self.problem, self.seed_key)
        self.sealed = True

    def use_executor(self, executor: GradedExecutor) -> None:
        """Run the canvas with ``executor`` instead of the simulated one (before the first step).
        The episode's token budget is the task's times the executor's ``budget_scale`` (1 when it
        has none: the task's budgets are sized for the simulated executor's token costs)."""
        if self.step_count:
            raise RuntimeError("an episode's executor is chosen before its first step")
        self.executor = executor
        self.simulated = isinstance(executor, SimulatedExecutor)
        self.budget = budget_for(self.tables.budget, executor)

    def use_reward_model(self, model: Any) -> None:
        self.reward_model = model

    @property
    def trace(self) -> list[dict[str, Any]]:
        return self.trace_since(0)

    @property
    def trace_length(self) -> int:
        return len(self._trace)

    def trace_since(self, start: int) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self._trace[start:]]

    # ------------------------------------------------------------------ step

    def step(self, action: Any) -> None:
        outcome = self.outcome = StepOutcome()
        self.errors = []
        if not isinstance(action, Mapping):
            action = {"action_type": getattr(getattr(action, "action_type", None), "value", str(action))}
        if self.done:
            self._refuse(outcome, "episode_over", "the episode is over; reset to start another")
            self._trace.append({"step": self.step_count, "action": _label(action), "error": "episode_over"})
            self._reward(outcome)
            return
        self.step_count += 1
        step = self.step_count
        kind = action.get("action_type")
        try:
            if kind == "xml":
                text = action.get("text")
                if not isinstance(text, str):
                    raise EditError("missing_field", "xml needs text (the published XML form of an action)")
                action = {**parse_xml_action(text)}
                kind = action["action_type"]
            if kind in EDITS:
                self.canvas = apply_edit(self.canvas, action)
                self.log.append("edited", step, kind, render_dsl(self.canvas))
            elif kind == "execute":
                if not self.canvas:
                    raise EditError("empty_canvas", "add operators before executing")
                self._execute(outcome)
            elif kind == "finish":
                self._finish(action, outcome)
            else:
                raise EditError(
                    "unknown_action",
                    f"unknown action_type {kind!r}; expected one of: add, delete, modify, set_prompt, execute, "
                    "finish, xml",
                )
        except EditError as error:
            self._refuse(outcome, error.code, error.message)
        self._trace.append({"step": step, "action": _label(action), "error": outcome.error})
        if not self.done and step >= self.tables.rounds:
            self.truncated = True
            outcome.ended = True
            self.log.append("episode_end", step, "truncated")
        self._reward(outcome)

    def _refuse(self, outcome: StepOutcome, code: str, message: str) -> None:
        outcome.error = code
        self.invalid_count += 1
        self.errors = [{"code": code, "message": message}]
        self.log.append("invalid_action", self.step_count, code, message[:MAX_LABEL])

    def _execute(self, outcome: StepOutcome) -> Execution:
        canvas = self.canvas
        cached = canvas == self.executed and self.last_execution is not None
        if cached:
            assert self.last_execution is not None
            execution = self.last_execution
        else:
            execution = self.executor.execute(self.problem, canvas)
            if self.budget_used + execution.tokens > self.budget:
                raise EditError(
                    "over_budget",
                    f"executing needs {execution.tokens} tokens; {self.budget - self.budget_used} are left",
                )
            self.budget_used += execution.tokens
            outcome.tokens = execution.tokens
            self.executed = canvas
            self.last_execution = execution
        self.log.append(
            "executed",
            self.step_count,
            execution.dsl,
            0 if cached else execution.tokens,
            execution.latency,
            execution.answer,
            execution.verdict,
            cached,
        )
        return execution

    def _finish(self, action: Mapping[str, Any], outcome: StepOutcome) -> None:
        answer = action.get("answer")
        if answer is not None and not isinstance(answer, (str, int, float)):
            raise EditError("missing_field", "finish's answer is a string")
        if self.canvas and self.canvas != self.executed:
            self._execute(outcome)
        if answer is None and self.last_execution is not None and self.executed == self.canvas:
            answer = self.last_execution.answer
        self.answer = None if answer is None else str(answer)[:MAX_LABEL]
        self.terminated = True
        outcome.ended = outcome.finished = True
        self.log.append("finished", self.step_count, render_dsl(self.canvas), self.answer)
        self.log.append("episode_end", self.step_count, "terminated")

    def _reward(self, outcome: StepOutcome) -> None:
        breakdown: dict[str, float] = self.reward_model.step_reward(self, outcome)
        self.last_breakdown = breakdown
        self.last_reward = sum(breakdown.values())
        self.rewards.append(self.last_reward)
