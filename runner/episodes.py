"""One episode and many: the record of each step, the result of each episode,
its [START]/[STEP]/[END] lines, and the ``Runner`` that plays episodes (at most
``concurrency`` at once) with their players and sessions."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx
from openai import AsyncOpenAI

from workflow_orchestrator.server.core import render_text
from workflow_orchestrator.server.tasks import TaskRegistry, default_registry

from .answers import action_label
from .errors import ActionRejected, EpisodeFailure, FatalError
from .players import Decision, ModelClient, ModelPlayer, OraclePlayer, Player, PolicyPlayer, fallback_action
from .sessions import EpisodeSession, LocalSession, RemoteSession, error_message
from .settings import ENV_NAME, ORACLE, RunSettings

logger = logging.getLogger(__name__)

# Every task ends by its time or step limit; this only stops a misbehaving server.
MAX_EPISODE_STEPS = 10_000


@dataclass(slots=True)
class StepRecord:
    step: int
    action: dict[str, Any]
    label: str
    reward: float
    done: bool
    errors: list[str]
    issue: str | None
    reward_breakdown: dict[str, float]
    answer: str | None = None
    prompt: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    observation_text: str | None = None

    @property
    def error_field(self) -> str:
        codes = ([self.issue] if self.issue else []) + self.errors
        return ",".join(codes) if codes else "null"


@dataclass(slots=True)
class EpisodeResult:
    model: str
    task_id: str
    seed: int | None
    episode_id: str | None = None
    score: float | None = None
    normalized_score: float | None = None
    normalized_to_planner: float | None = None
    # Which play of this task and seed it is (0 to --repeats - 1).
    repeat: int = 0
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    steps: list[StepRecord] = field(default_factory=list)
    grade: dict[str, Any] | None = None
    wall_s: float = 0.0
    error: str | None = None
    system_prompt: str | None = None

    @property
    def rewards(self) -> list[float]:
        return [s.reward for s in self.steps]

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.steps)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.steps)

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task_id": self.task_id,
            "seed": self.seed,
            "repeat": self.repeat,
            "episode_id": self.episode_id,
            "score": self.score,
            "normalized_score": self.normalized_score,
            "normalized_to_planner": self.normalized_to_planner,
            "success": self.success,
            "terminated": self.terminated,
            "truncated": self.truncated,
            "steps": len(self.steps),
            "total_reward": round(sum(self.rewards), 6),
            "tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "fallbacks": sum(1 for s in self.steps if s.issue),
            "invalid_actions": sum(1 for s in self.steps if s.errors),
            "wall_s": round(self.wall_s, 3),
            "error": self.error,
            "grade": self.grade,
        }

    def trajectory(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "system_prompt": self.system_prompt,
            "trajectory": [
                {
                    "step": s.step,
                    "action": s.action,
                    "label": s.label,
                    "reward": s.reward,
                    "reward_breakdown": s.reward_breakdown,
                    "done": s.done,
                    "errors": s.errors,
                    "issue": s.issue,
                    "prompt": s.prompt,
                    "answer": s.answer,
                    "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens,
                    "latency_s": round(s.latency_s, 3),
                    "observation_text": s.observation_text,
                }
                for s in self.steps
            ],
        }


def _token(value: Any) -> str:
    """A value for a key=value field: never empty, never with spaces."""
    return re.sub(r"\s+", "_", str(value)) or "-"


class EpisodeLines:
    """The [START]/[STEP]/[END] lines of one episode: written as they come when
    episodes run one at a time, as one block at the end when several run at once."""

    def __init__(self, stream: TextIO | None, live: bool) -> None:
        self.stream = stream  # None: no lines at all
        self.live = live
        self.lines: list[str] = []

    def emit(self, line: str) -> None:
        if self.stream is None:
            return
        if self.live:
            self.stream.write(line + "\n")
            self.stream.flush()
        else:
            self.lines.append(line)

    def start(self, task_id: str, model: str) -> None:
        self.emit(f"[START] task={_token(task_id)} env={ENV_NAME} model={_token(model)}")

    def step(self, record: StepRecord) -> None:
        if self.stream is None:
            return  # not even formatted: the tables play many thousands of steps
        self.emit(
            f"[STEP] step={record.step} action={record.label} reward={record.reward:.2f} "
            f"done={str(record.done).lower()} error={record.error_field}"
        )

    def end(self, result: EpisodeResult) -> None:
        if self.stream is None:
            return
        rewards = ",".join(f"{r:.2f}" for r in result.rewards)
        score = result.score if result.score is not None else 0.0
        self.emit(
            f"[END] success={str(result.success).lower()} steps={len(result.steps)} score={score:.3f} rewards={rewards}"
        )
        if not self.live:
            self.stream.write("\n".join(self.lines) + "\n")
            self.stream.flush()


@dataclass(frozen=True, slots=True)
class EpisodeJob:
    model: str  # the model name, or the built-in policy's name
    policy: str | None
    task_id: str
    seed: int | None
    repeat: int = 0


def canvas_executor_of(settings: RunSettings) -> Callable[[Any], Any] | None:
    """What runs canvas tasks' canvases (None: the simulator): for ``openai``, the run's model settings."""
    if settings.canvas_executor == "simulated":
        return None
    from workflow_orchestrator.executors import make_executor

    name = settings.canvas_executor
    model_settings = {"model": settings.model, "api_base_url": settings.api_base_url, "api_key": settings.api_key}
    return lambda problem: make_executor(name, problem, **model_settings)


class Runner:
    """Plays episodes, at most ``concurrency`` at once; their lines go to ``stdout``
    (None: no lines), in-process episodes use ``registry`` (default: the built-in one)."""

    def __init__(
        self, settings: RunSettings, stdout: TextIO | None, stderr: TextIO, registry: TaskRegistry | None = None
    ) -> None:
        self.settings = settings
        self.stdout = stdout
        self.stderr = stderr
        self.registry = registry
        self.http: httpx.AsyncClient | None = None
        self.model_client: ModelClient | None = None
        self.keep_observation_text = settings.trajectories is not None
        self.canvas_executor = canvas_executor_of(settings)

    async def __aenter__(self) -> Runner:
        settings = self.settings
        if settings.env_url:
            headers = {"Authorization": f"Bearer {settings.env_token}"} if settings.env_token else None
            self.http = httpx.AsyncClient(
                base_url=settings.env_url,
                timeout=httpx.Timeout(60.0, connect=10.0),
                headers=headers,
                limits=httpx.Limits(max_connections=max(10, settings.concurrency * 2)),
            )
        if settings.uses_model:
            client = AsyncOpenAI(
                api_key=settings.api_key,
                base_url=settings.api_base_url,
                max_retries=0,  # retries are ours: with backoff, bounded by the episode's time
                timeout=settings.request_timeout_s,
            )
            self.model_client = ModelClient(client, settings)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.model_client is not None:
            await self.model_client.client.close()

    async def check_environment(self) -> list[str]:
        """The environment's task ids (GET /tasks on a server); fatal when it cannot be reached."""
        if self.http is None:
            return (self.registry or default_registry()).task_ids()
        try:
            response = await self.http.get("/tasks")
        except httpx.HTTPError as exc:
            raise FatalError(f"cannot reach the environment at {self.settings.env_url}: {exc}") from None
        if response.status_code == 401:
            raise FatalError(
                f"the environment at {self.settings.env_url} wants a token: set WORKFLOW_ORCHESTRATOR_TOKEN"
            )
        if response.status_code != 200:
            raise FatalError(
                f"GET {self.settings.env_url}/tasks answered HTTP {response.status_code}: {error_message(response)}"
            )
        try:
            return [str(task["task_id"]) for task in response.json()["tasks"]]
        except (ValueError, KeyError, TypeError):
            raise FatalError(
                f"GET {self.settings.env_url}/tasks did not list tasks; is this a workflow_orchestrator server?"
            ) from None

    def new_session(self) -> EpisodeSession:
        if self.http is not None:
            return RemoteSession(self.http)
        return LocalSession(self.registry, self.settings.outcome_secret, self.canvas_executor)

    def new_player(self, job: EpisodeJob, observation: Mapping[str, Any]) -> Player:
        seed = int(observation.get("seed") or 0)
        if job.policy == ORACLE:
            settings = self.settings
            return OraclePlayer(
                job.task_id, seed, settings.worker_count, self.registry, settings.oracle_seconds, settings.shipped_plans
            )
        if job.policy is not None:
            return PolicyPlayer(job.policy, seed)
        assert self.model_client is not None
        return ModelPlayer(self.model_client, self.settings, observation)

    async def play(self, job: EpisodeJob) -> EpisodeResult:
        """One episode: reset, steps until done, the grade by episode_id; its lines on stdout."""
        started = time.monotonic()
        deadline = started + self.settings.episode_timeout_s
        lines = EpisodeLines(self.stdout, live=self.settings.concurrency == 1)
        result = EpisodeResult(model=job.model, task_id=job.task_id, seed=job.seed, repeat=job.repeat)
        lines.start(job.task_id, job.model)
        session = self.new_session()
        try:
            observation = await session.reset(
                job.task_id, job.seed, self.settings.worker_count, self.settings.reward_mode
            )
            result.episode_id = session.episode_id
            result.seed = observation.get("seed", job.seed)
            player = self.new_player(job, observation)
            if isinstance(player, ModelPlayer):
                result.system_prompt = player.system
            while not observation.get("done"):
                if len(result.steps) >= MAX_EPISODE_STEPS:
                    raise EpisodeFailure(f"the episode did not end within {MAX_EPISODE_STEPS} steps")
                observation = await self.take_step(session, player, observation, deadline, job, result)
                lines.step(result.steps[-1])
            result.terminated = bool(observation.get("terminated"))
            result.truncated = bool(observation.get("truncated"))
            result.success = result.terminated
            grade = await session.grade()
            result.grade = grade
            result.score = float(grade["score"])
            normalized = grade.get("normalized_score")
            result.normalized_score = float(normalized) if normalized is not None else None
            to_planner = grade.get("normalized_to_planner")
            result.normalized_to_planner = float(to_planner) if to_planner is not None else None
        except FatalError as exc:
            # The run stops; the episode's lines still end, so that a reader never sees a torn set.
            result.error = str(exc)
            result.wall_s = time.monotonic() - started
            lines.end(result)
            raise
        except (EpisodeFailure, ActionRejected) as exc:
            result.error, result.success = str(exc), False
            logger.error("%s %s seed %s: episode abandoned: %s", job.model, job.task_id, job.seed, exc)
        except (KeyError, TypeError, ValueError) as exc:
            # An answer of the environment without the fields every answer has.
            result.error, result.success = f"malformed answer from the environment: {type(exc).__name__}: {exc}", False
            logger.error(
                "%s %s seed %s: episode abandoned: %s",
                job.model,
                job.task_id,
                job.seed,
                result.error,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
        result.wall_s = time.monotonic() - started
        lines.end(result)
        return result

    async def take_step(
        self,
        session: EpisodeSession,
        player: Player,
        observation: Mapping[str, Any],
        deadline: float,
        job: EpisodeJob,
        result: EpisodeResult,
    ) -> dict[str, Any]:
        """Decide, act (a wait, or on a canvas an execute, instead of what the environment refuses), record;
        the next observation."""
        shown = render_text(dict(observation)) if self.keep_observation_text else None
        if time.monotonic() >= deadline:
            decision = Decision(fallback_action(observation), issue="episode_timeout")
        else:
            decision = await player.decide(observation, deadline)
        where = f"{job.model} {job.task_id} seed {result.seed} step {len(result.steps) + 1}"
        if decision.issue and decision.issue != "episode_timeout":
            logger.warning("%s: %s; playing wait (%s)", where, decision.issue, decision.detail or "")
        try:
            after = await session.step(decision.action)
        except ActionRejected as exc:
            logger.warning("%s: the environment refused %s (%s); playing wait", where, decision.action, exc)
            decision.action, decision.issue = fallback_action(observation), "rejected_by_environment"
            after = await session.step(decision.action)
        label = action_label(decision.action)
        record = StepRecord(
            step=len(result.steps) + 1,
            action=decision.action,
            label=label,
            reward=float(after.get("reward") or 0.0),
            done=bool(after.get("done")),
            errors=[str(e.get("code")) for e in after.get("errors") or []],
            issue=decision.issue,
            reward_breakdown=dict(after.get("reward_breakdown") or {}),
            answer=decision.answer,
            prompt=decision.prompt,
            prompt_tokens=decision.prompt_tokens,
            completion_tokens=decision.completion_tokens,
            latency_s=decision.latency_s,
            observation_text=shown,
        )
        result.steps.append(record)
        logger.debug("%s: %s reward %.2f", where, label, record.reward)
        player.observe(decision, label, after)
        return after

    async def run(
        self, jobs: Sequence[EpisodeJob], on_result: Callable[[EpisodeResult], None] | None = None
    ) -> list[EpisodeResult]:
        """The results in the order of the jobs; ``on_result`` sees each as it ends."""
        results: list[EpisodeResult | None] = [None] * len(jobs)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(jobs)):
            queue.put_nowait(index)

        async def worker() -> None:
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                result = await self.play(jobs[index])
                results[index] = result
                if on_result is not None:
                    on_result(result)

        workers = [asyncio.create_task(worker()) for _ in range(min(self.settings.concurrency, len(jobs)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return [r for r in results if r is not None]
