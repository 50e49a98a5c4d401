"""Batches over one WebSocket connection: ``batch_reset`` and ``batch_step``.

A connection may hold one batch of episodes (a :class:`WorkflowVectorEnv`)
beside its single episode. One message carries one action per episode and
gets one reply with every episode's result, so N episodes cost one message
each way instead of N. Each episode behaves exactly as it would alone (same
task, seed and actions: same observations, rewards and grade), sealed by the
server's outcome secret when it has one.

Client to server::

    {"type": "batch_reset", "data": {"task_ids": ["arena/hard", "easy", ...], "seed": 0,
                                     "worker_count": null, "autoreset": true, "reward_mode": "shaped"}}
    {"type": "batch_reset", "data": {"task_id": "arena/hard", "num_envs": 64, "seed": [...64 seeds...]}}
    {"type": "batch_step",  "data": {"actions": [{"action_type": "wait"}, ...one per episode...]}}

Server to client, for both (columns indexed by episode)::

    {"type": "batch", "data": {"observations": [...], "rewards": [...], "terminated": [...],
                               "truncated": [...], "grades": [null | grade, ...],
                               "final_observations": [null | observation, ...],
                               "done": [...], "errors": [[code, ...], ...]}}

``done`` is ``terminated or truncated``; ``errors`` lists, per episode, the error
codes of its action at this step (``[]`` when it was accepted, and at a reset), so
that a lean batch (below) tells which actions were invalid without observations.

With ``"observation": "none"`` in the batch_reset, ``observations`` and
``final_observations`` are ``null`` (the episodes move the same way; the
replies carry rewards, flags and grades only). With ``"observation":
"encoded"`` they are ``null`` too, and the reply adds the Gymnasium numeric
encoding of every episode (:mod:`workflow_orchestrator.gym_env`; every task of
the batch of one family) and its action mask, each as its raw bytes in
base64, row by row (C order)::

    "encoded": {"dtype": "float32", "shape": [N, size], "data": "<base64, little-endian>"},
    "action_masks": {"dtype": "bool", "shape": [N, actions], "data": "<base64, one byte per action>"}

A full observation is the in-process one (``WorkflowEnv``'s dict: ``reward``,
``done`` and, at the end, ``grade`` included). Seeds: episode ``i`` plays
``seed + i`` (or ``seed[i]``); with ``autoreset`` (the default) an episode
that ends starts the next one in the same step, with its seed plus the number
of episodes, and its last observation is in ``final_observations``. A batch
holds 1 to 256 episodes, and all batches of the server together at most
``--max-batch-episodes``. A message that is not a valid batch (an action that
fails validation, a count of actions that is not the batch's, an unknown task,
a step before any batch_reset) gets an ``error`` reply and changes nothing.
Batch episodes live on their connection only: they are not in the episode
store (no ``/grader`` or ``/episodes/{id}``: the grade is in the reply), and
end with the connection. A batch step runs on the event loop for at most
:data:`LOOP_BUDGET_S` and finishes, if it has not, on a worker thread (a
small batch saves the trip to a thread and back; a large one does not hold
the loop); a batch reset runs on a worker thread.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import orjson

from workflow_orchestrator.models import MAX_BATCH, MAX_EPISODES, MAX_ID_LENGTH, BatchResetRequest, BatchStepRequest
from workflow_orchestrator.vector import PendingStep, VectorStep, WorkflowVectorEnv
from workflow_orchestrator.vocabulary import ACTION_TYPES

# How long a batch step may run on the event loop before what is left of it moves to a worker thread.
# Under CPython's switch interval (5 ms), which is how long a worker thread may hold the GIL, and so keep
# the loop waiting, before it must let go: a batch step cut at this budget holds the other connections
# no longer than one on a thread could. 64 episodes of hard step within it (about 1.4 ms pure Python,
# 0.5 ms compiled, on a 2-core EPYC), and so save the trip to a thread and back.
LOOP_BUDGET_S = 0.002


class BatchCapacityError(RuntimeError):
    """A batch_reset that would take the server's batches over their episode limit."""


