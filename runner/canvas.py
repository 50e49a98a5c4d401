"""The runner on canvas tasks: the rules the model is told, its answer read as
the published XML action form or as JSON, the fallback when it gives none, and
the compact label of a canvas action for the [STEP] lines."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from workflow_orchestrator.server.core.canvas.canvas import EditError
from workflow_orchestrator.server.core.canvas.xml import parse_xml_action
from workflow_orchestrator.vocabulary import CANVAS_ACTION_TYPES

CANVAS_VIEW = "canvas"
# No canvas action lets a round pass unchanged: executing the canvas is free when
# it was executed as it is, and otherwise shows what it does.
CANVAS_FALLBACK: dict[str, Any] = {"action_type": "execute"}
CANVAS_FIELDS = ("operator", "operators", "structure", "count", "position", "target", "prompt", "answer", "text")
MAX_LABEL_PART = 40

CANVAS_RULES = """\
You design a workflow that solves a problem: a canvas of operators, each a call to a language model \
(Programmer and Test run code). Each turn you see the problem, the canvas, the last execution's result and \
verdict, and choose one action.

Operators: planners (Plan, Decompose) help the solvers after them; solvers (Programmer, AnswerGenerate, Custom) \
write an answer; checkers (Test, Review, Verify) flag a wrong answer, Test runs the tests of a code problem; \
Revise fixes a flagged answer; ScEnsemble and Aggregate choose among the answers of the parallel structure \
right before them; Format puts the answer in the expected form.
Structures: [A, B, C] runs branches on the same input (follow it with ScEnsemble or Aggregate); \
C ? T : F runs checker C, then T when it flagged the answer, else F; (A -> B) * n repeats its body n times. \
The canvas renders as a DSL such as: \
Plan -> [Programmer, AnswerGenerate, Custom] -> ScEnsemble -> Test ? Revise : Format

Actions, in the XML form:
<action>add</action><operator>Plan</operator>
<action>add</action><structure>parallel</structure><operators>Programmer, Custom</operators>
<action>add</action><structure>conditional</structure><condition>Verify</condition><true>Revise</true>\
<false>Format</false>
<action>add</action><structure>loop</structure><operators>Test, Revise</operators><count>2</count>
<action>delete</action><target>3</target>
<action>modify</action><target>2</target><operator>AnswerGenerate</operator>
<action>set_prompt</action><target>1</target><prompt>step_by_step</prompt>
<action>execute</action>
<action>finish</action><answer>42</answer>   (or <action>finish</action> to answer with the last execution's answer)
or as one JSON object: {"action_type": "add", "operator": "Plan"}, {"action_type": "finish", "answer": "42"}, ...

Every action is a round; the rounds and the token budget are limited. Executing charges the canvas's tokens \
(executing it again unchanged is free). An invalid action changes nothing and is penalised. The grade counts \
only a finished, executed canvas with a solver and a checker (and Test for code with tests); it weighs \
correctness 0.6, tokens spent against the budget 0.2, the final canvas's latency 0.1 and valid actions 0.1."""

CANVAS_ANSWER = (
    "Answer with exactly one action, in the XML form (for example <action>add</action><operator>Plan</operator>) "
    'or as one JSON object (for example {"action_type": "add", "operator": "Plan"}), and nothing after it.'
)

_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning|reflection)>.*?</\1\s*>", re.S | re.I)
_THINK_CLOSE = re.compile(r"</(?:think|thinking|reasoning|reflection)\s*>", re.I)
_XML_TAG = re.compile(r"<(action|add|delete|modify|set_prompt|execute|finish)\b", re.I)
_UNSAFE = re.compile(r"[\s()]+")


def is_canvas(observation: Mapping[str, Any]) -> bool:
    return CANVAS_VIEW in observation


def canvas_system_prompt() -> str:
    return f"{CANVAS_RULES}\n\n{CANVAS_ANSWER}"


def normalize_canvas_action(data: Any) -> dict[str, Any] | None:
    """A model's JSON object as a canvas action (known fields only), or None."""
    if not isinstance(data, Mapping):
        return None
    inner = data.get("action")
    if isinstance(inner, Mapping):
        data = inner
    kind = data.get("action_type", data.get("type", data.get("action")))
    if not isinstance(kind, str) or kind.strip().lower() not in CANVAS_ACTION_TYPES:
        return None
    action: dict[str, Any] = {"action_type": kind.strip().lower()}
    for name in CANVAS_FIELDS:
        if name in data and data[name] is not None:
            action[name] = data[name]
    if action["action_type"] == "xml":
        text = action.get("text")
        return read_xml(text) if isinstance(text, str) else None
    return action


def read_xml(text: str) -> dict[str, Any] | None:
    try:
        return parse_xml_action(text)
    except EditError:
        return None


def read_canvas_answer(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The canvas action in a model's answer (the published XML form, or JSON),
    and why there is none when there is none."""
    from .answers import _balanced_objects, _load_object

    if not text:
        return None, "an empty answer"
    closes = list(_THINK_CLOSE.finditer(text))
    answer = text[closes[-1].end() :] if closes else text
    answer = _THINK_BLOCK.sub(" ", answer)
    tags = list(_XML_TAG.finditer(answer))
    objects = _balanced_objects(answer)
    last_object = answer.rfind(objects[-1]) if objects else -1
    xml_error = None
    if tags and tags[-1].start() > last_object:
        # The XML form (written after any JSON object), from the start of the last action.
        try:
            return parse_xml_action(answer[_action_start(tags) :]), None
        except EditError as error:
            xml_error = error.message
    for span in reversed(objects):
        action = normalize_canvas_action(_load_object(span))
        if action is not None:
            return action, None
    return None, xml_error or "no action found"


def _action_start(tags: list[re.Match[str]]) -> int:
    """Where the last action begins: its ``<action>`` tag, else the last single-tag action."""
    for match in reversed(tags):
        if match.group(1).lower() == "action":
            return match.start()
    return tags[-1].start()


def _part(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    text = _UNSAFE.sub("_", str(value)).strip("_")
    return text[:MAX_LABEL_PART]


def canvas_label(action: Mapping[str, Any]) -> str:
    """``add(Plan)``, ``add(parallel:Programmer,Custom)``, ``add(loop:Test,Revise*2)``,
    ``delete(3)``, ``modify(2:Custom)``, ``set_prompt(1:concise)``, ``execute()``, ``finish(42)``."""
    kind = str(action.get("action_type", "?"))
    args = ""
    if kind == "add":
        structure = action.get("structure")
        operators = action.get("operators")
        if structure:
            args = f"{_part(structure)}:{_part(operators or '')}"
            if action.get("count") is not None:
                args += f"*{_part(action['count'])}"
        else:
            args = _part(action.get("operator") or operators or "")
    elif kind == "delete":
        args = _part(action.get("target", ""))
    elif kind in ("modify", "set_prompt"):
        value = action.get("prompt") if kind == "set_prompt" else action.get("operator") or action.get("operators")
        args = f"{_part(action.get('target', ''))}:{_part(value or '')}"
    elif kind == "finish" and action.get("answer") is not None:
        args = _part(action["answer"])
    elif kind == "xml":
        args = _part(json.dumps(action.get("text", ""))[1:-1])
    return f"{_UNSAFE.sub('_', kind)}({args})"
