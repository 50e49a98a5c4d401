"""The ``openai`` executor of the canvas family: every operator of a canvas is a
chat completion to an OpenAI-compatible model, and the outputs flow along the
canvas.

* Settings: the base URL, model and key of ``inference.py`` (``API_BASE_URL``,
  ``MODEL_NAME``, ``API_KEY`` or ``HF_TOKEN``), see :func:`settings_from_environ`.
* One system prompt per operator role (planner, solver, checker, reviser,
  ensemble, formatter), and the node's prompt style (``step_by_step``,
  ``concise``) as an instruction.
* The flow: a sequence passes the current answer (and the plans, and the
  last check's feedback) on; a ``parallel`` structure's branches each start
  from the same state and the ensemble right after it chooses among their
  answers (without one, the first branch's answer counts); ``C ? T : F`` runs
  ``T`` when the checker flagged the answer, else ``F``; a loop runs its body
  ``count`` times; ``Revise`` after a check that found no problem keeps the
  answer.
* ``Programmer`` asks for code and runs it in the sandbox (``sandbox.py``): its
  printed output is the answer (math, qa), or the code is (code problems).
  ``Test`` runs the problem's tests on the answer in the sandbox (code with
  tests), otherwise asks the model for a spot check.
* The final answer is checked against the problem's answer (normalised exact
  match) or its tests (code): :attr:`Execution.correct`, and the realised
  correctness the grade reads (:meth:`ModelExecutor.expected`).
* Tokens are the API's ``usage``; latency is measured per call and composed
  along the canvas (branches of a parallel structure count their longest).
* Responses are cached on disk (``cache.py``), keyed by problem, node, prompt and
  model, so that a run replays without the API (with the tokens and latency
  first measured).

A call that fails (the API unreachable, an error status) leaves that operator
without effect, says so in the node's output, and is not cached.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import openai

from ..server.core.canvas.canvas import Canvas, Node, render_dsl
from ..server.core.canvas.operators import (
    CHECKER,
    CONDITIONAL,
    ENSEMBLE,
    FORMATTER,
    LOOP,
    OPERATOR,
    PARALLEL,
    PLANNER,
    REVISER,
    ROLE,
    SOLVER,
)
from ..server.core.canvas.problem import Problem, normalise_answer
from ..server.core.canvas.simulator import Execution, Expected
from .cache import Response, ResponseCache, cache_key
from .sandbox import DEFAULT_LIMITS, Limits, SandboxResult, run_program, run_tests

DEFAULT_API_BASE_URL = "https://router.huggingface.co/v1"
CACHE_ENV = "WORKFLOW_ORCHESTRATOR_MODEL_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "workflow_orchestrator" / "canvas_responses.sqlite"
# The budget scale of the model executor (see ModelSettings.budget_scale) and its variable.
DEFAULT_BUDGET_SCALE = 5.0
BUDGET_SCALE_ENV = "WORKFLOW_ORCHESTRATOR_CANVAS_BUDGET_SCALE"
# Branches of a parallel structure are independent samples.
SAMPLE_TEMPERATURE = 0.7
MAX_OUTPUT_LINE = 120


@dataclass(frozen=True, slots=True)
class ModelSettings:
    model: str
    api_base_url: str = DEFAULT_API_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.0
    max_tokens: int = 1024
    request_timeout_s: float = 60.0
    max_retries: int = 2  # the openai client's own retries of a failed call
    cache_path: str = str(DEFAULT_CACHE)
    # The episode's token budget is the task's times this: the tasks' budgets are sized for the
    # simulated executor's token costs, and real prompts (the problem, the context, the reply) cost more.
    budget_scale: float = DEFAULT_BUDGET_SCALE


def settings_from_environ(environ: Mapping[str, str] | None = None, **overrides: Any) -> ModelSettings:
    """The settings ``inference.py`` reads: ``API_BASE_URL``, ``MODEL_NAME``,
    ``API_KEY`` (``HF_TOKEN`` when unset), ``WORKFLOW_ORCHESTRATOR_MODEL_CACHE``
    for the cache file and ``WORKFLOW_ORCHESTRATOR_CANVAS_BUDGET_SCALE`` for the
    budget scale; keyword arguments override them."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {
        "model": env.get("MODEL_NAME") or "",
        "api_base_url": env.get("API_BASE_URL") or DEFAULT_API_BASE_URL,
        "api_key": env.get("API_KEY") or env.get("HF_TOKEN") or None,
        "cache_path": env.get(CACHE_ENV) or str(DEFAULT_CACHE),
        "budget_scale": float(env.get(BUDGET_SCALE_ENV) or DEFAULT_BUDGET_SCALE),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    if not values["model"]:
        raise ValueError("the openai executor needs a model: set MODEL_NAME")
    return ModelSettings(**values)


