"""The Python client: openenv's ``EnvClient`` over the server's ``/ws`` session.

One client is one WebSocket connection is one episode at a time on the
server. It is async; ``.sync()`` gives the blocking wrapper for training
loops::

    from workflow_orchestrator import WorkflowAction, WorkflowClient

    with WorkflowClient("http://127.0.0.1:8000").sync() as env:
        result = env.reset(task_id="easy", seed=7)
        while not result.done:
            action = result.observation.legal_actions[0]
            result = env.step(WorkflowAction(**action))
        print(result.observation.grade)

Actions may be :class:`WorkflowAction` or plain dicts of the same fields.

Several replicas (``server-router``'s, or servers started elsewhere): give
the router's URL, or a list of the replicas' URLs. Clients made with the
same list start on its URLs in turn, and a reset refused for capacity
(``CAPACITY_REACHED``) is tried on the next URL before it fails::

    clients = [WorkflowClient(["http://10.0.0.5:8000", "http://10.0.0.6:8000"]).sync() for _ in range(64)]

Many episodes over the same connection, one message each way per step of
all of them (the wire format is in ``server/http/batch.py``)::

    with WorkflowClient("http://127.0.0.1:8000").sync() as env:
        batch = env.batch_reset(task_id="arena/hard", num_envs=64, seed=0)
        for _ in range(100):
            batch = env.batch_step([obs["legal_actions"][0] for obs in batch.observations])
        print(sum(grade["score"] for grade in batch.grades if grade))
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient
from websockets.asyncio.client import connect as ws_connect
from websockets.protocol import State as WsState

from workflow_orchestrator.models import GradeResponse, GradeResult, WorkflowAction, WorkflowObservation, WorkflowState

# Where the next client given a list of URLs starts in it, so that clients spread over the replicas.
_next_start = itertools.count()


@dataclass(slots=True)
class BatchResult:
    """A batch reset or step, as columns indexed by episode (observations are plain dicts, as sent)."""

    observations: list[dict[str, Any]]
    rewards: list[float]
    terminated: list[bool]
    truncated: list[bool]
    # The grade of an episode that ended at this step, else None.
    grades: list[dict[str, Any] | None]
    # With autoreset: the last observation of an episode that ended at this step, else None.
    final_observations: list[dict[str, Any] | None]
    # With observation="encoded": the NumPy arrays of the Gymnasium encoding and the action masks.
    encoded: Any = None
    action_masks: Any = None
    # Per episode, the error codes of its action at this step ([] when accepted; None from an older server).
    errors: list[list[str]] | None = None

    @property
    def done(self) -> list[bool]:
        return [a or b for a, b in zip(self.terminated, self.truncated, strict=True)]


class WorkflowClient(EnvClient[WorkflowAction, WorkflowObservation, WorkflowState]):
    """Typed client for the workflow_orchestrator server.

    ``token`` is the server's bearer token, when it has one configured
    (sent as ``Authorization: Bearer``); ``headers`` are further headers for
    the WebSocket and the grader, e.g. for a private Hugging Face Space.
    ``validate=False`` skips pydantic validation of observations (they are
    then built with ``model_construct``): faster in a tight training loop,
    and safe against a server of the same version.
    """

    # The WebSocket connection and its loop, opened by connect() (openenv's EnvClient keeps them here).
    _ws: Any
    _ws_loop: Any

    def __init__(
        self,
        base_url: str | Sequence[str] = "http://127.0.0.1:8000",
        token: str | None = None,
        validate: bool = True,
        connect_timeout_s: float = 10.0,
        message_timeout_s: float = 60.0,
        headers: Mapping[str, str] | None = None,
        spread: bool = True,
    ) -> None:
        merged = dict(headers or {})
        if token:
            merged["Authorization"] = f"Bearer {token}"
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("base_url: give a URL, or a list of at least one")
        start = next(_next_start) % len(urls) if spread and len(urls) > 1 else 0
        # The URLs in the order this client tries them; the first is the one in use.
        self._urls = urls[start:] + urls[:start]
        base_url = self._urls[0]
        super().__init__(
            base_url,
            connect_timeout_s=connect_timeout_s,
            message_timeout_s=message_timeout_s,
            max_message_size_mb=16.0,
            headers=merged or None,
        )
        self._http_url = _http_url(base_url)
        self._token = token
        self._validate = validate
        self.episode_id: str | None = None
        # The current episode's secret (from the reset answer), sent when grading over HTTP.
        self.episode_secret: str | None = None

    # openenv 0.10's public methods (connect, reset, step, state, close) are
    # dispatchers: awaitable in async code, blocking in sync code, and its
    # ``.sync()`` wrapper calls the ``_..._async`` hooks directly. So the
    # behaviour lives in the hooks, and the typed public methods dispatch.

    def reset(
        self,
        task_id: str | None = None,
        seed: int | None = None,
        worker_count: int | None = None,
        episode_id: str | None = None,
        **options: Any,
    ) -> Any:
        """Start an episode (the task's canonical seed when ``seed`` is None).

        Further keyword options (e.g. ``reward_mode``) are sent as they are.
        Awaitable in async code; returns the ``StepResult`` in sync code.
        """
        parameters = {"task_id": task_id, "seed": seed, "worker_count": worker_count, "episode_id": episode_id}
        return self._dispatch(lambda: self._reset_async(**parameters, **options))

    def grade(self) -> Any:
        """The grade of this client's latest episode, from ``POST /grader``."""
        return self._dispatch(self._grade_async)

    def batch_reset(
        self,
        task_id: str | None = None,
        num_envs: int | None = None,
        *,
        task_ids: Sequence[str] | None = None,
        seed: int | Sequence[int] = 0,
        worker_count: int | None | Sequence[int | None] = None,
        autoreset: bool = True,
        reward_mode: str = "shaped",
        observation: str = "full",
    ) -> Any:
        """Start a batch of episodes on this connection (beside its single episode): ``task_id`` for
        ``num_envs`` episodes, or ``task_ids`` (one per episode). Episode ``i`` plays ``seed + i``, or
        ``seed[i]``. ``observation``: ``full`` (dicts), ``none`` or ``encoded`` (NumPy arrays in
        ``encoded`` and ``action_masks``). Awaitable in async code; returns the :class:`BatchResult`
        in sync code."""
        data: dict[str, Any] = {
            "seed": seed if isinstance(seed, int) else list(seed),
            "autoreset": autoreset,
            "reward_mode": reward_mode,
        }
        if observation != "full":
            data["observation"] = observation
        if task_ids is not None:
            data["task_ids"] = list(task_ids)
        if task_id is not None:
            data["task_id"] = task_id
        if num_envs is not None:
            data["num_envs"] = num_envs
        if worker_count is not None:
            data["worker_count"] = worker_count if isinstance(worker_count, int) else list(worker_count)
        return self._dispatch(lambda: self._batch_async({"type": "batch_reset", "data": data}))

    def batch_step(self, actions: Sequence[WorkflowAction | Mapping[str, Any]]) -> Any:
        """One action per episode of the batch, in order; one message each way."""
        message = {"type": "batch_step", "data": {"actions": [self._step_payload(action) for action in actions]}}
        return self._dispatch(lambda: self._batch_async(message))

    async def _batch_async(self, message: dict[str, Any]) -> BatchResult:
        await self._connect_async()
        await self._ws.send(orjson.dumps(message).decode())
        reply = orjson.loads(await asyncio.wait_for(self._ws.recv(), timeout=self._message_timeout))
        data = reply.get("data") or {}
        if reply.get("type") != "batch":
            raise RuntimeError(f"Server error: {data.get('message', 'unknown error')} (code: {data.get('code')})")
        return BatchResult(
            observations=data["observations"],
            rewards=data["rewards"],
            terminated=data["terminated"],
            truncated=data["truncated"],
            grades=data["grades"],
            final_observations=data["final_observations"],
            encoded=_array(data.get("encoded")),
            action_masks=_array(data.get("action_masks")),
            errors=data.get("errors"),
        )

    async def _connect_async(self) -> WorkflowClient:
        """Open the WebSocket (with the configured headers, e.g. the bearer token)."""
        if self._ws is not None:
            if self._ws.state not in (WsState.CLOSING, WsState.CLOSED) and self._ws_loop is asyncio.get_running_loop():
                return self
            # Closed by the far end, or opened on another event loop (one
            # that ``.sync()`` no longer runs): it cannot be reused.
            self._ws = None
            self._ws_loop = None
        assert self._ws_url is not None
        try:
            self._ws = await ws_connect(
                self._ws_url,
                open_timeout=self._connect_timeout,
                max_size=self._max_message_size,
                additional_headers=self._headers,
                # Observations are a few kB; compressing them costs more
                # time than it saves on any but slow links.
                compression=None,
                # A proxy from the environment must not capture loopback traffic.
                proxy=None if _is_loopback(self._ws_url) else True,
            )
            self._ws_loop = asyncio.get_running_loop()
        except Exception as exc:
            raise ConnectionError(f"Failed to connect to {self._ws_url}: {exc}") from exc
        return self

    async def _reset_async(self, **kwargs: Any) -> StepResult[WorkflowObservation]:
        self.episode_secret = None  # the answer brings the new episode's
        options = {name: value for name, value in kwargs.items() if value is not None}
        for attempt in range(len(self._urls)):
            try:
                result = await super()._reset_async(**options)
                break
            except RuntimeError as exc:
                if "CAPACITY_REACHED" not in str(exc) or attempt == len(self._urls) - 1:
                    raise
                await self._next_url()
        self.episode_id = result.observation.episode_id
        return result

    async def _next_url(self) -> None:
        """Move to the next URL of the list (its server refused the session: it is full)."""
        if self._ws is not None:
            try:
                await self._ws.close()
            except Exception:  # already closed by the server
                pass
            self._ws = None
            self._ws_loop = None
        self._urls.append(self._urls.pop(0))
        self._set_base_url(self._urls[0])
        self._http_url = _http_url(self._urls[0])

    async def _grade_async(self) -> GradeResponse:
        if self.episode_id is None:
            raise RuntimeError("no episode yet: call reset() first")
        headers = dict(self._headers or {})
        if self.episode_secret is not None:
            headers["X-Episode-Secret"] = self.episode_secret
        async with httpx.AsyncClient(
            base_url=self._http_url,
            headers=headers,
            timeout=self._message_timeout,
            trust_env=not _is_loopback(self._http_url),
        ) as http:
            response = await http.post("/grader", json={"episode_id": self.episode_id})
        if response.status_code != 200:
            raise RuntimeError(f"grading failed ({response.status_code}): {response.text}")
        return GradeResponse.model_validate_json(response.content)

    async def _state_async(self) -> WorkflowState:
        """The episode's state with its whole history: the server sends a long one a page at a
        time (``history`` says where the next page starts), so the pages are fetched and joined."""
        data = (await self._send_and_receive({"type": "state"})).get("data", {})
        history = data.get("history") or {}
        trace, events = list(data.get("trace", [])), list(data.get("events", []))
        while history.get("trace_next") is not None or history.get("events_next") is not None:
            cursor = {
                "trace_from": _next_or_end(history, "trace"),
                "events_from": _next_or_end(history, "events"),
            }
            page = (await self._send_and_receive({"type": "state", "data": cursor})).get("data", {})
            trace.extend(page.get("trace", []))
            events.extend(page.get("events", []))
            history = page.get("history") or {}
        data["trace"], data["events"] = trace, events
        if "history" in data:
            data["history"] = {**data["history"], "trace_next": None, "events_next": None, "complete": True}
        return self._parse_state(data)

    # ------------------------------------------------------------------ EnvClient hooks

    def _step_payload(self, action: WorkflowAction | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(action, WorkflowAction):
            return action.model_dump(exclude_none=True, exclude={"metadata"})
        return dict(action)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[WorkflowObservation]:
        if "episode_secret" in payload:  # a reset's answer
            self.episode_secret = payload["episode_secret"]
        fields = {**payload.get("observation", {}), "reward": payload.get("reward"), "done": payload.get("done", False)}
        if self._validate:
            observation = WorkflowObservation.model_validate(fields)
        else:
            # The nested views are dicts either way; only the grade is a model.
            if fields.get("grade") is not None:
                fields["grade"] = GradeResult.model_construct(**fields["grade"])
            observation = WorkflowObservation.model_construct(**fields)
        return StepResult(observation=observation, reward=observation.reward, done=observation.done)

    def _parse_state(self, payload: dict[str, Any]) -> WorkflowState:
        return WorkflowState.model_validate(payload) if self._validate else WorkflowState.model_construct(**payload)


def _next_or_end(history: Mapping[str, Any], name: str) -> int:
    """Where the next page of one history list starts; its end when it is complete."""
    following = history.get(f"{name}_next")
    return int(history.get(f"{name}_total", 0) if following is None else following)


def _http_url(base_url: str) -> str:
    url = base_url.rstrip("/")
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    if "://" not in url:
        return "http://" + url
    return url


def _is_loopback(url: str) -> bool:
    host = urlsplit(url if "://" in url else "http://" + url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _array(field: Mapping[str, Any] | None) -> Any:
    """A NumPy array sent as dtype, shape and base64 bytes (server/http/batch.py)."""
    if field is None:
        return None
    import base64

    import numpy as np

    dtype = np.dtype(field["dtype"]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(field["data"]), dtype=dtype).reshape(field["shape"]).astype(field["dtype"])
