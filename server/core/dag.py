"""Static analysis of a workflow: validation, topological order, critical path.

Everything here runs once per task, not per step. The step loop only reads the
integer-indexed tables of :class:`DagIndex`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .model import AgentSpec, EventKind, SubtaskSpec, TaskSpec


class WorkflowDefinitionError(ValueError):
    """A task definition with problems; ``problems`` lists every one found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: invalid workflow definition:\n{listing}")


def capable_agents(subtask: SubtaskSpec, agents: tuple[AgentSpec, ...]) -> list[AgentSpec]:
    """Agents that accept the subtask's type (traps included: they accept it too)."""
    return [agent for agent in agents if subtask.type in agent.capabilities]


def able_agents(subtask: SubtaskSpec, agents: tuple[AgentSpec, ...]) -> list[AgentSpec]:
    """Agents that can actually complete the subtask (traps excluded)."""
    return [
        agent for agent in agents if subtask.type in agent.capabilities and subtask.type not in agent.never_succeeds
    ]


def find_cycle(ids: list[str], deps: dict[str, tuple[str, ...]]) -> list[str] | None:
    """Return one dependency cycle as a list of ids, or None if the graph is acyclic."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {node: WHITE for node in ids}
    stack_path: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack_path.append(node)
        for dep in deps.get(node, ()):
            if dep not in colour:
                continue
            if colour[dep] == GREY:
                return stack_path[stack_path.index(dep) :] + [dep]
            if colour[dep] == WHITE:
                found = visit(dep)
                if found:
                    return found
        stack_path.pop()
        colour[node] = BLACK
        return None

    for node in ids:
        if colour[node] == WHITE:
            found = visit(node)
            if found:
                return found
    return None


def validate_task(task: TaskSpec) -> list[str]:
    """List every problem in a task definition (empty when it is sound)."""
    problems: list[str] = []
    ids = [s.id for s in task.subtasks]
    seen: set[str] = set()
    for subtask_id in ids:
        if subtask_id in seen:
            problems.append(f"duplicate subtask id {subtask_id!r}")
        seen.add(subtask_id)
    names = [a.name for a in task.agents]
    if len(set(names)) != len(names):
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"duplicate agent name {name!r}")
    if not task.subtasks:
        problems.append("the workflow has no subtasks")
    if not task.agents:
        problems.append("the workflow has no agents")
    if task.capacity < 1:
        problems.append(f"capacity must be at least 1, got {task.capacity}")
    for subtask in task.subtasks:
        for dep in subtask.depends_on:
            if dep not in seen:
                problems.append(f"subtask {subtask.id!r} depends on unknown subtask {dep!r}")
            if dep == subtask.id:
                problems.append(f"subtask {subtask.id!r} depends on itself")
        if subtask.work < 1:
            problems.append(f"subtask {subtask.id!r} has work {subtask.work}; it must be at least 1")
        if not able_agents(subtask, task.agents):
            problems.append(f"subtask {subtask.id!r} of type {subtask.type!r} has no agent that can complete it")
    for agent in task.agents:
        if agent.speed < 1:
            problems.append(f"agent {agent.name!r} has speed {agent.speed}; it must be at least 1")
        if not 0.0 <= agent.reliability <= 1.0:
            problems.append(f"agent {agent.name!r} has reliability {agent.reliability} outside [0, 1]")
        if agent.cost < 0:
            problems.append(f"agent {agent.name!r} has a negative cost")
        for trap_type in agent.never_succeeds:
            if trap_type not in agent.capabilities:
                problems.append(
                    f"agent {agent.name!r} has a never_succeeds trap on {trap_type!r}, "
                    "which is not one of its capabilities"
                )
    cycle = find_cycle(ids, {s.id: s.depends_on for s in task.subtasks})
    if cycle:
        problems.append("dependency cycle: " + " -> ".join(cycle))
    agent_names = set(names)
    for event in task.events:
        if event.kind is not EventKind.CAPACITY and event.agent not in agent_names:
            problems.append(f"event at {event.at} names unknown agent {event.agent!r}")
        if event.kind in (EventKind.SPEED, EventKind.CAPACITY) and (event.value is None or event.value < 1):
            problems.append(f"{event.kind.value} event at {event.at} needs a value of at least 1")
    for conflict in task.conflicts:
        for subtask_id in (conflict.at, *conflict.tracks):
            if subtask_id not in seen:
                problems.append(f"conflict names unknown subtask {subtask_id!r}")
    if task.patience and task.patience.after not in seen:
        problems.append(f"patience names unknown subtask {task.patience.after!r}")
    weight_sum = sum(task.grade_weights.values())
    if task.grade_weights and abs(weight_sum - 1.0) > 1e-6:
        problems.append(f"grade weights sum to {weight_sum:.4f}; they must sum to 1")
    return problems


@dataclass(frozen=True, slots=True)
class DagIndex:
    """Integer-indexed view of a validated workflow, built once per task."""

    ids: tuple[str, ...]
    index: dict[str, int]
    predecessors: tuple[tuple[int, ...], ...]
    successors: tuple[tuple[int, ...], ...]
    topological_order: tuple[int, ...]
    # Fastest possible duration of each subtask with an agent able to complete it.
    fastest_duration: tuple[int, ...]
    # Longest chain of fastest durations from each subtask to the end (inclusive).
    tail_length: tuple[int, ...]
    # Longest chain of fastest durations from the start up to and including each subtask.
    head_length: tuple[int, ...]
    downstream_count: tuple[int, ...]
    critical_path_length: int
    # Largest set of subtasks that could run at once (bounded by capacity).
    parallel_width: int

    @classmethod
    def build(cls, task: TaskSpec) -> DagIndex:
        ids = tuple(s.id for s in task.subtasks)
        index = {subtask_id: i for i, subtask_id in enumerate(ids)}
        predecessors = tuple(tuple(index[d] for d in s.depends_on) for s in task.subtasks)
        successor_lists: list[list[int]] = [[] for _ in ids]
        for i, preds in enumerate(predecessors):
            for p in preds:
                successor_lists[p].append(i)
        successors = tuple(tuple(s) for s in successor_lists)
        order = _topological_order(predecessors, successors)
        fastest = tuple(min(agent.duration_for(s.work) for agent in able_agents(s, task.agents)) for s in task.subtasks)
        tail = [0] * len(ids)
        for i in reversed(order):
            tail[i] = fastest[i] + max((tail[j] for j in successors[i]), default=0)
        head = [0] * len(ids)
        for i in order:
            head[i] = fastest[i] + max((head[p] for p in predecessors[i]), default=0)
        downstream = tuple(len(_reachable(i, successors)) for i in range(len(ids)))
        return cls(
            ids=ids,
            index=index,
            predecessors=predecessors,
            successors=successors,
            topological_order=tuple(order),
            fastest_duration=fastest,
            tail_length=tuple(tail),
            head_length=tuple(head),
            downstream_count=downstream,
            critical_path_length=max(tail, default=0),
            parallel_width=min(task.capacity, _max_antichain(ids, successors)),
        )


def _topological_order(predecessors: tuple[tuple[int, ...], ...], successors: tuple[tuple[int, ...], ...]) -> list[int]:
    remaining = [len(p) for p in predecessors]
    frontier = [i for i, count in enumerate(remaining) if count == 0]
    order: list[int] = []
    while frontier:
        node = frontier.pop(0)
        order.append(node)
        for succ in successors[node]:
            remaining[succ] -= 1
            if remaining[succ] == 0:
                frontier.append(succ)
    return order


def _reachable(start: int, successors: tuple[tuple[int, ...], ...]) -> set[int]:
    seen: set[int] = set()
    stack = list(successors[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(successors[node])
    return seen


def _max_antichain(ids: tuple[str, ...], successors: tuple[tuple[int, ...], ...]) -> int:
    """Width of the partial order (Dilworth): n minus a maximum matching of the
    comparability bipartite graph. Runs once per task; n is small."""
    n = len(ids)
    reach = [_reachable(i, successors) for i in range(n)]
    match_right = [-1] * n

    def augment(left: int, visited: list[bool]) -> bool:
        for right in reach[left]:
            if not visited[right]:
                visited[right] = True
                if match_right[right] == -1 or augment(match_right[right], visited):
                    match_right[right] = left
                    return True
        return False

    matching = sum(1 for left in range(n) if augment(left, [False] * n))
    return n - matching


# ------------------------------------------------------------ on observation views


def view_successors(views: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """An observation's DAG: each subtask view's id, to the ids of the views that depend on it (in view order)."""
    listed = list(views)
    successors: dict[str, list[str]] = {view["id"]: [] for view in listed}
    for view in listed:
        for dep in view["depends_on"]:
            successors[dep].append(view["id"])
    return successors


def chain_tails(duration: Mapping[str, int], successors: Mapping[str, list[str]]) -> Callable[[str], int]:
    """The longest chain of ``duration`` from a subtask to the end, itself included: worked out for a
    subtask (and the chain after it) when first asked, then kept."""
    tails: dict[str, int] = {}

    def tail(node: str) -> int:
        if node not in tails:
            tails[node] = duration[node] + max((tail(n) for n in successors[node]), default=0)
        return tails[node]

    return tail
