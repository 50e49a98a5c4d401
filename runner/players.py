"""Who chooses the actions: a built-in policy, the oracle (the best plan it can
find with every seeded outcome known), or an LLM behind an OpenAI-compatible
API (``ModelPlayer`` over ``ModelClient``, which owns timeouts and retries)."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import openai
from openai import AsyncOpenAI

from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.tasks import TaskRegistry, default_registry
from workflow_orchestrator.server.tasks.best_scores import shipped_entry

from .answers import action_from_tool_calls, read_answer, unknown_action_type
from .canvas import CANVAS_FALLBACK, is_canvas, read_canvas_answer
from .errors import EpisodeFailure, FatalError, ModelCallFailed
from .prompts import ACTION_TOOLS, system_prompt, user_prompt
from .settings import ORACLE_MODULE, ORACLE_SECONDS, RunSettings

logger = logging.getLogger(__name__)

WAIT: dict[str, Any] = {"action_type": "wait"}


def fallback_action(observation: Mapping[str, Any]) -> dict[str, Any]:
    """What is played instead of an answer that cannot be: ``wait``, or on a canvas
    (which has no action that lets a round pass) ``execute``."""
    return dict(CANVAS_FALLBACK if is_canvas(observation) else WAIT)


MAX_REFUSALS_IN_A_ROW = 5
# Connections to the model API that could not be made (refused, no such host),
# in a row over the whole run: an unreachable API stops the run like a refused key.
MAX_UNREACHABLE_IN_A_ROW = 3


@dataclass(slots=True)
class Decision:
    action: dict[str, Any]
    issue: str | None = None  # this runner's error code when the action is a fallback
    detail: str | None = None
    answer: str | None = None
    prompt: str | None = None  # the user message the model was sent
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


class Player(Protocol):
    async def decide(self, observation: Mapping[str, Any], deadline: float) -> Decision: ...

    def observe(self, decision: Decision, label: str, observation: Mapping[str, Any]) -> None: ...


class PolicyPlayer:
    """A built-in policy, seeded with the episode's seed."""

    def __init__(self, name: str, seed: int) -> None:
        self.policy = make_policy(name, seed)

    async def decide(self, observation: Mapping[str, Any], deadline: float) -> Decision:
        return Decision(self.policy.act(dict(observation)))

    def observe(self, decision: Decision, label: str, observation: Mapping[str, Any]) -> None:
        """Built-in policies read only the current observation."""


class OraclePlayer:
    """The oracle: it knows every seeded outcome, searches this task and seed for the
    best plan it can find (or, when asked to, takes the shipped plan of this task
    definition and seed), and plays that plan. Over ENV_URL the plan is computed
    here, so the server must run the same simulation."""

    def __init__(
        self,
        task_id: str,
        seed: int,
        worker_count: int | None,
        registry: TaskRegistry | None = None,
        seconds: float = ORACLE_SECONDS,
        shipped: bool = False,
    ) -> None:
        self.task_id = task_id
        self.seed = seed
        self.worker_count = worker_count
        self.registry = registry
        self.seconds = seconds
        self.shipped = shipped
        self.plan: list[dict[str, Any]] | None = None
        self.played = 0

    def _solve(self, seconds: float) -> list[dict[str, Any]]:
        registry = self.registry or default_registry()
        resolved = registry.resolve(self.task_id, seed=self.seed, worker_count=self.worker_count)
        entry = shipped_entry(resolved.spec, self.seed) if self.shipped else None
        if entry is not None:
            return [dict(action) for action in entry["plan"]]
        oracle = importlib.import_module(ORACLE_MODULE)
        try:
            result = oracle.solve(resolved.compiled, self.seed, seconds=seconds)
        except NotImplementedError as exc:
            raise EpisodeFailure(f"the oracle cannot play {self.task_id}: {exc}") from None
        return [dict(action) for action in result.plan]

    async def decide(self, observation: Mapping[str, Any], deadline: float) -> Decision:
        if self.plan is None:
            seconds = max(0.1, min(self.seconds, deadline - time.monotonic()))
            # The search is CPU work: off the event loop, so that other episodes go on.
            self.plan = await asyncio.to_thread(self._solve, seconds)
        if self.played >= len(self.plan):
            return Decision(dict(WAIT))
        self.played += 1
        return Decision(self.plan[self.played - 1])

    def observe(self, decision: Decision, label: str, observation: Mapping[str, Any]) -> None:
        """The plan is fixed in advance: the seeded outcomes are known."""


