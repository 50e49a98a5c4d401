"""The OpenEnv adapter: sessions and a bounded episode store in front of the core.

The core (``server/core``) owns everything about one episode. This module owns
only which episodes exist:

* :class:`EpisodeStore` keeps episodes by id so that plain HTTP clients can
  continue one across requests. It is bounded by count and by idle time;
  episodes held by a live WebSocket session are never evicted.
* :class:`WorkflowEnvironment` is openenv's ``Environment`` for one session
  (a WebSocket connection): ``reset`` starts a new episode in the store,
  ``step`` continues it, ``close`` releases it.

Everything here runs on the server's event loop thread: the async methods do
the work inline (a step is microseconds of pure Python, so handing it to a
thread pool would cost more than it saves), which also means the store needs
no locks.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

from workflow_orchestrator.models import GradeResult, WorkflowAction, WorkflowObservation, WorkflowState
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.taskapi import TaskCatalogue
from workflow_orchestrator.server.tasks import TaskRegistry, UnknownTaskError


class EpisodeNotFoundError(LookupError):
    """No episode with this id: never created, or expired and evicted."""

    def __init__(self, episode_id: str, expired: bool) -> None:
        super().__init__(episode_id)
        self.episode_id = episode_id
        self.expired = expired

    def __str__(self) -> str:
        if self.expired:
            return (
                f"episode {self.episode_id!r} has expired (idle too long, or evicted to keep "
                "the episode store bounded); start a new one with POST /reset"
            )
        return f"unknown episode_id {self.episode_id!r}; POST /reset returns a new one"


class EpisodeNotFinishedError(RuntimeError):
    """Grading was asked of an episode that is still running."""


class DuplicateEpisodeError(ValueError):
    """A client-chosen episode id that is already in use."""


@dataclass(slots=True)
class StoredEpisode:
    """One episode in the store, with the bookkeeping the store needs."""

    episode_id: str
    task_id: str
    env: WorkflowEnv
    last_active_at: float
    # WebSocket sessions currently playing this episode; such an episode is
    # never evicted, so a live session cannot lose its episode under it.
    live_sessions: int = 0
    finished: bool = False
    seed: int | None = None
    step_count: int = field(default=0)


@dataclass(frozen=True, slots=True)
class StoreLimits:
    max_episodes: int = 256
    idle_timeout_s: float = 900.0
    # Ids of evicted episodes remembered so that a late client is told
    # "expired" rather than "unknown"; bounded like everything else.
    remembered_evictions: int = 4096


class EpisodeStore:
    """Episodes by id, least recently used first, bounded by count and idle time."""

    def __init__(
        self,
        registry: TaskRegistry,
        limits: StoreLimits,
        clock: Callable[[], float] = time.monotonic,
        outcome_secret: str | bytes | None = None,
    ) -> None:
        self.registry = registry
        # Every episode of the store is sealed by it (WorkflowEnv's outcome_secret).
        self._outcome_secret = outcome_secret
        self.limits = limits
        self._clock = clock
        self._episodes: OrderedDict[str, StoredEpisode] = OrderedDict()
        self._evicted: OrderedDict[str, None] = OrderedDict()
        self._latest_finished: dict[str, str] = {}
        self.default_task_id = registry.task_ids()[0]

    def __len__(self) -> int:
        return len(self._episodes)

    def now(self) -> float:
        return self._clock()

    # ---------------------------------------------------------------- episodes

    def start(
        self,
        task_id: str | None = None,
        seed: int | None = None,
        worker_count: int | None = None,
        episode_id: str | None = None,
    ) -> tuple[StoredEpisode, dict[str, Any]]:
        """Start an episode; returns it and its first observation.

        Raises :class:`UnknownTaskError`, ``ValueError`` for parameters the
        task does not accept, or :class:`DuplicateEpisodeError`.
        """
        if episode_id is not None and episode_id in self._episodes:
            raise DuplicateEpisodeError(f"episode_id {episode_id!r} is already in use")
        task_id = task_id or self.default_task_id
        env = WorkflowEnv(registry=self.registry, outcome_secret=self._outcome_secret)
        observation = env.reset(task_id=task_id, seed=seed, worker_count=worker_count)
        now = self._clock()
        self.evict(now)
        episode = StoredEpisode(
            episode_id=episode_id or secrets.token_hex(8),
            task_id=task_id,
            env=env,
            last_active_at=now,
            seed=observation.get("seed"),
        )
        self._episodes[episode.episode_id] = episode
        self._evicted.pop(episode.episode_id, None)
        return episode, observation

    def get(self, episode_id: str) -> StoredEpisode:
        """The episode with this id, if it exists and has not expired."""
        episode = self._episodes.get(episode_id)
        if episode is None:
            raise EpisodeNotFoundError(episode_id, expired=episode_id in self._evicted)
        if episode.live_sessions == 0 and self._clock() - episode.last_active_at > self.limits.idle_timeout_s:
            self._drop(episode_id)
            raise EpisodeNotFoundError(episode_id, expired=True)
        return episode

    def step(self, episode: StoredEpisode, action: dict[str, Any]) -> dict[str, Any]:
        """Apply one action (a plain mapping for the core) and return the observation."""
        observation = episode.env.step(action)
        episode.last_active_at = self._clock()
        episode.step_count += 1
        self._episodes.move_to_end(episode.episode_id)
        if not episode.finished and observation.get("done"):
            episode.finished = True
            self._latest_finished[episode.task_id] = episode.episode_id
        return observation

    def latest_finished(self, task_id: str) -> StoredEpisode:
        """The most recently finished episode of a task that is still stored."""
        if task_id not in self.registry.task_ids():
            raise UnknownTaskError(task_id, self.registry.task_ids())
        episode_id = self._latest_finished.get(task_id)
        if episode_id is None or episode_id not in self._episodes:
            raise EpisodeNotFoundError(f"<latest finished episode of {task_id}>", expired=False)
        return self._episodes[episode_id]

    def grade(self, episode: StoredEpisode) -> dict[str, Any]:
        if not episode.finished:
            raise EpisodeNotFinishedError(
                f"episode {episode.episode_id!r} is not finished (step {episode.step_count}); "
                "keep stepping until the observation says done, then grade it"
            )
        return episode.env.grade()

    # ---------------------------------------------------------------- bounds

    def evict(self, now: float | None = None) -> int:
        """Drop idle episodes, then the least recently used until the count fits.

        Episodes held by live sessions are skipped. Called before every new
        episode, so it scans only the oldest entries: it stops at the first
        one that is neither idle nor over the count. Returns how many were dropped.
        """
        now = self._clock() if now is None else now
        timeout = self.limits.idle_timeout_s
        # Leave room for the episode about to be added.
        excess = len(self._episodes) - max(self.limits.max_episodes - 1, 0)
        victims = []
        for episode_id, episode in self._episodes.items():
            if excess <= 0 and now - episode.last_active_at <= timeout:
                # Oldest activity comes first: nothing after this one is idle.
                break
            if episode.live_sessions:
                continue
            victims.append(episode_id)
            excess -= 1
        for episode_id in victims:
            self._drop(episode_id)
        return len(victims)

    def _drop(self, episode_id: str) -> None:
        episode = self._episodes.pop(episode_id)
        if self._latest_finished.get(episode.task_id) == episode_id:
            del self._latest_finished[episode.task_id]
        self._evicted[episode_id] = None
        if len(self._evicted) > self.limits.remembered_evictions:
            self._evicted.popitem(last=False)


def envelope(observation: dict[str, Any], episode_id: str) -> dict[str, Any]:
    """openenv's wire envelope: ``{"observation": ..., "reward": ..., "done": ...}``.

    The observation goes out without reward and done (they move up a level,
    as openenv's clients expect) and with its ``episode_id``. It is a new
    dict: the core keeps the one it returned as the episode's latest
    observation, so that one is not touched.
    """
    wire = {key: value for key, value in observation.items() if key != "reward" and key != "done"}
    wire["episode_id"] = episode_id
    return {"observation": wire, "reward": observation.get("reward"), "done": observation.get("done", False)}


class WorkflowEnvironment(Environment[WorkflowAction, WorkflowObservation, WorkflowState]):
    """openenv's ``Environment`` for one session: its current episode lives in the store.

    ``reset`` starts a new episode (the previous one stays in the store for
    grading until it is evicted); ``step`` continues the current one.
    ``reset_payload`` and ``step_payload`` are the fast paths the server's own
    routes use: they return openenv's wire envelope as plain data, built once.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, store: EpisodeStore, metadata: EnvironmentMetadata | None = None) -> None:
        super().__init__()
        self._store = store
        self._metadata = metadata
        self._episode: StoredEpisode | None = None

    @property
    def episode(self) -> StoredEpisode | None:
        return self._episode

    # ---------------------------------------------------------------- fast paths

    def reset_payload(
        self,
        task_id: str | None = None,
        seed: int | None = None,
        worker_count: int | None = None,
        episode_id: str | None = None,
    ) -> dict[str, Any]:
        episode, observation = self._store.start(task_id, seed, worker_count, episode_id)
        self._release()
        episode.live_sessions += 1
        self._episode = episode
        return envelope(observation, episode.episode_id)

    def step_payload(self, action: WorkflowAction) -> dict[str, Any]:
        if self._episode is None:
            raise RuntimeError("no episode yet: send a reset first")
        episode = self._episode
        return envelope(self._store.step(episode, action.to_core()), episode.episode_id)

    def state_payload(self) -> dict[str, Any]:
        if self._episode is None:
            raise RuntimeError("no episode yet: send a reset first")
        return episode_state(self._episode)

    # ---------------------------------------------------------------- openenv API

    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task_id: str | None = None,
        worker_count: int | None = None,
        **kwargs: Any,
    ) -> WorkflowObservation:
        if kwargs:
            raise TypeError(f"unexpected reset parameters: {', '.join(sorted(kwargs))}")
        return observation_model(self.reset_payload(task_id, seed, worker_count, episode_id))

    async def reset_async(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task_id: str | None = None,
        worker_count: int | None = None,
        **kwargs: Any,
    ) -> WorkflowObservation:
        # Inline on the event loop, on purpose: see the module docstring.
        return self.reset(seed=seed, episode_id=episode_id, task_id=task_id, worker_count=worker_count, **kwargs)

    def step(self, action: WorkflowAction, timeout_s: float | None = None, **kwargs: Any) -> WorkflowObservation:
        return observation_model(self.step_payload(action))

    async def step_async(
        self, action: WorkflowAction, timeout_s: float | None = None, **kwargs: Any
    ) -> WorkflowObservation:
        return self.step(action, timeout_s=timeout_s, **kwargs)

    @property
    def state(self) -> WorkflowState:
        if self._episode is None:
            return WorkflowState()
        return WorkflowState.model_construct(**self.state_payload())

    def get_metadata(self) -> EnvironmentMetadata:
        if self._metadata is not None:
            return self._metadata
        return EnvironmentMetadata(name="workflow_orchestrator", description="DAG workflow orchestration")

    def close(self) -> None:
        self._release()

    # ---------------------------------------------------------------- openenv's task API

    def list_splits(self) -> list[dict[str, Any]]:
        return self._catalogue().splits()

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        return self._catalogue().preview(split)

    def num_tasks(self, split: str) -> int:
        return self._catalogue().size(split)

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        return self._catalogue().task(split, index)

    def get_task_range(self, split: str, start: int | None = None, stop: int | None = None) -> list[dict[str, Any]]:
        return self._catalogue().task_range(split, start, stop)

    def _catalogue(self) -> TaskCatalogue:
        return TaskCatalogue(self._store.registry)

    def _release(self) -> None:
        if self._episode is not None:
            self._episode.live_sessions -= 1
            self._episode.last_active_at = self._store.now()
            self._episode = None


def observation_model(wire: dict[str, Any]) -> WorkflowObservation:
    """The typed observation for openenv's in-process API, built without re-validation."""
    fields = {**wire["observation"], "reward": wire["reward"], "done": wire["done"]}
    if fields.get("grade") is not None:
        fields["grade"] = GradeResult.model_construct(**fields["grade"])
    return WorkflowObservation.model_construct(**fields)


def episode_state(episode: StoredEpisode) -> dict[str, Any]:
    """The full state of an episode as plain data, with its id."""
    state = episode.env.state()
    state["episode_id"] = episode.episode_id
    state.setdefault("step_count", episode.step_count)
    state.setdefault("task_id", episode.task_id)
    state.setdefault("done", episode.env.done)
    return state
