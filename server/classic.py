"""The published environment's wire schema, built from this server's episodes.

The first public workflow_orchestrator (one global environment, four
scenario tasks, five action types) had a typed client whose models forbid
unknown fields: its observation has ``task_description``, ``subtasks`` (each
``id, type, status, dependencies, dependencies_met, assigned_to, output,
error, steps_remaining, attempt_count``), ``agents`` (``name, capabilities,
status, current_task, reliability, speed, cost_per_step``),
``completed_outputs``, ``errors`` (strings), ``time_remaining``,
``time_elapsed``, ``capacity_limit``, ``active_task_count``,
``budget_remaining``, ``budget_used``, ``available_actions`` (names),
``hint``, ``sla_milestones``, ``failures_occurred`` and
``failures_recovered``; its state has ``task_id, task_name, difficulty,
subtask_statuses, agent_statuses, completed_outputs, total_reward,
failures_occurred, failures_recovered, parallelism_events,
capacity_violations, budget_total, budget_used``.

These functions translate this server's observation and state into those
forms, from public information only; ``server/http/classic.py`` serves them
under ``/classic``. Nothing here changes an episode: the same episode, the
same grader, another view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflow_orchestrator.server.core.states import SUBTASK_STATUS

COMPLETED = SUBTASK_STATUS[3]
CAPACITY = "capacity_exceeded"
ENDS = frozenset({"completed", "failed", "aborted"})


def classic_observation(observation: Mapping[str, Any], descriptions: Mapping[str, str]) -> dict[str, Any]:
    """The published observation's fields (and openenv's ``done``, ``reward``, ``metadata``)."""
    subtasks = observation.get("subtasks", [])
    status_of = {subtask["id"]: subtask["status"] for subtask in subtasks}
    completed_outputs = {subtask["id"]: _output(subtask) for subtask in subtasks if subtask["status"] == COMPLETED}
    occurred, recovered = _failure_counts(subtasks)
    budget = observation.get("budget")
    return {
        "task_description": descriptions.get(observation.get("task_id", ""), observation.get("task_id", "")),
        "subtasks": [
            {
                "id": subtask["id"],
                "type": subtask["type"],
                "status": subtask["status"],
                "dependencies": list(subtask.get("depends_on", [])),
                "dependencies_met": all(status_of.get(d) == COMPLETED for d in subtask.get("depends_on", [])),
                "assigned_to": subtask.get("assigned_agent"),
                "output": completed_outputs.get(subtask["id"]),
                "error": _error(subtask),
                "steps_remaining": subtask.get("time_left"),
                "attempt_count": subtask.get("attempts", 0),
            }
            for subtask in subtasks
        ],
        "agents": [
            {
                "name": agent["name"],
                "capabilities": list(agent.get("capabilities", [])),
                "status": agent["status"],
                "current_task": agent.get("current_task"),
                "reliability": agent.get("reliability", 1.0),
                "speed": agent.get("speed", 1),
                "cost_per_step": agent.get("cost", 0.0),
            }
            for agent in observation.get("agents", [])
        ],
        "completed_outputs": completed_outputs,
        "errors": [str(error) for error in observation.get("errors", [])],
        "time_remaining": observation.get("time_remaining", 0),
        "time_elapsed": observation.get("time_used", 0),
        "capacity_limit": observation.get("capacity", 0),
        "active_task_count": observation.get("active_count", 0),
        "budget_remaining": observation.get("budget_remaining") if budget is not None else None,
        "budget_used": observation.get("budget_used", 0.0),
        "available_actions": sorted({action["action_type"] for action in observation.get("legal_actions", [])}),
        "hint": observation.get("hint"),
        "sla_milestones": {s["id"]: s["deadline"] for s in subtasks if s.get("deadline") is not None} or None,
        "failures_occurred": occurred,
        "failures_recovered": recovered,
        "done": bool(observation.get("done", False)),
        "reward": observation.get("reward"),
        "metadata": {"episode_id": observation["episode_id"]} if "episode_id" in observation else {},
    }


def classic_state(state: Mapping[str, Any], tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The published state's fields, with openenv's ``episode_id`` and ``step_count``."""
    observation = state.get("observation") or {}
    subtasks = observation.get("subtasks", [])
    occurred, recovered = _failure_counts(subtasks)
    events = state.get("events", [])
    task = tasks.get(state.get("task_id", ""), {})
    return {
        "episode_id": state.get("episode_id"),
        "step_count": state.get("step_count", 0),
        "task_id": state.get("task_id", ""),
        "task_name": task.get("title", state.get("task_id", "")),
        "difficulty": task.get("difficulty", ""),
        "subtask_statuses": {subtask["id"]: subtask["status"] for subtask in subtasks},
        "agent_statuses": {agent["name"]: agent["status"] for agent in observation.get("agents", [])},
        "completed_outputs": {s["id"]: _output(s) for s in subtasks if s["status"] == COMPLETED},
        "total_reward": state.get("cumulative_reward", 0.0),
        "failures_occurred": occurred,
        "failures_recovered": recovered,
        "parallelism_events": _parallel_starts(events),
        "capacity_violations": sum(
            1 for event in events if _field(event, "kind") == "invalid_action" and _field(event, "code") == CAPACITY
        ),
        "budget_total": observation.get("budget"),
        "budget_used": state.get("budget_used", observation.get("budget_used", 0.0)),
    }


def _output(subtask: Mapping[str, Any]) -> str:
    by = subtask.get("completed_by")
    return f"{subtask['id']} completed by {by}" if by else f"{subtask['id']} completed"


def _error(subtask: Mapping[str, Any]) -> str | None:
    failures = subtask.get("failures") or []
    if not failures or subtask["status"] == COMPLETED:
        return None
    last = failures[-1]
    agent = last.get("agent", "the agent")
    if last.get("kind") == "permanent":
        return f"permanent failure: {agent} lacks required tooling for this subtask; use another agent"
    return f"transient failure on {agent}; a retry may succeed"


def _failure_counts(subtasks: list[Mapping[str, Any]]) -> tuple[int, int]:
    occurred = sum(len(subtask.get("failures") or []) for subtask in subtasks)
    recovered = sum(1 for subtask in subtasks if subtask.get("failures") and subtask["status"] == COMPLETED)
    return occurred, recovered


def _parallel_starts(events: list[Any]) -> int:
    """Starts of work while other work was running (the published count of parallelism)."""
    running: set[Any] = set()
    count = 0
    for event in events:
        kind, subtask = _field(event, "kind"), _field(event, "subtask")
        if kind == "delegated":
            count += bool(running - {subtask})
            running.add(subtask)
        elif kind in ENDS:
            running.discard(subtask)
    return count


def _field(event: Any, name: str) -> Any:
    if isinstance(event, Mapping):
        return event.get(name)
    return None
