"""The observation: everything a policy may know, nothing hidden, as plain data.

Built once per step from the episode's state. Hidden facts (trap types,
scheduled events, the seeded outcomes) never appear; an agent's public
``reliability`` is the declared one, and failure history shows only what
already happened.

This module owns everything the observation keeps between steps: per task,
:class:`ObservationTables` (the template of every observation, the views
before anything happened, the legal action objects), built once when the task
is compiled; per episode, :class:`Views` (the latest views, and the sets in
which the episode marks the subtasks and agents whose views changed). The
episode only marks changes; only this module reads and clears them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .formulas import budget_pressure, deadline_open
from .states import AGENT_STATUS, COMPLETED, FAILED, IDLE, READY, RUNNING, SUBTASK_STATUS

if TYPE_CHECKING:
    from .dag import DagIndex
    from .episode import Episode
    from .model import AgentSpec, SubtaskSpec, TaskSpec

# Per subtask, (agent, action) for each capable agent.
Choices = tuple[tuple[tuple[int, dict[str, str]], ...], ...]


@dataclass(frozen=True, slots=True)
class ObservationTables:
    """What every observation of one task shares, built once per compiled task
    (read-only: observations share these objects)."""

    # Every observation key in order, with the task's static values.
    template: dict[str, Any]
    # Views before anything happened, shared by new episodes and copied when a view changes.
    initial_subtask_views: tuple[dict[str, Any], ...]
    initial_agent_views: tuple[dict[str, Any], ...]
    # A subtask's view when it is ready: it has no history yet, so one view serves all.
    ready_subtask_views: tuple[dict[str, Any], ...]
    # Ready-made legal action objects.
    delegate_choices: Choices
    retry_choices: Choices
    abort_actions: tuple[dict[str, str], ...]
    # Per subtask: the longest chain of fastest durations from it to the end, over
    # the agents publicly capable of each subtask (traps included: which agent is
    # a trap is hidden, so the observation's critical path must not depend on it).
    public_tail: tuple[int, ...]
    # Per subtask: its public tail minus its own fastest duration (the rest of
    # the chain after it), for the critical path of running work.
    running_tail: tuple[int, ...]
    # The end of the budget-pressure hint (the budget, formatted once).
    budget_hint_tail: str

    @classmethod
    def build(
        cls,
        spec: TaskSpec,
        dag: DagIndex,
        capable: tuple[tuple[int, ...], ...],
        rules: dict[str, Any],
        status: tuple[int, ...],
    ) -> ObservationTables:
        """The tables of a task whose subtasks start in ``status``, with the agents
        able to do each in ``capable``."""

        def choices(action_type: str) -> Choices:
            return tuple(
                tuple(
                    (a, {"action_type": action_type, "subtask_id": subtask.id, "agent_name": spec.agents[a].name})
                    for a in capable[s]
                )
                for s, subtask in enumerate(spec.subtasks)
            )

        fastest, tail = public_tails(spec, dag, capable)
        return cls(
            template=observation_template(spec, rules),
            initial_subtask_views=tuple(
                initial_subtask_view(s, st) for s, st in zip(spec.subtasks, status, strict=True)
            ),
            initial_agent_views=tuple(initial_agent_view(agent) for agent in spec.agents),
            ready_subtask_views=tuple(initial_subtask_view(s, READY) for s in spec.subtasks),
            delegate_choices=choices("delegate"),
            retry_choices=choices("retry"),
            abort_actions=tuple({"action_type": "abort", "subtask_id": s.id} for s in spec.subtasks),
            public_tail=tail,
            running_tail=tuple(t - own for t, own in zip(tail, fastest, strict=True)),
            budget_hint_tail=("" if spec.budget is None else f" of {spec.budget:.1f} spent; prefer cheaper agents."),
        )


def public_tails(
    spec: TaskSpec, dag: DagIndex, capable: tuple[tuple[int, ...], ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per subtask, its fastest duration over the agents that publicly accept its
    type, and the longest chain of such durations from it to the end."""
    agents = spec.agents
    fastest = tuple(
        min((agents[a].duration_for(subtask.work) for a in capable[s]), default=dag.fastest_duration[s])
        for s, subtask in enumerate(spec.subtasks)
    )
    tail = [0] * len(fastest)
    for i in reversed(dag.topological_order):
        tail[i] = fastest[i] + max((tail[j] for j in dag.successors[i]), default=0)
    return fastest, tuple(tail)


