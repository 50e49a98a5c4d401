"""Core actions and the structured error codes of invalid ones.

The wire layer validates shapes with pydantic; the core accepts either an
:class:`Action` or a plain mapping and never raises on a bad one: it becomes an
invalid action with an :class:`ErrorCode`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

# The two enums live in a module of their own, made from the vocabulary when it
# is imported (so that the core's compiled build, which compiles this module,
# never sees a class made at run time).
from .enums import ActionType as ActionType
from .enums import ErrorCode as ErrorCode

# The members by plain names: in the step loop a module global is several times
# cheaper than an attribute of an Enum class (which goes through its metaclass).
DELEGATE: Final = ActionType.DELEGATE
DISPATCH: Final = ActionType.DISPATCH
RETRY: Final = ActionType.RETRY
WAIT: Final = ActionType.WAIT
SYNTHESIZE: Final = ActionType.SYNTHESIZE
ABORT: Final = ActionType.ABORT


class ActionError(Exception):
    """Raised only by helpers that parse actions; the episode turns it into an error record."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Assignment(NamedTuple):
    """One start in a dispatch; no agent means any idle capable agent."""

    subtask_id: str
    agent_name: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    action_type: ActionType
    subtask_id: str | None = None
    agent_name: str | None = None
    assignments: tuple[Assignment, ...] = ()

    @classmethod
    def delegate(cls, subtask_id: str, agent_name: str) -> Action:
        return cls(ActionType.DELEGATE, subtask_id, agent_name)

    @classmethod
    def retry(cls, subtask_id: str, agent_name: str | None = None) -> Action:
        return cls(ActionType.RETRY, subtask_id, agent_name)

    @classmethod
    def abort(cls, subtask_id: str) -> Action:
        return cls(ActionType.ABORT, subtask_id)

    @classmethod
    def wait(cls) -> Action:
        return cls(ActionType.WAIT)

    @classmethod
    def synthesize(cls) -> Action:
        return cls(ActionType.SYNTHESIZE)

    @classmethod
    def dispatch(cls, pairs: list[tuple[str, str | None]] | list[str]) -> Action:
        assignments = tuple(Assignment(p) if isinstance(p, str) else Assignment(p[0], p[1]) for p in pairs)
        return cls(ActionType.DISPATCH, assignments=assignments)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action_type": self.action_type.value}
        if self.subtask_id is not None:
            out["subtask_id"] = self.subtask_id
        if self.agent_name is not None:
            out["agent_name"] = self.agent_name
        if self.action_type is ActionType.DISPATCH:
            out["assignments"] = [{"subtask_id": a.subtask_id, "agent_name": a.agent_name} for a in self.assignments]
        return out

    def label(self) -> str:
        """Compact form for logs: ``delegate(s,a)``, ``dispatch(s:a,s)``, ``wait()``."""
        if self.action_type is ActionType.DISPATCH:
            inner = ",".join(
                a.subtask_id if a.agent_name is None else f"{a.subtask_id}:{a.agent_name}" for a in self.assignments
            )
            return f"dispatch({inner})"
        args = [x for x in (self.subtask_id, self.agent_name) if x is not None]
        return f"{self.action_type.value}({','.join(args)})"


def parse_action(data: Any) -> Action:
    """Turn a mapping into an :class:`Action`, raising :class:`ActionError` on a bad shape
    (or on anything that is not a mapping or an :class:`Action`).

    ``dispatch`` accepts ``assignments`` (objects with ``subtask_id`` and an
    optional ``agent_name``) and/or ``task_ids`` (subtask ids, any free agent).
    Empty strings count as absent.
    """
    if type(data) is not dict:
        if isinstance(data, Action):
            return data
        if not isinstance(data, Mapping):
            raise ActionError(ErrorCode.UNKNOWN_ACTION, "an action must be an object with action_type")
        data = dict(data)
    # Typed as a dict, its reads are direct (the compiled build calls .get as a method on Any).
    fields: dict[str, Any] = data
    raw_type: Any = fields.get("action_type")
    action_type = _ACTION_TYPES.get(raw_type) if type(raw_type) is str else None
    if action_type is None:
        raise ActionError(
            ErrorCode.UNKNOWN_ACTION,
            f"unknown action_type {raw_type!r}; expected one of: {', '.join(_ACTION_TYPES)}",
        )
    if action_type is WAIT or action_type is SYNTHESIZE:
        return _SIMPLE[action_type]
    if action_type is DISPATCH:
        return _dispatch_action(_parse_assignments(fields))
    subtask_id = fields.get("subtask_id")
    if type(subtask_id) is not str or not subtask_id:
        subtask_id = _text_field(subtask_id, "subtask_id")
    agent_name = fields.get("agent_name")
    if type(agent_name) is not str or not agent_name:
        agent_name = _text_field(agent_name, "agent_name")
    if subtask_id is None:
        raise ActionError(ErrorCode.MISSING_FIELD, f"{action_type.value} needs a subtask_id")
    if action_type is DELEGATE and agent_name is None:
        raise ActionError(ErrorCode.MISSING_FIELD, "delegate needs an agent_name")
    return _single_action(raw_type, subtask_id, agent_name)