# ------------------------------------------------------------------------ prompts

ANSWER_FORMAT = "End with the final answer alone inside <answer></answer>."
CODE_FORMAT = "Reply with the complete Python function in one ```python code block."
VERDICT_FORMAT = "End with one line: VERDICT: CORRECT or VERDICT: WRONG."

ROLE_PROMPTS: dict[str, str] = {
    PLANNER: "You plan the solution of a problem for the solvers that come after you. Do not solve it.",
    SOLVER: "You solve problems carefully.",
    CHECKER: "You check a proposed answer to a problem critically and say whether it is right.",
    REVISER: "You fix a proposed answer that was judged wrong.",
    ENSEMBLE: "You choose the final answer among candidate answers to a problem.",
    FORMATTER: "You put a final answer in exactly the form the problem asks for.",
}
OPERATOR_TASKS: dict[str, str] = {
    "Plan": "Write a short numbered plan of the steps that solve this problem.",
    "Decompose": "Split this problem into sub-questions to be answered in order; list them.",
    "AnswerGenerate": "Reason about the problem, then state the answer.",
    "Custom": "Answer the problem.",
    "Programmer": "Write a Python program that computes the answer and prints only the answer.",
    "Review": "Read the proposed answer critically and name any error.",
    "Verify": "Check the proposed answer step by step against the problem.",
    "Test": "Spot-check the proposed answer against the problem's conditions.",
    "Revise": "Write a corrected answer, using the feedback.",
    "ScEnsemble": "Choose the answer most of the candidates agree on.",
    "Aggregate": "Judge each candidate and choose the best one.",
    "Format": "Give the final answer in exactly the form the problem asks for, and nothing else.",
}
STYLE_PROMPTS: dict[str, str] = {
    "default": "",
    "step_by_step": "Think step by step and show your reasoning before the answer.",
    "concise": "Be brief.",
}

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_CHOICE = re.compile(r"<choice>\s*([A-Za-z0-9]+)\s*</choice>", re.I)
_CODE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S | re.I)
_VERDICT = re.compile(r"VERDICT\s*:\s*\**\s*(CORRECT|WRONG|INCORRECT|PASS|FAIL)", re.I)
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_PREFIX = re.compile(r"^(?:final answer|answer)\s*[:=-]\s*", re.I)


def extract_answer(text: str) -> str | None:
    """The answer in a reply: the last ``<answer>``, else the last non-empty line."""
    text = _THINK.sub(" ", text)
    found = _ANSWER.findall(text)
    if found:
        value = found[-1].strip()
        return value or None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    return _PREFIX.sub("", lines[-1]).strip().strip("*").strip() or None


def extract_code(text: str) -> str | None:
    """The code in a reply: the last fenced block, else the ``<answer>`` when it is code."""
    text = _THINK.sub(" ", text)
    blocks = _CODE.findall(text)
    if blocks:
        return str(blocks[-1]).strip() or None
    found = _ANSWER.findall(text)
    candidate = found[-1] if found else text
    return candidate.strip() if re.search(r"^\s*(def|import|from|class)\b", candidate, re.M) else None


def extract_verdict(text: str) -> bool | None:
    """Whether a checker flagged the answer (True), passed it (False), or said neither (None)."""
    found = _VERDICT.findall(text)
    if not found:
        return None
    return found[-1].upper() in ("WRONG", "INCORRECT", "FAIL")


def _short(text: str | None) -> str:
    value = " ".join((text or "").split())
    return value if len(value) <= MAX_OUTPUT_LINE else value[: MAX_OUTPUT_LINE - 3] + "..."


# ------------------------------------------------------------------------- the walk


@dataclass(slots=True)
class _State:
    plans: tuple[str, ...] = ()
    answer: str | None = None
    flagged: bool | None = None  # the last check's verdict on the current answer; None: not checked
    feedback: str = ""
    last_check: tuple[str, bool] | None = None
    tokens: int = 0
    latency: float = 0.0
    note: str = ""  # what the last operator did, for the node's output line


class CallFailed(Exception):
    pass