class Views:
    """The observation's state in one episode: the latest subtask and agent views,
    the time they show, and what changed since they were built."""

    __slots__ = ("tables", "template", "subtask_views", "agent_views", "time", "changed_subtasks", "changed_agents")

    def __init__(
        self, tables: ObservationTables, seed: int, changed_subtasks: set[int], changed_agents: set[int]
    ) -> None:
        self.tables = tables
        # The task's template with this episode's seed, copied by every observation.
        self.template = tables.template.copy()
        self.template["seed"] = seed
        # The initial views are the same for every episode of a task.
        self.subtask_views: list[dict[str, Any]] = list(tables.initial_subtask_views)
        self.agent_views: list[dict[str, Any]] = list(tables.initial_agent_views)
        self.time = 0
        # Marked by the episode (its own two sets, kept from its start: the views may be made
        # after steps, see Episode.views), rebuilt and cleared by the next observation.
        self.changed_subtasks = changed_subtasks
        self.changed_agents = changed_agents


def workflow_observation(episode: Episode, named_agents: bool = True) -> dict[str, Any]:
    """The observation after the latest step (what every family of workflows of
    named agents shows; a family adds its own views, see ``Family.observe``).
    ``named_agents=False``: the hint suggests starts without agent names.

    Subtask and agent views are rebuilt only when they changed (or, for work in
    progress, when time moved); unchanged views are shared between successive
    observations, so treat an observation as read-only.
    """
    now = episode.now
    views = episode.views
    if views.changed_subtasks:
        _refresh_subtask_views(episode, views)
    if views.changed_agents:
        _refresh_agent_views(episode, views)
    if episode.running and now != views.time:
        _count_down_views(episode, views)
    legal, critical_path, ready_ids = _scan(episode, views.tables)
    task = episode.task
    # A copy of the episode's template (static fields and the seed set, keys in order), then the rest.
    observation = views.template.copy()
    observation["step_count"] = episode.step_count
    observation["time_used"] = now
    limit = task.time_limit
    if limit is not None:
        observation["time_remaining"] = limit - now if now < limit else 0
    if episode.capacity != task.capacity:  # the template has the task's
        observation["capacity"] = episode.capacity
    observation["active_count"] = episode.active_count
    spent = observation["budget_used"] = episode.budget_used
    if task.budget is not None:
        observation["budget_remaining"] = task.budget - spent
    observation["completed_count"] = episode.completed_count
    observation["subtasks"] = list(views.subtask_views)
    observation["agents"] = list(views.agent_views)
    observation["legal_actions"] = legal
    observation["hint"] = build_hint(episode, ready_ids, named_agents)
    observation["reward"] = episode.last_reward
    observation["reward_breakdown"] = episode.last_breakdown
    observation["errors"] = list(episode.last_errors)  # the episode keeps an empty one from step to step
    observation["critical_path_length"] = critical_path
    if episode.waits_in_patience:
        observation["patience_waits"] = episode.waits_in_patience
    if episode.terminated or episode.truncated:  # the template says False for all three
        observation["terminated"] = episode.terminated
        observation["truncated"] = episode.truncated
        observation["done"] = True
    return observation


def observation_template(task: TaskSpec, rules: dict[str, Any]) -> dict[str, Any]:
    """Every observation key in order, with the task's static values set."""
    return {
        "task_id": task.task_id,
        "seed": None,
        "time_model": task.time_model.value,
        "step_count": 0,
        "time_used": 0,
        "time_limit": task.time_limit,
        "time_remaining": None,
        "step_limit": task.step_limit,
        "capacity": task.capacity,
        "active_count": 0,
        "budget": task.budget,
        "budget_used": 0.0,
        "budget_remaining": None,
        "completed_count": 0,
        "subtask_count": len(task.subtasks),
        "subtasks": [],
        "agents": [],
        "legal_actions": [],
        "hint": "",
        "reward": 0.0,
        "reward_breakdown": {},
        "errors": [],
        "critical_path_length": 0,
        "rules": rules,
        "patience_waits": 0,
        "terminated": False,
        "truncated": False,
        "done": False,
    }


