"""The observation: everything a policy may know, nothing hidden, as plain data.

Built once per step from the episode's tables. Hidden facts (trap types,
scheduled events, the seeded outcomes) never appear; an agent's public
``reliability`` is the declared one, and failure history shows only what
already happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .episode import (
    AGENT_STATUS,
    COMPLETED,
    FAILED,
    IDLE,
    PENDING,
    READY,
    RUNNING,
    SUBTASK_STATUS,
)

if TYPE_CHECKING:
    from .episode import Episode


def build_observation(episode: "Episode") -> dict[str, Any]:
    task = episode.task
    dag = episode.dag
    now = episode.now
    status = episode.status
    subtask_agent = episode.subtask_agent
    finish_at = episode.finish_at
    agents = episode.agents
    subtasks_view = []
    for s, spec in enumerate(episode.subtasks):
        st = status[s]
        a = subtask_agent[s]
        subtasks_view.append(
            {
                "id": spec.id,
                "type": spec.type,
                "status": SUBTASK_STATUS[st],
                "depends_on": list(spec.depends_on),
                "assigned_agent": agents[a].name if a >= 0 else None,
                "time_left": finish_at[s] - now if st == RUNNING else None,
                "attempts": episode.attempts[s],
                "failures": list(episode.failures[s]),
                "deadline": spec.deadline,
                "priority": spec.priority,
                "work": spec.work,
                "completed_at": episode.completed_at[s],
                "completed_by": agents[episode.completed_by[s]].name if st == COMPLETED else None,
                "tags": list(spec.tags),
            }
        )
    agents_view = []
    for a, agent in enumerate(agents):
        current = episode.agent_task[a]
        agents_view.append(
            {
                "name": agent.name,
                "status": AGENT_STATUS[episode.agent_status[a]],
                "capabilities": sorted(agent.capabilities),
                "speed": episode.agent_speed[a],
                "cost": agent.cost,
                "reliability": agent.reliability,
                "current_task": episode.subtasks[current].id if current >= 0 else None,
                "time_left": finish_at[current] - now if current >= 0 else None,
            }
        )
    budget = task.budget
    observation: dict[str, Any] = {
        "task_id": task.task_id,
        "seed": episode.seed,
        "time_model": task.time_model.value,
        "step_count": episode.step_count,
        "time_used": now,
        "time_limit": task.time_limit,
        "time_remaining": episode.time_remaining,
        "step_limit": task.step_limit,
        "capacity": episode.capacity,
        "active_count": episode.active_count,
        "budget": budget,
        "budget_used": round(episode.budget_used, 6),
        "budget_remaining": None if budget is None else round(budget - episode.budget_used, 6),
        "completed_count": episode.completed_count,
        "subtask_count": len(episode.subtasks),
        "subtasks": subtasks_view,
        "agents": agents_view,
        "legal_actions": legal_actions(episode),
        "hint": build_hint(episode),
        "reward": episode.last_reward,
        "reward_breakdown": dict(episode.last_breakdown),
        "errors": list(episode.last_errors),
        "critical_path_length": remaining_critical_path(episode),
        "rules": episode.public_rules,
        "patience_waits": episode.waits_in_patience,
        "terminated": episode.terminated,
        "truncated": episode.truncated,
        "done": episode.done,
    }
    return observation


def legal_actions(episode: "Episode") -> list[dict[str, Any]]:
    """Every single action that would be accepted now, concretely.

    Any subset of the delegate and retry pairs with distinct agents, up to the
    free capacity, is also a valid ``dispatch``.
    """
    if episode.done:
        return []
    actions: list[dict[str, Any]] = []
    status = episode.status
    if episode.active_count < episode.capacity:
        for s, spec in enumerate(episode.subtasks):
            st = status[s]
            if st != READY and st != FAILED:
                continue
            kind = "delegate" if st == READY else "retry"
            for a in episode.idle_capable_agents(s):
                actions.append({"action_type": kind, "subtask_id": spec.id, "agent_name": episode.agents[a].name})
    for s, spec in enumerate(episode.subtasks):
        if status[s] == RUNNING:
            actions.append({"action_type": "abort", "subtask_id": spec.id})
    if episode.tick_model or episode._heap:
        actions.append({"action_type": "wait"})
    if episode.completed_count == len(episode.subtasks):
        actions.append({"action_type": "synthesize"})
    return actions


def remaining_critical_path(episode: "Episode") -> int:
    """Fastest time still needed to finish, following the longest remaining chain."""
    dag = episode.dag
    status = episode.status
    longest = 0
    remaining = [0] * len(status)
    for s in reversed(dag.topological_order):
        if status[s] == COMPLETED:
            continue
        own = episode.finish_at[s] - episode.now if status[s] == RUNNING else dag.fastest_duration[s]
        tail = max((remaining[j] for j in dag.successors[s]), default=0)
        remaining[s] = own + tail
        if remaining[s] > longest:
            longest = remaining[s]
    return longest


def build_hint(episode: "Episode") -> str:
    """One line from public information only: failures first, then deadlines,
    budget, and what is ready."""
    if episode.done:
        return "The episode is over."
    task = episode.task
    failed = [s for s in range(len(episode.subtasks)) if episode.status[s] == FAILED]
    if failed:
        s = failed[0]
        last = episode.failures[s][-1]
        spec = episode.subtasks[s]
        if last["kind"] == "permanent":
            return (
                f"{spec.id} failed permanently on {last['agent']}: that agent can never do "
                f"{spec.type} work; retry it with a different capable agent."
            )
        return f"{spec.id} failed ({last['kind']}, {last['cause']}); retry it soon."
    for s, spec in enumerate(episode.subtasks):
        if spec.deadline is not None and episode.status[s] != COMPLETED:
            if 0 <= spec.deadline - episode.now <= 4:
                return f"Deadline pressure: {spec.id} must complete by t={spec.deadline} (now t={episode.now})."
    if task.budget is not None and episode.budget_used > 0.8 * task.budget:
        return f"Budget pressure: {episode.budget_used:.1f} of {task.budget:.1f} spent; prefer cheaper agents."
    if episode.completed_count == len(episode.subtasks):
        if task.patience and episode.waits_in_patience < task.patience.waits:
            return "All subtasks are completed; monitoring wants more waits before you synthesize."
        return "All subtasks are completed: synthesize to finish."
    ready = [spec.id for s, spec in enumerate(episode.subtasks) if episode.status[s] == READY]
    free = episode.capacity - episode.active_count
    if ready and free > 0:
        return f"Ready: {', '.join(ready[:4])}{' ...' if len(ready) > 4 else ''}; {free} free slot(s)."
    if episode.active_count:
        return "Work is in progress; wait for it to finish or start other ready work."
    pending = sum(1 for st in episode.status if st == PENDING)
    return f"{pending} subtask(s) wait for dependencies."


def render_text(observation: dict[str, Any]) -> str:
    """A compact text rendering of an observation for LLM prompts."""
    lines = [
        f"Task {observation['task_id']} (seed {observation['seed']}, {observation['time_model']} time). "
        f"Step {observation['step_count']}, time used {observation['time_used']}"
        + (f" of {observation['time_limit']}" if observation["time_limit"] is not None else "")
        + f". Running {observation['active_count']}/{observation['capacity']}."
    ]
    if observation["budget"] is not None:
        lines.append(f"Budget: spent {observation['budget_used']:.1f} of {observation['budget']:.1f}.")
    lines.append(f"Critical path remaining: {observation['critical_path_length']}.")
    lines.append("Subtasks:")
    for sub in observation["subtasks"]:
        parts = [f"- {sub['id']} [{sub['type']}] {sub['status']}"]
        if sub["depends_on"]:
            parts.append(f"after {','.join(sub['depends_on'])}")
        if sub["assigned_agent"]:
            parts.append(f"on {sub['assigned_agent']} ({sub['time_left']} left)")
        if sub["deadline"] is not None:
            parts.append(f"deadline t={sub['deadline']}")
        if sub["failures"]:
            history = "; ".join(f"{f['agent']} {f['kind']}" for f in sub["failures"])
            parts.append(f"failures: {history}")
        lines.append(" ".join(parts))
    lines.append("Agents:")
    for agent in observation["agents"]:
        extra = f" on {agent['current_task']} ({agent['time_left']} left)" if agent["current_task"] else ""
        lines.append(
            f"- {agent['name']} {agent['status']}{extra}; can {','.join(agent['capabilities'])}; "
            f"speed {agent['speed']}, cost {agent['cost']}, reliability {agent['reliability']}"
        )
    legal = observation["legal_actions"]
    if legal:
        lines.append("Legal actions:")
        for action in legal[:40]:
            args = ",".join(str(action[k]) for k in ("subtask_id", "agent_name") if k in action)
            lines.append(f"- {action['action_type']}({args})")
        if len(legal) > 40:
            lines.append(f"- ... {len(legal) - 40} more")
    if observation["errors"]:
        lines.append("Last action errors: " + "; ".join(f"{e['code']}: {e['message']}" for e in observation["errors"]))
    lines.append(f"Hint: {observation['hint']}")
    return "\n".join(lines)
