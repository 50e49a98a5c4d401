"""Core actions and the structured error codes of invalid ones.

The wire layer validates shapes with pydantic; the core accepts either an
:class:`Action` or a plain mapping and never raises on a bad one: it becomes an
invalid action with an :class:`ErrorCode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping


class ActionType(str, Enum):
    DELEGATE = "delegate"
    DISPATCH = "dispatch"
    RETRY = "retry"
    WAIT = "wait"
    SYNTHESIZE = "synthesize"
    ABORT = "abort"


class ErrorCode(str, Enum):
    UNKNOWN_ACTION = "unknown_action"
    MISSING_FIELD = "missing_field"
    UNKNOWN_SUBTASK = "unknown_subtask"
    UNKNOWN_AGENT = "unknown_agent"
    NOT_READY = "not_ready"  # dependencies not completed: a dependency violation
    ALREADY_RUNNING = "already_running"
    ALREADY_COMPLETED = "already_completed"
    NOT_FAILED = "not_failed"  # retry of a subtask that has not failed
    IS_FAILED = "is_failed"  # delegate of a failed subtask: use retry
    NOT_RUNNING = "not_running"
    AGENT_BUSY = "agent_busy"
    AGENT_OFFLINE = "agent_offline"
    CAPABILITY_MISMATCH = "capability_mismatch"
    CAPACITY_EXCEEDED = "capacity_exceeded"
    DUPLICATE_SUBTASK = "duplicate_subtask"
    DUPLICATE_AGENT = "duplicate_agent"
    NO_FREE_AGENT = "no_free_agent"
    EMPTY_DISPATCH = "empty_dispatch"
    WORK_REMAINING = "work_remaining"  # synthesize before all subtasks are completed
    NOTHING_TO_WAIT_FOR = "nothing_to_wait_for"  # event model: no future event
    EPISODE_OVER = "episode_over"


class ActionError(Exception):
    """Raised only by helpers that parse actions; the episode turns it into an error record."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Assignment:
    subtask_id: str
    agent_name: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    action_type: ActionType
    subtask_id: str | None = None
    agent_name: str | None = None
    assignments: tuple[Assignment, ...] = ()

    @classmethod
    def delegate(cls, subtask_id: str, agent_name: str) -> "Action":
        return cls(ActionType.DELEGATE, subtask_id, agent_name)

    @classmethod
    def retry(cls, subtask_id: str, agent_name: str | None = None) -> "Action":
        return cls(ActionType.RETRY, subtask_id, agent_name)

    @classmethod
    def abort(cls, subtask_id: str) -> "Action":
        return cls(ActionType.ABORT, subtask_id)

    @classmethod
    def wait(cls) -> "Action":
        return cls(ActionType.WAIT)

    @classmethod
    def synthesize(cls) -> "Action":
        return cls(ActionType.SYNTHESIZE)

    @classmethod
    def dispatch(cls, pairs: list[tuple[str, str | None]] | list[str]) -> "Action":
        assignments = tuple(
            Assignment(p) if isinstance(p, str) else Assignment(p[0], p[1]) for p in pairs
        )
        return cls(ActionType.DISPATCH, assignments=assignments)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action_type": self.action_type.value}
        if self.subtask_id is not None:
            out["subtask_id"] = self.subtask_id
        if self.agent_name is not None:
            out["agent_name"] = self.agent_name
        if self.action_type is ActionType.DISPATCH:
            out["assignments"] = [
                {"subtask_id": a.subtask_id, "agent_name": a.agent_name} for a in self.assignments
            ]
        return out

    def label(self) -> str:
        """Compact form for logs: ``delegate(s,a)``, ``dispatch(s:a,s)``, ``wait()``."""
        if self.action_type is ActionType.DISPATCH:
            inner = ",".join(
                a.subtask_id if a.agent_name is None else f"{a.subtask_id}:{a.agent_name}"
                for a in self.assignments
            )
            return f"dispatch({inner})"
        args = [x for x in (self.subtask_id, self.agent_name) if x is not None]
        return f"{self.action_type.value}({','.join(args)})"


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ActionError(ErrorCode.MISSING_FIELD, f"{key} must be a string, got {type(value).__name__}")
    return value


def parse_action(data: Action | Mapping[str, Any]) -> Action:
    """Turn a mapping into an :class:`Action`, raising :class:`ActionError` on a bad shape.

    ``dispatch`` accepts ``assignments`` (objects with ``subtask_id`` and an
    optional ``agent_name``) and/or ``task_ids`` (subtask ids, any free agent).
    """
    if isinstance(data, Action):
        return data
    if type(data) is dict:
        # The common case, kept cheap: a plain dict naming one subtask and agent.
        fast = _FAST_TYPES.get(data.get("action_type"))  # type: ignore[arg-type]
        if fast is not None:
            subtask_id = data.get("subtask_id")
            agent_name = data.get("agent_name")
            if (subtask_id is None or type(subtask_id) is str) and (agent_name is None or type(agent_name) is str):
                if fast is ActionType.WAIT or fast is ActionType.SYNTHESIZE:
                    return _SIMPLE[fast]
                if subtask_id and (agent_name or fast is not ActionType.DELEGATE):
                    return Action(fast, subtask_id, agent_name or None)
    if not isinstance(data, Mapping):
        raise ActionError(ErrorCode.UNKNOWN_ACTION, "an action must be an object with action_type")
    raw_type = data.get("action_type")
    try:
        action_type = ActionType(raw_type)
    except ValueError:
        valid = ", ".join(t.value for t in ActionType)
        raise ActionError(
            ErrorCode.UNKNOWN_ACTION, f"unknown action_type {raw_type!r}; expected one of: {valid}"
        ) from None
    subtask_id = _optional_str(data, "subtask_id")
    agent_name = _optional_str(data, "agent_name")
    assignments: list[Assignment] = []
    if action_type is ActionType.DISPATCH:
        for item in data.get("assignments") or ():
            if isinstance(item, Assignment):
                assignments.append(item)
            elif isinstance(item, Mapping) and isinstance(item.get("subtask_id"), str):
                assignments.append(Assignment(item["subtask_id"], _optional_str(item, "agent_name")))
            else:
                raise ActionError(
                    ErrorCode.MISSING_FIELD,
                    "each dispatch assignment needs a subtask_id (and optionally an agent_name)",
                )
        for task_id in data.get("task_ids") or ():
            if not isinstance(task_id, str):
                raise ActionError(ErrorCode.MISSING_FIELD, "task_ids must be a list of subtask ids")
            assignments.append(Assignment(task_id))
    elif action_type in (ActionType.DELEGATE, ActionType.RETRY, ActionType.ABORT):
        if subtask_id is None:
            raise ActionError(ErrorCode.MISSING_FIELD, f"{action_type.value} needs a subtask_id")
        if action_type is ActionType.DELEGATE and agent_name is None:
            raise ActionError(ErrorCode.MISSING_FIELD, "delegate needs an agent_name")
    return Action(action_type, subtask_id, agent_name, tuple(assignments))


_FAST_TYPES = {
    t.value: t
    for t in (ActionType.DELEGATE, ActionType.RETRY, ActionType.ABORT, ActionType.WAIT, ActionType.SYNTHESIZE)
}
_SIMPLE = {ActionType.WAIT: Action(ActionType.WAIT), ActionType.SYNTHESIZE: Action(ActionType.SYNTHESIZE)}