def initial_subtask_view(subtask: SubtaskSpec, status: int) -> dict[str, Any]:
    """A subtask's view before anything happened; later views are copies of it
    with the changing fields set (see :func:`_refresh_subtask_views`)."""
    return {
        "id": subtask.id,
        "type": subtask.type,
        "depends_on": list(subtask.depends_on),
        "deadline": subtask.deadline,
        "priority": subtask.priority,
        "work": subtask.work,
        "tags": list(subtask.tags),
        "status": SUBTASK_STATUS[status],
        "assigned_agent": None,
        "time_left": None,
        "attempts": 0,
        "failures": [],
        "completed_at": None,
        "completed_by": None,
    }


def initial_agent_view(agent: AgentSpec) -> dict[str, Any]:
    """An agent's view before anything happened; later views are copies of it
    with the changing fields set (see :func:`_refresh_agent_views`)."""
    return {
        "name": agent.name,
        "status": AGENT_STATUS[IDLE],
        "capabilities": sorted(agent.capabilities),
        "speed": agent.speed,
        "cost": agent.cost,
        "reliability": agent.reliability,
        "current_task": None,
        "time_left": None,
    }


def _count_down_views(episode: Episode, views: Views) -> None:
    """Time moved: copy the views of work in progress with their new time left.

    Views rebuilt in this step already carry the current time.
    """
    now = episode.now
    subtask_views = views.subtask_views
    agent_views = views.agent_views
    for s, a in episode.running.items():
        left = episode.finish_of(s) - now
        view = subtask_views[s]
        if view["time_left"] != left:
            view = view.copy()
            view["time_left"] = left
            subtask_views[s] = view
        view = agent_views[a]
        if view["time_left"] != left:
            view = view.copy()
            view["time_left"] = left
            agent_views[a] = view
    views.time = now


def _refresh_subtask_views(episode: Episode, cache: Views) -> None:
    initial = cache.tables.initial_subtask_views
    agents = episode.agents
    now = episode.now
    views = cache.subtask_views
    ready = cache.tables.ready_subtask_views
    for s in cache.changed_subtasks:
        st = episode.status[s]
        if st == READY:  # only ever reached from pending: no history yet, a shared view
            views[s] = ready[s]
            continue
        # Running, completed or failed: the initial view with what that status adds.
        view = initial[s].copy()
        view["status"] = SUBTASK_STATUS[st]
        view["attempts"] = episode.attempts_of(s)
        view["failures"] = episode.failures[s]  # never appended to: a failure makes a new list
        if st == RUNNING:
            view["assigned_agent"] = agents[episode.agent_of(s)].name
            view["time_left"] = episode.finish_of(s) - now
        elif st == COMPLETED:
            view["completed_at"] = episode.completed_at[s]
            view["completed_by"] = agents[episode.completed_by[s]].name
        views[s] = view
    cache.changed_subtasks.clear()


def _refresh_agent_views(episode: Episode, cache: Views) -> None:
    initial = cache.tables.initial_agent_views
    subtasks = episode.subtasks
    now = episode.now
    views = cache.agent_views
    for a in cache.changed_agents:
        current = episode.agent_task[a]
        status = episode.agent_status[a]
        speed = episode.agent_speed[a]
        view = initial[a]
        if status == IDLE and speed == view["speed"]:  # as it started: the shared view
            views[a] = view
            continue
        view = view.copy()
        view["status"] = AGENT_STATUS[status]
        view["speed"] = speed
        if current >= 0:
            view["current_task"] = subtasks[current].id
            view["time_left"] = episode.finish_of(current) - now
        views[a] = view
    cache.changed_agents.clear()