class ModelExecutor:
    """Operators as prompts to a model (see the module docstring); one per episode."""

    def __init__(
        self,
        problem: Problem,
        settings: ModelSettings,
        *,
        cache: ResponseCache | None = None,
        client: openai.OpenAI | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.problem = problem
        self.settings = settings
        self.cache = cache if cache is not None else ResponseCache(settings.cache_path)
        self._client = client
        self.limits = limits
        self.budget_scale = settings.budget_scale
        self.problem_key = hashlib.sha256(
            "\x1f".join((problem.problem_type, problem.text, problem.entry_point or "")).encode()
        ).hexdigest()
        self._runs: dict[Canvas, Execution] = {}
        self._test_runs: dict[str, SandboxResult] = {}
        self.calls = 0  # requests sent to the API (cache misses)

    # ------------------------------------------------------------ the interface

    def execute(self, problem: Problem, canvas: Canvas) -> Execution:
        found = self._runs.get(canvas)
        if found is not None:
            return found
        state = _State()
        outputs: list[str] = []
        names: list[str] = [name for node in canvas for name in node.operators]
        i = 0
        while i < len(canvas):
            node = canvas[i]
            following = canvas[i + 1] if i + 1 < len(canvas) else None
            path = str(i + 1)
            if node.kind == PARALLEL and following is not None and _is_ensemble(following):
                state = self._parallel(node, following, state, path, str(i + 2))
                outputs.append(f"{node.dsl()} -> {following.dsl()}: {state.note}")
                i += 2
                continue
            state = self._node(node, state, path)
            outputs.append(f"{node.dsl()}: {state.note}")
            i += 1
        correct = self.is_correct(state.answer)
        execution = Execution(
            dsl=render_dsl(canvas),
            answer=None if state.answer is None else state.answer[:2000],
            correct=correct,
            verdict=self._verdict(state, names),
            tokens=state.tokens,
            latency=round(state.latency, 2),
            outputs=tuple(outputs),
            expected_correctness=None,
        )
        self._runs[canvas] = execution
        return execution

    def expected(self, canvas: Canvas) -> Expected:
        """What the grade reads: the realised correctness, tokens and latency of the canvas's execution."""
        run = self.execute(self.problem, canvas)
        return Expected(float(run.correct), float(run.tokens), float(run.latency))

    def is_correct(self, answer: str | None) -> bool:
        if answer is None:
            return False
        problem = self.problem
        if problem.problem_type == "code" and problem.tests:
            return self.tests_passed(answer) == len(problem.tests)
        return normalise_answer(answer) == normalise_answer(problem.answer)

    def tests_passed(self, code: str) -> int:
        """How many of the problem's tests ``code`` passes."""
        result = self.run_tests(code)
        return result.passed if result.ok else 0

    def run_tests(self, code: str) -> SandboxResult:
        """The problem's tests on ``code`` in the sandbox (once per code)."""
        found = self._test_runs.get(code)
        if found is None:
            found = self._test_runs[code] = run_tests(code, self.problem.tests, self.limits)
        return found

    # ----------------------------------------------------------------- nodes

    def _node(self, node: Node, state: _State, path: str) -> _State:
        style = node.style
        if node.kind == OPERATOR:
            return self._operator(node.operators[0], style, state, path)
        if node.kind == LOOP:
            for round_ in range(node.count):
                for j, name in enumerate(node.operators):
                    state = self._operator(name, style, state, f"{path}.{round_ + 1}.{j + 1}")
            return state
        if node.kind == PARALLEL:
            # No ensemble after it: only the first branch counts (the others are paid for).
            results = [
                self._operator(name, style, state, f"{path}.{j + 1}", SAMPLE_TEMPERATURE)
                for j, name in enumerate(node.operators)
            ]
            return self._join(state, results, results[0])
        if node.kind == CONDITIONAL:
            check, if_flagged, otherwise = node.operators
            state = self._operator(check, style, state, f"{path}.1")
            checked_note = state.note
            branch, where = (if_flagged, 2) if state.flagged else (otherwise, 3)
            state = self._operator(branch, style, state, f"{path}.{where}")
            state.note = f"{checked_note}; {branch}: {state.note}"
            return state
        raise ValueError(f"unknown node kind {node.kind!r}")

    def _join(self, before: _State, results: list[_State], chosen: _State) -> _State:
        """The state after a parallel structure: ``chosen``'s answer, every branch's tokens, the longest latency."""
        out = replace(chosen)
        out.tokens = before.tokens + sum(r.tokens - before.tokens for r in results)
        out.latency = before.latency + max(r.latency - before.latency for r in results)
        return out

    def _parallel(self, node: Node, ensemble: Node, state: _State, path: str, ensemble_path: str) -> _State:
        results = [
            self._operator(name, node.style, state, f"{path}.{j + 1}", SAMPLE_TEMPERATURE)
            for j, name in enumerate(node.operators)
        ]
        joined = self._join(state, results, results[0])
        candidates = [r.answer for r in results if r.answer is not None]
        if not candidates:
            joined.note = "no branch answered"
            return joined
        name = ensemble.operators[0]
        letters = "ABCDEFGH"
        listing = "\n".join(f"{letters[k]}. {answer}" for k, answer in enumerate(candidates))
        user = self._context(joined, include_answer=False) + f"\n\nCandidate answers:\n{listing}"
        task = f"{OPERATOR_TASKS[name]} Reply with its letter inside <choice></choice>."
        reply = self._ask(name, ensemble.style, task, user, joined, ensemble_path)
        chosen: str | None = None
        if reply is not None:
            match = _CHOICE.findall(reply)
            if match and match[-1].upper() in letters[: len(candidates)]:
                chosen = candidates[letters.index(match[-1].upper())]
        if chosen is None:
            # No readable choice: the plurality of the candidates (by normalised answer), first on ties.
            counts = Counter(normalise_answer(c) for c in candidates)
            best = max(counts.values())
            chosen = next(c for c in candidates if counts[normalise_answer(c)] == best)
            joined.note = f"{name} gave no choice; plurality: {_short(chosen)}"
        else:
            joined.note = f"{name} chose {_short(chosen)}"
        joined.answer, joined.flagged, joined.feedback = chosen, None, ""
        return joined

    # -------------------------------------------------------------- operators

    def _operator(self, name: str, style: str, state: _State, path: str, temperature: float | None = None) -> _State:
        state = replace(state)
        role = ROLE[name]
        problem = self.problem
        code_problem = problem.problem_type == "code"
        if role == PLANNER:
            reply = self._ask(name, style, OPERATOR_TASKS[name], self._context(state), state, path, temperature)
            if reply is not None:
                state.plans = (*state.plans, f"{name}:\n{reply.strip()[:2000]}")
                state.note = "plan written"
            return state
        if role == SOLVER:
            if name == "Programmer":
                task = (
                    f"Write the Python function {problem.entry_point}. {CODE_FORMAT}"
                    if code_problem
                    else (OPERATOR_TASKS[name] + " Reply with one ```python code block.")
                )
            else:
                task = OPERATOR_TASKS[name] + " " + (CODE_FORMAT if code_problem else ANSWER_FORMAT)
            reply = self._ask(name, style, task, self._context(state, include_answer=False), state, path, temperature)
            if reply is None:
                return state
            self._new_answer(state, name, reply)
            return state
        if role == CHECKER:
            if state.answer is None:
                state.note = "nothing to check"
                return state
            if name == "Test" and code_problem and problem.tests:
                result = self.run_tests(state.answer)
                total = len(problem.tests)
                passed = result.passed if result.ok else 0
                state.flagged = passed < total
                if result.ok:
                    failing = "; ".join(f"{problem.tests[i]} -> {error}" for i, error in result.failures[:3])
                    state.feedback = f"{passed}/{total} tests passed. {failing}".strip()
                else:
                    state.feedback = f"the code did not run: {result.status}: {result.detail}"
                state.last_check = (name, state.flagged)
                state.note = f"tests passed {passed}/{total}"
                return state
            task = f"{OPERATOR_TASKS[name]} {VERDICT_FORMAT}"
            reply = self._ask(name, style, task, self._context(state), state, path, temperature)
            if reply is None:
                return state
            flagged = extract_verdict(reply)
            if flagged is None:
                state.note = "gave no verdict"
                return state
            state.flagged, state.feedback = flagged, reply.strip()[-1500:]
            state.last_check = (name, flagged)
            state.note = "flagged a problem" if flagged else "found no problem"
            return state
        if role == REVISER:
            if state.answer is None:
                state.note = "nothing to revise"
                return state
            if state.flagged is False:
                state.note = "kept the answer (no problem found)"
                return state
            task = OPERATOR_TASKS[name] + " " + (CODE_FORMAT if code_problem else ANSWER_FORMAT)
            reply = self._ask(name, style, task, self._context(state), state, path, temperature)
            if reply is not None:
                self._new_answer(state, name, reply)
            return state
        if role == FORMATTER:
            if state.answer is None:
                state.note = "nothing to format"
                return state
            if code_problem:
                state.note = "kept the code"
                return state
            reply = self._ask(
                name, style, OPERATOR_TASKS[name] + " " + ANSWER_FORMAT, self._context(state), state, path, temperature
            )
            if reply is not None:
                formatted = extract_answer(reply)
                if formatted is not None:
                    state.answer = formatted
                state.note = f"answer {_short(state.answer)}"
            return state
        # An ensemble without a parallel structure before it: one candidate, nothing to choose.
        state.note = "nothing to choose from"
        return state

    def _new_answer(self, state: _State, name: str, reply: str) -> None:
        problem = self.problem
        if problem.problem_type == "code":
            code = extract_code(reply)
            if code is None:
                state.note = "wrote no code"
                return
            state.answer = code
            if name == "Programmer":
                result = run_program(code, self.limits)
                state.note = "code written" + ("" if result.ok else f" (running it: {result.status})")
            else:
                state.note = "code written"
        elif name == "Programmer":
            code = extract_code(reply)
            if code is None:
                state.note = "wrote no program"
                return
            result = run_program(code, self.limits)
            printed = [line.strip() for line in result.stdout.splitlines() if line.strip()]
            if not result.ok or not printed:
                state.note = f"the program failed: {result.status} {_short(result.detail)}".strip()
                return
            state.answer = printed[-1]
            state.note = f"answer {_short(state.answer)}"
        else:
            answer = extract_answer(reply)
            if answer is None:
                state.note = "gave no answer"
                return
            state.answer = answer
            state.note = f"answer {_short(answer)}"
        state.flagged, state.feedback = None, ""

    # ------------------------------------------------------------------ calls

    def _context(self, state: _State, include_answer: bool = True) -> str:
        problem = self.problem
        parts = [f"Problem ({problem.problem_type}):\n{problem.text}"]
        if problem.entry_point:
            parts.append(f"The function to write: {problem.entry_point}")
        if state.plans:
            parts.append("Notes from earlier steps:\n" + "\n\n".join(state.plans))
        if include_answer and state.answer is not None:
            parts.append(f"Proposed answer:\n{state.answer}")
            if state.feedback:
                parts.append(f"Feedback on it:\n{state.feedback}")
        return "\n\n".join(parts)

    def _ask(
        self,
        name: str,
        style: str,
        task: str,
        user: str,
        state: _State,
        path: str,
        temperature: float | None = None,
    ) -> str | None:
        """One chat completion (or its cached response); tokens and latency go on ``state``;
        None when the call failed (noted on ``state``)."""
        settings = self.settings
        system = " ".join(p for p in (ROLE_PROMPTS[ROLE[name]], task, STYLE_PROMPTS.get(style, "")) if p)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        temp = settings.temperature if temperature is None else temperature
        node = f"{path}:{name}:{style}"
        key = cache_key(self.problem_key, node, messages, settings.model, temp)
        response = self.cache.get(key)
        if response is None:
            try:
                response = self._call(messages, temp)
            except CallFailed as exc:
                state.note = f"model call failed ({_short(str(exc))})"
                return None
            self.cache.put(key, settings.model, node, response)
        state.tokens += response.tokens
        state.latency += response.latency
        return response.content

    def _call(self, messages: list[dict[str, str]], temperature: float) -> Response:
        settings = self.settings
        if self._client is None:
            self._client = openai.OpenAI(
                api_key=settings.api_key or "none",
                base_url=settings.api_base_url,
                max_retries=settings.max_retries,
                timeout=settings.request_timeout_s,
            )
        started = time.monotonic()
        self.calls += 1
        try:
            completion = self._client.chat.completions.create(
                model=settings.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=temperature,
                max_tokens=settings.max_tokens,
            )
        except openai.APIError as exc:
            raise CallFailed(str(getattr(exc, "message", exc))) from None
        latency = time.monotonic() - started
        usage = completion.usage
        content = (completion.choices[0].message.content or "") if completion.choices else ""
        return Response(
            content,
            (usage.prompt_tokens or 0) if usage else 0,
            (usage.completion_tokens or 0) if usage else 0,
            round(latency, 3),
        )

    # ---------------------------------------------------------------- verdict

    def _verdict(self, state: _State, names: list[str]) -> str:
        if state.answer is None:
            return (
                "no answer: the workflow has no solver"
                if not any(ROLE[n] == SOLVER for n in names)
                else ("no answer: no solver answered")
            )
        problem = self.problem
        if problem.problem_type == "code" and problem.tests and "Test" in names:
            # As the published feedback: the tests' verdict on the final answer.
            total, passed = len(problem.tests), self.tests_passed(state.answer)
            return f"tests passed {passed}/{total}" if passed == total else f"tests failed {total - passed}/{total}"
        if state.last_check is not None:
            name, flagged = state.last_check
            return f"{name} flagged a problem" if flagged else f"{name} found no problem"
        return "unverified: the workflow has no checker"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self.cache.close()


def _is_ensemble(node: Node) -> bool:
    return node.kind == OPERATOR and ROLE[node.operators[0]] == ENSEMBLE
