"""What the model is told: the system prompt (the rules of the world, the task's
own rules, how to answer), the user prompt of each turn, and the tool schemas
for answers through tool calling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflow_orchestrator.server.core import render_text

from .canvas import canvas_system_prompt, is_canvas

SYSTEM_RULES = """\
You orchestrate a workflow: subtasks that form a dependency graph (a DAG), run by simulated worker agents. \
Each turn you see the current state and choose one action.

How the world works:
- A subtask is ready when every subtask it depends on is completed; only ready subtasks can be started \
(failed ones are started again with retry).
- An agent can take a subtask only if its capabilities include the subtask's type. An agent works on one \
subtask at a time; an offline agent takes nothing. At most `capacity` subtasks run at once.
- A subtask takes (agent speed x subtask work) time units, at least 1. An agent costs its cost per time \
unit it works, whether the attempt succeeds or fails; the budget, when there is one, caps the total.
- An attempt may fail; the failure shows when its time is up. A permanent failure means that agent can \
never do that subtask: retry it with a different capable agent. A transient failure may succeed on a retry, \
with the same or another agent. Reliability is the declared chance that an attempt succeeds.
- Agents may go offline, come back or slow down during the episode, and capacity may change; an agent going \
offline fails the subtask it was running.
- Time: in "tick" time every action, valid or not, takes one time unit, and then the world advances one \
unit. In "event" time decisions take no time and wait jumps to the next completion, failure or scheduled \
change; a step limit bounds the episode.
- A deadline is the latest time by which its subtask must be completed.
- An invalid action changes nothing (in tick time it still uses its time unit), comes back as an error code, \
and is penalised. Missed deadlines are penalised too, and depending on the task, failed subtasks left alone for \
two or more steps or capacity left idle while work is ready.
- The episode ends when you synthesize after every subtask is completed (tick time) or when every subtask is \
completed (event time), or when the time or step limit runs out. Unfinished work scores little.

Actions:
{"action_type": "delegate", "subtask_id": "<ready subtask>", "agent_name": "<idle capable agent>"}
{"action_type": "retry", "subtask_id": "<failed subtask>", "agent_name": "<idle capable agent>"}
{"action_type": "dispatch", "assignments": [{"subtask_id": "<id>", "agent_name": "<agent>"}, ...]} \
starts several ready or failed subtasks in one action, each on a different agent; all of them start or none does.
(In retry and in a dispatch assignment agent_name may be left out: the environment then picks an idle capable \
agent, the cheapest not known to fail that subtask permanently.)
{"action_type": "wait"} lets time pass.
{"action_type": "synthesize"} ends the workflow; valid only when every subtask is completed.
{"action_type": "abort", "subtask_id": "<running subtask>"} stops it and frees its agent; the subtask becomes \
failed and can be retried.
The state lists every single action that is valid now; any set of those starts on distinct agents, within \
the free capacity, is a valid dispatch. Starting independent work together saves time.

A shaped reward follows every step; what counts is the final grade of the episode, a score from 0 to 1."""

JSON_ANSWER = (
    "Answer with exactly one JSON object, the action, and nothing else. "
    'Example: {"action_type": "delegate", "subtask_id": "build", "agent_name": "ci_runner"}'
)
TOOL_ANSWER = (
    "Answer by calling exactly one of the tools, the action. Several delegate or retry calls in one answer "
    "start those subtasks together, as one dispatch."
)


def task_rules_text(observation: Mapping[str, Any]) -> str:
    """The task's stated rules (what its grade rewards), from the observation."""
    rules = observation.get("rules") or {}
    lines = [f"This task: {observation.get('task_id')} ({observation.get('time_model')} time)."]
    weights = rules.get("grade_weights") or {}
    if weights:
        ranked = sorted(weights.items(), key=lambda item: -item[1])
        lines.append("Its grade weighs: " + ", ".join(f"{name} {weight:g}" for name, weight in ranked) + ".")
    for conflict in rules.get("conflicts") or []:
        lines.append(
            f"Conflicting findings: {', '.join(conflict['tracks'])} feed {conflict['at']}; "
            "credit needs each of them completed by a different agent."
        )
    patience = rules.get("patience")
    if patience:
        lines.append(
            f"Monitoring: after {patience['after']} completes, wait {patience['waits']} time(s) before you synthesize."
        )
    pillars = rules.get("pillars") or {}
    if pillars:
        described = "; ".join(f"{name}: {', '.join(members)}" for name, members in pillars.items())
        lines.append(f"Keep the pillars balanced (the grade counts the least completed one): {described}.")
    return "\n".join(lines)


def system_prompt(observation: Mapping[str, Any], tool_calls: bool) -> str:
    if is_canvas(observation):
        # Canvas tasks answer in text (the published XML form, or JSON), with or without tool calling.
        return canvas_system_prompt()
    return "\n\n".join((SYSTEM_RULES, task_rules_text(observation), TOOL_ANSWER if tool_calls else JSON_ANSWER))


def user_prompt(observation: Mapping[str, Any], history: Sequence[str], tool_calls: bool) -> str:
    parts = []
    if history:
        parts.append("Your recent steps:\n" + "\n".join(history))
    parts.append("Current state:\n" + render_text(dict(observation)))
    if is_canvas(observation):
        parts.append("Choose the next action. Reply with one action (XML or JSON) only.")
    else:
        parts.append(
            "Choose the next action. " + ("Call one tool." if tool_calls else "Reply with the JSON object only.")
        )
    return "\n\n".join(parts)


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_SUBTASK = {"type": "string", "description": "subtask id"}
_AGENT = {"type": "string", "description": "agent name"}
ACTION_TOOLS: list[dict[str, Any]] = [
    _tool(
        "delegate",
        "Start a ready subtask on an idle agent whose capabilities include its type.",
        {"subtask_id": _SUBTASK, "agent_name": _AGENT},
        ["subtask_id", "agent_name"],
    ),
    _tool(
        "retry",
        "Start a failed subtask again on an idle capable agent (after a permanent failure, a different one).",
        {"subtask_id": _SUBTASK, "agent_name": _AGENT},
        ["subtask_id", "agent_name"],
    ),
    _tool(
        "dispatch",
        "Start several ready or failed subtasks at once, each on a different agent; all start or none does.",
        {
            "assignments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"subtask_id": _SUBTASK, "agent_name": _AGENT},
                    "required": ["subtask_id", "agent_name"],
                },
            }
        },
        ["assignments"],
    ),
    _tool("wait", "Let time pass (in event time: until the next event).", {}, []),
    _tool("synthesize", "End the workflow; valid only when every subtask is completed.", {}, []),
    _tool(
        "abort",
        "Stop a running subtask and free its agent; the subtask becomes failed.",
        {"subtask_id": _SUBTASK},
        ["subtask_id"],
    ),
]
