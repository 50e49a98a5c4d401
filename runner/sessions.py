"""Where an episode runs: in this process (``LocalSession``) or on an environment
server, by its ``episode_id`` (``RemoteSession``, with retries where they are safe)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx

from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import TaskRegistry, UnknownTaskError

from .errors import ActionRejected, EpisodeFailure


class EpisodeSession(Protocol):
    episode_id: str | None

    async def reset(
        self, task_id: str, seed: int | None, worker_count: int | None, reward_mode: str = "shaped"
    ) -> dict[str, Any]: ...

    async def step(self, action: Mapping[str, Any]) -> dict[str, Any]: ...

    async def grade(self) -> dict[str, Any]: ...


class LocalSession:
    """One episode in this process. ``executor`` (a callable ``problem -> executor``) runs the
    canvases of canvas tasks; other tasks have none to choose."""

    def __init__(
        self,
        registry: TaskRegistry | None = None,
        outcome_secret: str | None = None,
        executor: Callable[[Any], Any] | None = None,
    ) -> None:
        self.env = WorkflowEnv(registry, outcome_secret=outcome_secret)
        self.episode_id: str | None = None
        self.executor = executor
        self._families = {task["task_id"]: task["family"] for task in self.env.registry.list_tasks()}

    async def reset(
        self, task_id: str, seed: int | None, worker_count: int | None, reward_mode: str = "shaped"
    ) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.executor is not None and self._families.get(task_id) == "canvas":
            options["executor"] = self.executor
        try:
            observation = self.env.reset(
                task_id, seed=seed, worker_count=worker_count, reward_mode=reward_mode, **options
            )
        except (UnknownTaskError, ValueError) as exc:
            raise EpisodeFailure(str(exc)) from None
        self.episode_id = f"local-{task_id}-{observation['seed']}"
        return observation

    async def step(self, action: Mapping[str, Any]) -> dict[str, Any]:
        return self.env.step(action)

    async def grade(self) -> dict[str, Any]:
        return self.env.grade()


class RemoteSession:
    """One episode on a server: reset returns its episode_id, which step and the grader then name.

    Every request on the episode carries the secret the reset returned, and
    every step the step count it expects, so a step whose answer was lost
    can be sent again: the server applies it once and answers the same.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.episode_id: str | None = None
        self.secret: str | None = None
        self.step_count = 0

    async def reset(
        self, task_id: str, seed: int | None, worker_count: int | None, reward_mode: str = "shaped"
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"task_id": task_id}
        if seed is not None:
            body["seed"] = seed
        if worker_count is not None:
            body["worker_count"] = worker_count
        if reward_mode != "shaped":  # a server before reward modes knows only the default
            body["reward_mode"] = reward_mode
        self.secret = None
        answer = await self._post("/reset", body, repeatable=True)
        observation = _envelope_observation(answer)
        episode_id = observation.get("episode_id")
        if not isinstance(episode_id, str) or not episode_id:
            raise EpisodeFailure("POST /reset returned no episode_id; this runner needs a server that keeps episodes")
        self.episode_id = episode_id
        secret = answer.get("episode_secret")
        self.secret = secret if isinstance(secret, str) else None
        self.step_count = _step_count(observation, 0)
        return observation

    async def step(self, action: Mapping[str, Any]) -> dict[str, Any]:
        body = {"action": dict(action), "episode_id": self.episode_id, "expected_step_count": self.step_count}
        observation = _envelope_observation(await self._post("/step", body, repeatable=True))
        self.step_count = _step_count(observation, self.step_count + 1)
        return observation

    async def grade(self) -> dict[str, Any]:
        return await self._post("/grader", {"episode_id": self.episode_id}, repeatable=True)

    async def _post(self, path: str, body: dict[str, Any], repeatable: bool) -> dict[str, Any]:
        """POST with retries where they are safe: always when no connection was made,
        otherwise only for requests that may be repeated (a step may, as it names the step count it expects)."""
        headers = {"X-Episode-Secret": self.secret} if self.secret is not None and path != "/reset" else None
        for attempt in range(4):
            last = attempt == 3
            try:
                response = await self.client.post(path, json=body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last:
                    raise EpisodeFailure(f"POST {path}: cannot connect: {exc}") from None
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            except httpx.HTTPError as exc:
                if last or not repeatable:
                    raise EpisodeFailure(f"POST {path}: {type(exc).__name__}: {exc}") from None
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if response.status_code >= 500 or response.status_code == 429:
                if last or not repeatable:
                    raise EpisodeFailure(f"POST {path}: HTTP {response.status_code}: {error_message(response)}")
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if response.status_code == 422 and path == "/step":
                raise ActionRejected(error_message(response))
            if response.status_code >= 400:
                raise EpisodeFailure(f"POST {path}: HTTP {response.status_code}: {error_message(response)}")
            try:
                data = response.json()
            except ValueError:
                raise EpisodeFailure(f"POST {path}: the answer is not JSON") from None
            if not isinstance(data, dict):
                raise EpisodeFailure(f"POST {path}: the answer is not a JSON object")
            return data
        raise AssertionError("unreachable")


def _step_count(observation: Mapping[str, Any], default: int) -> int:
    count = observation.get("step_count")
    return count if isinstance(count, int) and not isinstance(count, bool) else default


def _envelope_observation(envelope: dict[str, Any]) -> dict[str, Any]:
    """openenv's ``{"observation", "reward", "done"}`` as one observation dict, as the core builds it."""
    observation = envelope.get("observation")
    if not isinstance(observation, dict):
        raise EpisodeFailure("the server's answer has no observation")
    observation["reward"] = envelope.get("reward") or 0.0
    observation["done"] = bool(envelope.get("done"))
    return observation


def error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:300]
    return str(body)[:300]