@dataclass(slots=True)
class Completion:
    text: str
    tool_calls: list[tuple[str, str]]
    prompt_tokens: int
    completion_tokens: int


class ModelClient:
    """Chat completions with a timeout per call and retries with backoff on transient errors.

    401/403/404 (a refused key, an unknown model) are fatal for the whole run:
    every later call would fail the same way; so are
    :data:`MAX_UNREACHABLE_IN_A_ROW` connections in a row that could not be
    made at all. Other 4xx answers are not retried: the step plays a fallback.
    """

    def __init__(self, client: AsyncOpenAI, settings: RunSettings) -> None:
        self.client = client
        self.model = settings.model or ""
        self.temperature = settings.temperature
        self.max_tokens = settings.max_tokens
        self.request_timeout_s = settings.request_timeout_s
        self.max_retries = settings.max_retries
        self.backoff_s = settings.retry_backoff_s
        self.tools = ACTION_TOOLS if settings.tool_calls else None
        self._jitter = random.Random()
        # Refusals (4xx) in a row over the whole run: a request the API will never
        # accept (an unsupported parameter, say) must not turn a run into waits.
        self.refusals_in_a_row = 0
        self.unreachable_in_a_row = 0

    async def complete(self, messages: list[dict[str, Any]], deadline: float, use_tools: bool = True) -> Completion:
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ModelCallFailed("the episode's time ran out")
            timeout = min(self.request_timeout_s, remaining)
            try:
                completion = await asyncio.wait_for(self._create(messages, timeout, use_tools), timeout + 1.0)
                self.refusals_in_a_row = 0
                self.unreachable_in_a_row = 0
                return completion
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                raise FatalError(f"the model API refused the request: {_describe_api_error(exc)}") from None
            except openai.APIStatusError as exc:
                if not (exc.status_code in (408, 409, 429) or exc.status_code >= 500):
                    self.refusals_in_a_row += 1
                    if self.refusals_in_a_row >= MAX_REFUSALS_IN_A_ROW:
                        raise FatalError(
                            f"the model API refused {self.refusals_in_a_row} requests in a row: "
                            f"{_describe_api_error(exc)}"
                        ) from None
                    raise ModelCallFailed(_describe_api_error(exc)) from None
                reason, retry_after = _describe_api_error(exc), _retry_after_s(exc)
            except (TimeoutError, openai.APIConnectionError) as exc:
                if isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError):
                    self.unreachable_in_a_row += 1
                    if self.unreachable_in_a_row >= MAX_UNREACHABLE_IN_A_ROW:
                        raise FatalError(
                            f"cannot reach the model API at {self.client.base_url} "
                            f"({self.unreachable_in_a_row} attempts in a row): {_describe_api_error(exc)}"
                        ) from None
                reason, retry_after = (
                    (
                        _describe_api_error(exc)
                        if isinstance(exc, openai.APIError)
                        else f"no answer within {timeout:.1f} s"
                    ),
                    None,
                )
            if attempt >= self.max_retries:
                raise ModelCallFailed(f"{reason} (after {attempt + 1} attempts)")
            delay = self.backoff_s * 2**attempt * (0.5 + 0.5 * self._jitter.random())
            if retry_after is not None:
                delay = max(delay, min(retry_after, 60.0))
            if time.monotonic() + delay >= deadline:
                raise ModelCallFailed(f"{reason}; no time left to retry")
            attempt += 1
            logger.warning("model call failed (%s); retry %d of %d in %.1f s", reason, attempt, self.max_retries, delay)
            await asyncio.sleep(delay)

    async def _create(self, messages: list[dict[str, Any]], timeout: float, use_tools: bool = True) -> Completion:
        extra: dict[str, Any] = {}
        if self.tools is not None and use_tools:
            extra = {"tools": self.tools, "tool_choice": "auto"}
        response = await self.client.chat.completions.create(
            model=self.model,
            messages=messages,  # type: ignore[arg-type]
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            timeout=timeout,
            **extra,
        )
        usage = response.usage
        prompt_tokens = (usage.prompt_tokens or 0) if usage else 0
        completion_tokens = (usage.completion_tokens or 0) if usage else 0
        if not response.choices:
            return Completion("", [], prompt_tokens, completion_tokens)
        message = response.choices[0].message
        calls: list[tuple[str, str]] = []
        for call in message.tool_calls or []:
            # Custom tool calls carry no function; only function calls name an action.
            function = getattr(call, "function", None)
            if function is not None:
                calls.append((function.name, function.arguments or ""))
        return Completion(message.content or "", calls, prompt_tokens, completion_tokens)