def _text_field(value: Any, key: str) -> str | None:
    """An optional text field that is not a non-empty string: None when empty or
    absent, else an error (the common case, a non-empty string, is read inline)."""
    if type(value) is str:
        return value or None
    if value is None:
        return None
    raise ActionError(ErrorCode.MISSING_FIELD, f"{key} must be a string, got {type(value).__name__}")


def _parse_assignments(data: dict[str, Any]) -> tuple[Assignment, ...]:
    assignments: list[Assignment] = []
    items = data.get("assignments") or ()
    task_ids = data.get("task_ids") or ()
    if not isinstance(items, (list, tuple)) or not isinstance(task_ids, (list, tuple)):
        raise ActionError(ErrorCode.MISSING_FIELD, "assignments and task_ids must be lists")
    for item in items:
        if type(item) is not dict:
            if isinstance(item, Assignment):
                assignments.append(item)
                continue
            item = item if isinstance(item, Mapping) else {}
        fields: Mapping[str, Any] = item
        subtask_id = fields.get("subtask_id")
        if type(subtask_id) is not str or not subtask_id:
            raise ActionError(
                ErrorCode.MISSING_FIELD,
                "each dispatch assignment needs a subtask_id (and optionally an agent_name)",
            )
        agent_name = fields.get("agent_name")
        if type(agent_name) is not str or not agent_name:
            agent_name = _text_field(agent_name, "agent_name")
        assignments.append(_assignment(subtask_id, agent_name))
    for task_id in task_ids:
        if type(task_id) is not str or not task_id:
            raise ActionError(ErrorCode.MISSING_FIELD, "task_ids must be a list of subtask ids")
        assignments.append(_assignment(task_id, None))
    return tuple(assignments)


_ACTION_TYPES: Final[dict[str, ActionType]] = {t.value: t for t in ActionType}

# Parsed actions are shared: the same action parsed again is the object made
# before, which is cheaper to find than a new one is to make. They are never
# changed (an Assignment cannot be).
_SIMPLE: Final = {ActionType.WAIT: Action(ActionType.WAIT), ActionType.SYNTHESIZE: Action(ActionType.SYNTHESIZE)}

# The shared actions are found in plain dicts keyed by their fields (a dict read
# costs a quarter of an lru_cache call), each emptied when it reaches its bound:
# they hold what a few episodes name, so a bound is reached only by a client
# naming ever new ids, and costs it nothing but a parse.
MAX_SHARED_ACTIONS: Final = 2048
_SINGLE: Final[dict[tuple[str, str, str | None], Action]] = {}
_DISPATCHES: Final[dict[tuple[Assignment, ...], Action]] = {}
_ASSIGNMENTS: Final[dict[tuple[str, str | None], Assignment]] = {}


def _single_action(action_type: str, subtask_id: str, agent_name: str | None) -> Action:
    """A ``delegate``, ``retry`` or ``abort`` (keyed by the type's text: an Enum's hash costs more)."""
    key = (action_type, subtask_id, agent_name)
    action = _SINGLE.get(key)
    if action is None:
        if len(_SINGLE) >= MAX_SHARED_ACTIONS:
            _SINGLE.clear()
        action = _SINGLE[key] = Action(_ACTION_TYPES[action_type], subtask_id, agent_name)
    return action


def _dispatch_action(assignments: tuple[Assignment, ...]) -> Action:
    action = _DISPATCHES.get(assignments)
    if action is None:
        if len(_DISPATCHES) >= MAX_SHARED_ACTIONS:
            _DISPATCHES.clear()
        action = _DISPATCHES[assignments] = Action(DISPATCH, assignments=assignments)
    return action


def _assignment(subtask_id: str, agent_name: str | None) -> Assignment:
    key = (subtask_id, agent_name)
    assignment = _ASSIGNMENTS.get(key)
    if assignment is None:
        if len(_ASSIGNMENTS) >= MAX_SHARED_ACTIONS:
            _ASSIGNMENTS.clear()
        assignment = _ASSIGNMENTS[key] = Assignment(subtask_id, agent_name)
    return assignment
