"""Reading a model's answer: the action in free text (JSON with noise around it,
or the compact ``delegate(s,a)`` form) or in tool calls, as the environment's
action dict; and the compact label of an action for the [STEP] lines."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from workflow_orchestrator.server.core import ActionError, parse_action
from workflow_orchestrator.vocabulary import ACTION_TYPES, CANVAS_ACTION_TYPES

from .canvas import canvas_label

# The wire limits of models.py: longer ids are never real ids, longer batches are refused.
MAX_ID_LENGTH = 64
MAX_BATCH = 64


# Canvas action types no workflow of named agents has (their labels are the canvas's).
CANVAS_ONLY_TYPES = frozenset(CANVAS_ACTION_TYPES) - frozenset(ACTION_TYPES)

_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning|reflection)>.*?</\1\s*>", re.S | re.I)
_THINK_CLOSE = re.compile(r"</(?:think|thinking|reasoning|reflection)\s*>", re.I)
_LABEL_CALL = re.compile(r"\b(" + "|".join(ACTION_TYPES) + r")\s*\(([^()]*)\)", re.I)
_WORD = re.compile(r"[a-z_]+")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_SUBTASK_KEYS = ("subtask_id", "subtask", "task")
_AGENT_KEYS = ("agent_name", "agent", "worker")


def _clean_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip().strip("`'\"").strip()
    return value[:MAX_ID_LENGTH] or None


def _first_id(data: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        if key in data:
            value = _clean_id(data[key])
            if value is not None:
                return value
    return None


def _action_object(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The action inside a wrapper (``{"action": {...}}``), else the object itself."""
    inner = data.get("action")
    return inner if isinstance(inner, Mapping) else data


def _named_type(data: Any) -> str | None:
    """The action type an object names (lower case), known or not; None when it names none."""
    if not isinstance(data, Mapping):
        return None
    data = _action_object(data)
    raw_type = data.get("action_type", data.get("type", data.get("action")))
    return raw_type.strip().lower() if isinstance(raw_type, str) else None


def unknown_action_type(data: Any) -> str | None:
    """The type an action object names when it is a word but no action type, such as
    ``{"action_type": "explode"}``: an answer that chose something this runner cannot play."""
    named = _named_type(data)
    return named if named is not None and named not in ACTION_TYPES and _WORD.fullmatch(named) else None


def normalize_action(data: Any) -> dict[str, Any] | None:
    """A model's action object as the environment's action, or None when it names none.

    Accepts the documented shape and common variants of it: a wrapper
    (``{"action": {...}}``), ``type`` or ``action`` for ``action_type``,
    ``subtask``/``agent`` for the id fields, pairs for dispatch assignments.
    Drops keys the environment does not know (they would make the server
    refuse the whole action).
    """
    action_type = _named_type(data)
    if action_type not in ACTION_TYPES:
        return None
    data = _action_object(data)
    action: dict[str, Any] = {"action_type": action_type}
    if action_type in ("delegate", "retry", "abort"):
        subtask_id = _first_id(data, _SUBTASK_KEYS)
        if subtask_id is not None:
            action["subtask_id"] = subtask_id
        agent_name = _first_id(data, _AGENT_KEYS) if action_type != "abort" else None
        if agent_name is not None:
            action["agent_name"] = agent_name
    elif action_type == "dispatch":
        assignments: list[dict[str, str]] = []
        for item in data.get("assignments") or ():
            if isinstance(item, Mapping):
                subtask_id, agent_name = _first_id(item, _SUBTASK_KEYS), _first_id(item, _AGENT_KEYS)
            elif isinstance(item, (list, tuple)) and item:
                subtask_id = _clean_id(item[0])
                agent_name = _clean_id(item[1]) if len(item) > 1 else None
            else:
                subtask_id, agent_name = _clean_id(item), None
            if subtask_id is None:
                continue
            assignment = {"subtask_id": subtask_id}
            if agent_name is not None:
                assignment["agent_name"] = agent_name
            assignments.append(assignment)
        task_ids = [i for i in (_clean_id(x) for x in data.get("task_ids") or ()) if i is not None]
        if assignments:
            action["assignments"] = assignments[:MAX_BATCH]
        if task_ids:
            action["task_ids"] = task_ids[:MAX_BATCH]
    return action