def _describe_api_error(exc: openai.APIError) -> str:
    status = getattr(exc, "status_code", None)
    message = " ".join(str(exc.message or type(exc).__name__).split())[:200]
    return f"HTTP {status}: {message}" if status else message


def _retry_after_s(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class ModelPlayer:
    """The LLM: a system prompt with the rules, the rendered state and recent steps each turn.

    Each call is self-contained (system, then one user message), so the prompt
    stays the same size however long the episode is.
    """

    def __init__(self, client: ModelClient, settings: RunSettings, first_observation: Mapping[str, Any]) -> None:
        self.client = client
        self.tool_calls = settings.tool_calls
        self.history_size = settings.history
        self.system = system_prompt(first_observation, settings.tool_calls)
        self.history: list[str] = []
        # Canvas tasks answer in text: the published XML form, or JSON.
        self.canvas = is_canvas(first_observation)
        self.fallback = fallback_action(first_observation)

    def messages(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        recent = self.history[-self.history_size :] if self.history_size else []
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": user_prompt(observation, recent, self.tool_calls)},
        ]

    async def decide(self, observation: Mapping[str, Any], deadline: float) -> Decision:
        started = time.monotonic()
        messages = self.messages(observation)
        prompt = messages[-1]["content"]
        try:
            if self.canvas:
                completion = await self.client.complete(messages, deadline, use_tools=False)
            else:
                completion = await self.client.complete(messages, deadline)
        except ModelCallFailed as exc:
            return Decision(
                dict(self.fallback),
                issue="model_call_failed",
                detail=str(exc),
                prompt=prompt,
                latency_s=time.monotonic() - started,
            )
        latency = time.monotonic() - started
        if self.canvas:
            return self._canvas_decision(completion, prompt, latency)
        action = action_from_tool_calls(completion.tool_calls) if completion.tool_calls else None
        unknown_types = [name for name, _ in completion.tool_calls if unknown_action_type({"action_type": name})]
        if action is None:
            action, unknown = read_answer(completion.text)
            if unknown is not None:
                unknown_types.append(unknown)
        answer = completion.text
        if completion.tool_calls:
            answer = json.dumps([{"name": n, "arguments": a} for n, a in completion.tool_calls]) + (
                f"\n{completion.text}" if completion.text else ""
            )
        reason = f"unknown action type {unknown_types[0]!r}" if unknown_types else "no action found"
        return self._answered(action, reason, answer, completion, prompt, latency)

    def _canvas_decision(self, completion: Completion, prompt: str, latency: float) -> Decision:
        action, reason = read_canvas_answer(completion.text)
        return self._answered(action, reason, completion.text, completion, prompt, latency)

    def _answered(
        self,
        action: dict[str, Any] | None,
        reason: str | None,
        answer: str,
        completion: Completion,
        prompt: str,
        latency: float,
    ) -> Decision:
        """The decision on a model's answer: its action, or (none found, for ``reason``) the fallback."""
        decision = Decision(
            dict(self.fallback),
            answer=answer[:8000],
            prompt=prompt,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_s=latency,
        )
        if action is None:
            decision.issue = "unparseable_answer"
            decision.detail = f"{reason} in: " + " ".join(answer.split())[:160]
        else:
            decision.action = action
        return decision

    def observe(self, decision: Decision, label: str, observation: Mapping[str, Any]) -> None:
        line = f"step {observation.get('step_count')}: {label} -> reward {observation.get('reward') or 0.0:+.2f}"
        if decision.issue:
            played = self.fallback["action_type"]
            line += f" (your answer was not used: {decision.issue}; {played} was played)"
        errors = observation.get("errors") or []
        if errors:
            line += "; invalid: " + "; ".join(f"{e.get('code')}: {e.get('message', '')}" for e in errors)
        self.history.append(line)