def _scan(episode: Episode, tables: ObservationTables) -> tuple[list[dict[str, Any]], int, list[str]]:
    """One pass over the frontier (subtasks ready, running or failed): the legal
    actions, the remaining critical path and the ready ids.

    Legal actions are every single action that would be accepted now,
    concretely; any subset of the delegate and retry pairs with distinct
    agents, up to the free capacity, is also a valid ``dispatch``.

    The remaining critical path is the fastest time still needed to finish,
    along the longest remaining chain, by the agents that publicly accept each
    subtask's type (a hidden trap does not lengthen it). Successors of an unfinished subtask are
    all pending, so their fastest tails are the static ones; only running
    subtasks need their actual time left. A pending subtask never sets the
    maximum, so the frontier is enough: it has an unfinished predecessor whose
    chain through it is longer (a running one has at least one time unit left).
    """
    tails = tables.public_tail
    ids = episode.dag.ids
    slack = tables.running_tail
    now = episode.now
    done = episode.terminated or episode.truncated
    room = not done and episode.active_count < episode.capacity
    agent_status = episode.agent_status
    status = episode.status
    finish_at = episode.finish_at
    actions: list[dict[str, Any]] = []
    aborts: list[dict[str, Any]] = []
    ready_ids: list[str] = []
    longest = 0
    for s in episode.frontier:
        st = status[s]
        if st == RUNNING:
            value = finish_at[s] - now + slack[s]
            if not done:
                aborts.append(tables.abort_actions[s])
        else:
            value = tails[s]
            if st == READY:
                ready_ids.append(ids[s])
                choices = tables.delegate_choices[s]
            else:
                choices = tables.retry_choices[s]
            if room:
                for a, action in choices:
                    if agent_status[a] == IDLE:
                        actions.append(action)
        if value > longest:
            longest = value
    if not done:
        actions.extend(aborts)
        # Always: whether an event is scheduled is hidden until it happens.
        actions.append(_WAIT)
        if episode.completed_count == len(status):
            actions.append(_SYNTHESIZE)
    return actions, longest, ready_ids


_WAIT: Final[dict[str, Any]] = {"action_type": "wait"}
_SYNTHESIZE: Final[dict[str, Any]] = {"action_type": "synthesize"}


def build_hint(episode: Episode, ready: list[str], named_agents: bool = True) -> str:
    """What to do now, from public information only.

    Every situation that applies is listed, most urgent first (failures,
    deadlines, budget, monitoring, ready work), and the hint ends with one
    action, legal now, that takes every start it suggests together: a
    ``delegate``/``retry`` or a ``dispatch`` of distinct idle agents within the
    free capacity, never to an agent that publicly failed that subtask
    permanently nor, on conflicting tracks, to whoever did a sibling track
    (``named_agents=False``: starts without agent names, for families whose
    workers are interchangeable); else ``wait()`` or ``synthesize()``.
    """
    if episode.terminated or episode.truncated:
        return "The episode is over."
    task = episode.task
    subtasks = episode.subtasks
    notes: list[str] = []
    starts: list[tuple[int, int]] = []  # (subtask, agent) to start together now
    started: set[int] = set()
    taken: set[int] = set()
    free = episode.capacity - episode.active_count
    status = episode.status

    def start(s: int, fastest: bool) -> str | None:
        if len(starts) >= free or s in started:
            return None
        a = _hint_agent(episode, s, taken, fastest)
        if a < 0:
            return None
        starts.append((s, a))
        started.add(s)
        taken.add(a)
        return episode.agents[a].name

    for s in sorted(episode.failed_set):
        last = episode.failures[s][-1]
        spec = subtasks[s]
        agent = start(s, False)
        if last["kind"] == "permanent":
            note = f"{spec.id} failed permanently on {last['agent']}: that agent can never do {spec.type} work"
            again = "retry it with a different capable agent"
        else:
            note = f"{spec.id} failed ({last['kind']}, {last['cause']})"
            again = "retry it soon"
        notes.append(f"{note}; {again}" + (f" ({agent})." if agent and named_agents else "."))
    now = episode.now
    # Deadlines are sorted, and the step moved its cursor past those already gone.
    deadlines = episode.deadlines
    cursor = episode.deadline_cursor
    while cursor < len(deadlines) and deadlines[cursor][0] - now <= 4:
        deadline, s = deadlines[cursor]
        if deadline_open(episode.completed_at[s], deadline, now):
            notes.append(f"Deadline pressure: {subtasks[s].id} must complete by t={deadline} (now t={now}).")
            if status[s] == READY:
                start(s, True)
        cursor += 1
    if budget_pressure(episode.budget_used, task.budget):
        notes.append(f"Budget pressure: {episode.budget_used:.1f}{episode.views.tables.budget_hint_tail}")
    all_done = episode.completed_count == len(subtasks)
    patience_left = 0
    if all_done:
        if task.patience and episode.waits_in_patience < task.patience.waits:
            patience_left = task.patience.waits - episode.waits_in_patience
            notes.append(
                f"All subtasks are completed; monitoring wants {patience_left} more wait(s) before you synthesize."
            )
        else:
            notes.append("All subtasks are completed: synthesize to finish.")
    elif ready and free > len(starts):
        # Longest public chain ahead first, then by name (``ready`` is in name order).
        index = episode.dag.index
        tails = episode.views.tables.public_tail
        before = len(starts)
        for subtask_id in sorted(ready, key=lambda r: -tails[index[r]]):
            if len(starts) >= free:  # no start can be added any more
                break
            start(index[subtask_id], False)
        if len(starts) > before:
            chosen = ", ".join(episode.dag.ids[s] for s, _ in starts[before:])
            left = len(ready) - (len(starts) - before)
            notes.append(
                f"Ready to start now: {chosen}; {free} free slot(s)" + (f", {left} more ready." if left else ".")
            )
    if starts:
        return " ".join(notes) + " Do: " + _start_label(episode, starts, named_agents)
    if all_done:
        return " ".join(notes) + (" Do: wait()." if patience_left else " Do: synthesize().")
    if episode.active_count:
        notes.append("Work is in progress; wait for it to finish.")
    else:
        pending = len(subtasks) - episode.completed_count - len(episode.frontier)
        notes.append(
            f"{pending} subtask(s) wait for dependencies." if pending else "No capable agent is free; wait for one."
        )
    return " ".join(notes) + " Do: wait()."