def _balanced_objects(text: str) -> list[str]:
    """Every outermost ``{...}`` span of the text, braces inside quoted strings ignored."""
    spans: list[str] = []
    depth, start, quote, escaped = 0, -1, "", False
    for i, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'" and depth > 0:
            quote = char
        elif char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def _load_object(span: str) -> Any:
    """JSON, then JSON without trailing commas, then a Python literal (single quotes)."""
    for attempt in (span, _TRAILING_COMMA.sub(r"\1", span)):
        try:
            return json.loads(attempt)
        except ValueError:
            pass
    try:
        return ast.literal_eval(span)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _action_from_label(text: str) -> dict[str, Any] | None:
    """The compact form of the observation's legal actions: ``delegate(s,a)``, ``wait()``, ``dispatch(s:a,t:b)``."""
    matches = list(_LABEL_CALL.finditer(text))
    if not matches:
        return None
    match = matches[-1]
    action_type = match.group(1).lower()
    args = [a.strip().strip("`'\"") for a in match.group(2).split(",") if a.strip()]
    if action_type == "dispatch":
        pairs = [arg.partition(":") for arg in args]
        return normalize_action(
            {"action_type": "dispatch", "assignments": [[s.strip(), a.strip() or None] for s, _, a in pairs]}
        )
    fields: dict[str, Any] = {"action_type": action_type}
    if args:
        fields["subtask_id"] = args[0]
    if len(args) > 1:
        fields["agent_name"] = args[1]
    return normalize_action(fields)


def extract_action(text: str | None) -> dict[str, Any] | None:
    """The action in a model's free-text answer, or None.

    Survives reasoning in think tags (closed, or only a closing tag as some
    servers send), code fences and prose around the JSON. The last action
    object wins: models reason first and answer last.
    """
    return read_answer(text)[0]


def read_answer(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """``extract_action``'s reading, with the unknown action type that made it
    fail, if that was the reason: when the last action object of the answer names
    a type this runner does not know, the answer is unreadable (no earlier
    mention of an action stands in for it)."""
    if not text:
        return None, None
    closes = list(_THINK_CLOSE.finditer(text))
    answer = text[closes[-1].end() :] if closes else text
    answer = _THINK_BLOCK.sub(" ", answer)
    for candidate in (answer, text):
        for span in reversed(_balanced_objects(candidate)):
            data = _load_object(span)
            action = normalize_action(data)
            if action is not None:
                return action, None
            unknown = unknown_action_type(data)
            if unknown is not None:
                return None, unknown
        action = _action_from_label(candidate)
        if action is not None:
            return action, None
    return None, None


def action_from_tool_calls(calls: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
    """The action named by tool calls ``(function name, JSON arguments)``.

    Several delegate/retry/dispatch calls in one answer start together, as
    one dispatch; otherwise the first call that names an action counts.
    """
    actions: list[dict[str, Any]] = []
    for name, arguments in calls:
        parsed = _load_object(arguments) if arguments and arguments.strip() else {}
        if not isinstance(parsed, Mapping):
            parsed = {}
        action = normalize_action({**parsed, "action_type": name})
        if action is not None:
            actions.append(action)
    if not actions:
        return None
    starts = ("delegate", "retry", "dispatch")
    if len(actions) == 1 or not all(a["action_type"] in starts for a in actions):
        return actions[0]
    assignments: list[dict[str, str]] = []
    for action in actions:
        if action["action_type"] == "dispatch":
            assignments.extend(action.get("assignments", []))
            assignments.extend({"subtask_id": t} for t in action.get("task_ids", []))
        elif "subtask_id" in action:
            assignments.append({k: action[k] for k in ("subtask_id", "agent_name") if k in action})
    return {"action_type": "dispatch", "assignments": assignments[:MAX_BATCH]}


def action_label(action: Mapping[str, Any]) -> str:
    """The compact, space-free form of an action for the [STEP] line."""
    if action.get("action_type") in CANVAS_ONLY_TYPES:
        return canvas_label(action)
    try:
        label = parse_action(action).label()
    except ActionError:
        args = [str(action[k]) for k in ("subtask_id", "agent_name") if action.get(k)]
        label = f"{action.get('action_type', '?')}({','.join(args)})"
    return re.sub(r"\s+", "_", label)
