"""The published XML action form, read into the typed JSON actions.

Two spellings are accepted, so that prompts and models trained on the
published form work unchanged:

* tagged fields: ``<action>add</action><operator>Plan</operator>``;
  ``<action>add</action><structure>parallel</structure><operators>A, B</operators>``;
  ``<action>add</action><structure>conditional</structure><condition>Verify</condition>``
  ``<true>Revise</true><false>Format</false>``;
  ``<action>add</action><structure>loop</structure><operators>Review, Revise</operators><count>2</count>``;
  ``<action>delete</action><target>3</target>``; ``<action>modify</action><target>2</target>``
  ``<operator>Custom</operator>``; ``<action>set_prompt</action><target>2</target><prompt>concise</prompt>``;
  ``<action>execute</action>``; ``<action>finish</action><answer>42</answer>``
  (``<position>``, ``<node>`` for ``<target>``, ``<iterations>`` for ``<count>`` also read);
* one tag per action: ``<add>Plan</add>``, ``<add>[A, B]</add>`` (any node in the DSL),
  ``<delete>3</delete>``, ``<modify>2: Custom</modify>``, ``<set_prompt>2: concise</set_prompt>``,
  ``<execute/>``, ``<finish>42</finish>``, ``<finish/>``.

:func:`parse_xml_action` raises :class:`~.canvas.EditError` (``bad_xml``) on text
that is neither.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from .canvas import EditError, parse_dsl
from .operators import CONDITIONAL, OPERATOR

ACTIONS = ("add", "delete", "modify", "set_prompt", "execute", "finish")
MAX_XML_LENGTH = 4096

_OPEN = re.compile(r"<([A-Za-z_]+)\s*(/?)>")
_CLOSE = re.compile(r"</([A-Za-z_]+)\s*>")


def _fields(text: str) -> dict[str, str]:
    """Each tag's first value (``<name>value</name>``; ``<name/>`` is empty), in time
    linear in the text: one pass finds the closing tags, one the opening ones."""
    closing: dict[str, list[tuple[int, int]]] = {}
    for match in _CLOSE.finditer(text):
        closing.setdefault(match.group(1).lower(), []).append((match.start(), match.end()))
    found: dict[str, str] = {}
    for match in _OPEN.finditer(text):
        name = match.group(1).lower()
        if name in found:
            continue
        if match.group(2):
            found[name] = ""
            continue
        ends = closing.get(name)
        if not ends:
            continue
        k = bisect.bisect_left(ends, (match.end(), 0))
        if k < len(ends):
            found[name] = text[match.end() : ends[k][0]].strip()
    return found


def _int(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise EditError("bad_xml", f"{what} must be a number, got {value!r}") from None


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.strip().strip("[]").split(",") if name.strip()]


def node_action(dsl: str) -> dict[str, Any]:
    """An ``add`` of the one node a DSL snippet describes."""
    nodes = parse_dsl(dsl)
    if len(nodes) != 1:
        raise EditError("bad_xml", f"<add> takes one node, got {len(nodes)}: {dsl!r}")
    node = nodes[0]
    action: dict[str, Any] = {"action_type": "add", "operators": list(node.operators)}
    if node.kind != OPERATOR:
        action["structure"] = node.kind
        if node.kind == "loop":
            action["count"] = node.count
    if node.style != "default":
        action["prompt"] = node.style
    return action


def parse_xml_action(text: str) -> dict[str, Any]:
    """The typed JSON action of a published XML action."""
    if len(text) > MAX_XML_LENGTH:
        raise EditError("bad_xml", f"an XML action has at most {MAX_XML_LENGTH} characters")
    fields = _fields(text)
    kind = fields.get("action", "").strip().lower()
    if kind:
        return _tagged(kind, fields)
    for name in ACTIONS:
        if name in fields:
            return _single(name, fields[name])
    raise EditError(
        "bad_xml", "no action found: write <action>add</action><operator>Plan</operator> or <add>Plan</add>"
    )


def _tagged(kind: str, fields: dict[str, str]) -> dict[str, Any]:
    if kind not in ACTIONS:
        raise EditError("bad_xml", f"unknown action {kind!r}; known: {', '.join(ACTIONS)}")
    action: dict[str, Any] = {"action_type": kind}
    target = fields.get("target", fields.get("node"))
    if target is not None and kind != "add":
        action["target"] = _int(target, "target")
    if "position" in fields and kind == "add":
        action["position"] = _int(fields["position"], "position")
    if "prompt" in fields:
        action["prompt"] = fields["prompt"]
    if kind == "finish":
        if fields.get("answer"):
            action["answer"] = fields["answer"]
        return action
    structure = fields.get("structure", "").lower()
    if structure and structure != OPERATOR:
        action["structure"] = structure
    if structure == CONDITIONAL and "condition" in fields:
        action["operators"] = [fields["condition"], fields.get("true", ""), fields.get("false", "")]
    elif "operators" in fields:
        action["operators"] = _names(fields["operators"])
    elif "operator" in fields:
        action["operator"] = fields["operator"]
    count = fields.get("count", fields.get("iterations"))
    if count is not None:
        action["count"] = _int(count, "count")
    return action


def _single(kind: str, body: str) -> dict[str, Any]:
    if kind == "add":
        return node_action(body)
    if kind == "delete":
        return {"action_type": "delete", "target": _int(body, "target")}
    if kind in ("modify", "set_prompt"):
        target, sep, value = body.partition(":")
        if not sep:
            raise EditError("bad_xml", f"write <{kind}>node: value</{kind}>")
        action: dict[str, Any] = {"action_type": kind, "target": _int(target, "target")}
        if kind == "set_prompt":
            action["prompt"] = value.strip()
        else:
            names = _names(value)
            if len(names) == 1:
                action["operator"] = names[0]
            else:
                action["operators"] = names
        return action
    if kind == "execute":
        return {"action_type": "execute"}
    return {"action_type": "finish", **({"answer": body} if body else {})}