def _hint_agent(episode: Episode, s: int, taken: set[int], fastest: bool) -> int:
    """An idle agent for a suggested start: capable, not taken by another suggested
    start, not publicly failed on it permanently, not on a conflicting sibling
    track; the cheapest (the fastest when ``fastest``), then the first declared."""
    banned = _conflict_banned(episode, s) if episode.task.conflicts else _NO_AGENTS
    best, best_key = -1, None
    agents = episode.agents
    speed = episode.agent_speed
    agent_status = episode.agent_status
    known_permanent = episode.known_permanent
    for a in episode.compiled.capable[s]:
        if agent_status[a] != IDLE or a in taken or a in banned or (s, a) in known_permanent:
            continue
        cost = agents[a].cost * speed[a]
        key = (speed[a], cost, a) if fastest else (cost, speed[a], a)
        if best_key is None or key < best_key:
            best, best_key = a, key
    return best


_NO_AGENTS: Final[frozenset[int]] = frozenset()


def _conflict_banned(episode: Episode, s: int) -> set[int]:
    conflicts = episode.task.conflicts
    if not conflicts:
        return set()
    subtask_id = episode.subtasks[s].id
    index = episode.dag.index
    banned: set[int] = set()
    for conflict in conflicts:
        if subtask_id in conflict.tracks:
            for track in conflict.tracks:
                t = index[track]
                if t != s:
                    for a in (
                        episode.agent_of(t) if episode.status[t] == RUNNING else -1,
                        episode.completed_by[t],
                    ):
                        if a >= 0:
                            banned.add(a)
    return banned


def _start_label(episode: Episode, starts: list[tuple[int, int]], named_agents: bool) -> str:
    ids = episode.dag.ids
    if len(starts) == 1 and named_agents:
        s, a = starts[0]
        kind = "retry" if episode.status[s] == FAILED else "delegate"
        return f"{kind}({ids[s]},{episode.agents[a].name})."
    if named_agents:
        return "dispatch(" + ",".join(f"{ids[s]}:{episode.agents[a].name}" for s, a in starts) + ")."
    return "dispatch(" + ",".join(ids[s] for s, _ in starts) + ")."


def render_workflow_text(observation: Mapping[str, Any], family_lines: Sequence[str] = ()) -> str:
    """A compact text rendering of an observation for LLM prompts; a family's own
    lines (``family_lines``) come before the legal actions."""
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
    lines.extend(family_lines)
    legal = observation["legal_actions"]
    if legal:
        lines.append("Legal actions:")
        for action in legal[:40]:
            args = ",".join(
                [str(action[k]) for k in ("subtask_id", "agent_name") if k in action]
                + list(action.get("task_ids", ()))
                + [f"{a['subtask_id']}:{a.get('agent_name')}" for a in action.get("assignments", ())]
            )
            lines.append(f"- {action['action_type']}({args})")
        if len(legal) > 40:
            lines.append(f"- ... {len(legal) - 40} more")
    if observation["errors"]:
        lines.append("Last action errors: " + "; ".join(f"{e['code']}: {e['message']}" for e in observation["errors"]))
    lines.append(f"Hint: {observation['hint']}")
    return "\n".join(lines)