class BatchBudget:
    """The episodes held by the batches of every connection, within ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    def exchange(self, release: int, take: int) -> None:
        """Give back ``release`` episodes and take ``take``, or raise and change nothing."""
        with self._lock:
            if self.held - release + take > self.limit:
                raise BatchCapacityError(
                    f"the server's batches hold {self.held - release} of at most {self.limit} episodes; "
                    f"a batch of {take} does not fit (try fewer, or later)"
                )
            self.held += take - release


class BatchSession:
    """The batch of one connection, if it started one."""

    __slots__ = ("budget", "outcome_secret", "registry", "vector")

    def __init__(self, registry: Any, budget: BatchBudget, outcome_secret: str | bytes | None = None) -> None:
        self.registry = registry
        self.budget = budget
        self.outcome_secret = outcome_secret
        self.vector: WorkflowVectorEnv | None = None

    @property
    def size(self) -> int:
        return 0 if self.vector is None else self.vector.num_envs

    def reset(self, request: BatchResetRequest) -> str:
        """Start a new batch; raises ``ValueError``, ``UnknownTaskError`` or ``BatchCapacityError`` and keeps
        the old batch on bad input."""
        if (request.task_ids is None) == (request.task_id is None):
            raise ValueError("batch_reset needs task_ids (one per episode), or task_id with num_envs")
        tasks: str | list[str] = request.task_ids if request.task_ids is not None else str(request.task_id)
        count = len(request.task_ids) if request.task_ids is not None else request.num_envs or 1
        # The budget first, so that a batch that does not fit costs nothing; given back if the batch fails.
        self.budget.exchange(release=self.size, take=count)
        try:
            vector = WorkflowVectorEnv(
                tasks,
                request.num_envs if request.task_ids is not None else count,
                worker_count=request.worker_count,
                autoreset=request.autoreset,
                registry=self.registry,
                reward_mode=request.reward_mode,
                outcome_secret=self.outcome_secret,
                observation=request.observation,
            )
            result = vector.reset(request.seed)
        except BaseException:
            self.budget.exchange(release=count, take=self.size)
            raise
        self.vector = vector
        return batch_reply(result)

    def begin_step(self, actions: BatchStepRequest | list[dict[str, Any]]) -> PendingStep:
        """A step of every episode, checked but not yet run (see ``WorkflowVectorEnv.begin_step``): the
        request's actions, or the actions already as the core takes them (:func:`plain_batch_actions`).
        Raises ``RuntimeError`` before a batch_reset and ``ValueError`` on a wrong count, changing nothing."""
        if self.vector is None:
            raise RuntimeError("no batch yet: send a batch_reset first")
        if isinstance(actions, BatchStepRequest):
            actions = [action.to_core() for action in actions.actions]
        return self.vector.begin_step(actions)

    def step(self, actions: BatchStepRequest | list[dict[str, Any]]) -> str:
        """Step every episode at once and give the reply (raises as :meth:`begin_step`)."""
        return finish_step(self.begin_step(actions))

    def close(self) -> None:
        """Free the batch's episodes (the connection ended)."""
        self.budget.exchange(release=self.size, take=0)
        self.vector = None


def finish_step(pending: PendingStep) -> str:
    """Run what is left of a batch step and give its reply (on a worker thread, in the server)."""
    pending.run()
    return batch_reply(pending.result())


def batch_reply(result: VectorStep) -> str:
    full = result.observations and result.observations[0] is not None
    data: dict[str, Any] = {
        "observations": result.observations if full else None,
        "rewards": result.rewards,
        "terminated": result.terminated,
        "truncated": result.truncated,
        "grades": result.grades,
        "final_observations": result.final_observations if full else None,
        "done": [a or b for a, b in zip(result.terminated, result.truncated, strict=True)],
        "errors": result.errors,
    }
    if result.encoded is not None:
        data["encoded"] = array_field(result.encoded)
        data["action_masks"] = array_field(result.action_masks)
    return orjson.dumps({"type": "batch", "data": data}).decode()


def array_field(array: Any) -> dict[str, Any]:
    """A NumPy array on the wire: its dtype, shape and raw bytes (little-endian, C order) in base64."""
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "data": base64.b64encode(little.tobytes()).decode("ascii"),
    }


# ------------------------------------------------------------- batch_step without pydantic

_ACTION_KEYS = frozenset(("action_type", "subtask_id", "agent_name", "assignments", "task_ids"))
_ASSIGNMENT_KEYS = frozenset(("subtask_id", "agent_name"))
_KNOWN_TYPES = frozenset(ACTION_TYPES)
_MESSAGE_KEYS = frozenset(("type", "data"))


def _name(value: Any) -> bool:
    """A subtask id or agent name as the wire model accepts it (given, 1 to 64 characters)."""
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH


def plain_batch_actions(raw: str | bytes) -> list[dict[str, Any]] | None:
    """A ``batch_step`` message of plain actions (the workflow families' types, each field a
    plain string or list within the wire model's limits, no ``metadata``) read without the
    pydantic models: the actions as ``WorkflowAction.to_core`` gives them, the same dicts.
    None for anything else, which then goes through the models as before (and gets their
    errors): this only takes what they would accept, and answers it the same way."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(message) is not dict or message.keys() != _MESSAGE_KEYS or message["type"] != "batch_step":
        return None
    data = message["data"]
    if type(data) is not dict or len(data) != 1:
        return None
    actions = data.get("actions")
    if type(actions) is not list or not 0 < len(actions) <= MAX_EPISODES:
        return None
    core: list[dict[str, Any]] = []
    for action in actions:
        if type(action) is not dict or not action.keys() <= _ACTION_KEYS:
            return None
        action_type = action.get("action_type")
        if action_type not in _KNOWN_TYPES or type(action_type) is not str:
            return None
        plain: dict[str, Any] = {"action_type": action_type}
        subtask_id = action.get("subtask_id")
        if subtask_id is not None:
            if not _name(subtask_id):
                return None
            plain["subtask_id"] = subtask_id
        agent_name = action.get("agent_name")
        if agent_name is not None:
            if not _name(agent_name):
                return None
            plain["agent_name"] = agent_name
        assignments = action.get("assignments")
        if assignments is not None:
            if type(assignments) is not list or len(assignments) > MAX_BATCH:
                return None
            listed = []
            for item in assignments:
                if type(item) is not dict or not item.keys() <= _ASSIGNMENT_KEYS or not _name(item.get("subtask_id")):
                    return None
                named = item.get("agent_name")
                if named is not None and not _name(named):
                    return None
                listed.append({"subtask_id": item["subtask_id"], "agent_name": named})
            plain["assignments"] = listed
        task_ids = action.get("task_ids")
        if task_ids is not None:
            if type(task_ids) is not list or len(task_ids) > MAX_BATCH:
                return None
            for task_id in task_ids:
                if type(task_id) is not str:
                    return None
            plain["task_ids"] = list(task_ids)
        core.append(plain)
    return core
