"""The arena family on top of the episode: its static tables, its observation
views, its per-step rewards, its success metrics and its grade.

The arena (``TaskSpec.family`` ``arena``) is a workflow of interchangeable workers
(``worker_1`` .. ``worker_n``, all accepting the one work type, cost 1 per
time unit) in the event time model. Its dynamics are the episode's; this
module only reads the episode. Temporary worker outages are ``capacity``
events: the usable slots (``effective_workers``) shrink and come back,
``total_workers`` stays constant, running work is not interrupted, and
``free_workers = max(0, effective_workers - running)``.

Definitions used below, for subtask ``i`` with duration ``d_i`` (its work;
workers have speed 1), priority ``p_i`` and deadline ``D_i``:

* ``CP``: the critical path, the longest chain of durations.
* ``LB = max(CP, ceil(sum d_i / total_workers))``: a lower bound on the
  makespan of any schedule (outages and failures only make it longer).
* criticality ``c_i = (head_i + tail_i - d_i) / CP``: the longest chain through
  ``i`` as a fraction of the critical path (1 on a critical path).
* earliest finish ``EF_i``: the completion time if nothing else held ``i``
  up from now (completed: when it completed; running: when it will finish;
  otherwise ``max(now, EF of its predecessors) + d_i``); slack
  ``s_i = D_i - EF_i`` (negative: the deadline can no longer be met).
* ``C = sum of p_i over completed / sum of p_i`` (priority-weighted completion),
  ``T = sum of p_i over subtasks completed by D_i / sum of p_i`` (on-time),
  ``M = LB / makespan`` when every subtask completed, else 0.
* ``benchmark_score = 0.40 C + 0.35 T + 0.25 M``, in [0, 1].
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from mypy_extensions import mypyc_attr

from ...vocabulary import ArenaGradeDimensionName
from .dag import DagIndex, chain_tails, view_successors
from .formulas import deadline_met, efficiency, ratio, unit
from .model import EventKind, TaskSpec
from .observation import render_workflow_text, workflow_observation
from .rewards import RewardModel, StepFacts
from .scenario import WorkflowFamily
from .states import COMPLETED, FAILED, IDLE, PENDING, READY, RUNNING, SUBTASK_STATUS

if TYPE_CHECKING:
    from .episode import Episode

ARENA_FAMILY: Final = "arena"

BENCHMARK_WEIGHTS: Final[Mapping[ArenaGradeDimensionName, float]] = {
    "completion": 0.40,
    "on_time": 0.35,
    "makespan": 0.25,
}
# A task with a budget (``arena/expert``) adds a cost part, ``K = T x min(1, budget / spent)``: on-time work
# within the budget.
BUDGETED_WEIGHTS: Final[Mapping[str, float]] = {"completion": 0.05, "on_time": 0.55, "makespan": 0.20, "cost": 0.20}
_PLAIN_WEIGHTS: Final[Mapping[str, float]] = {str(name): weight for name, weight in BENCHMARK_WEIGHTS.items()}

# Per-step reward weights. A completion earns ``completion * p_i / p_max``
# plus ``criticality * c_i``; a deadline met earns ``deadline_met * p_i /
# p_max`` and one missed costs ``deadline_missed * p_i / p_max``. The two
# terminal channels are paid once, when the episode ends.
ARENA_REWARD_TABLE: Final[Mapping[str, float]] = {
    "completion": 0.10,
    "utilization": 0.05,
    "deadline_met": 0.05,
    "deadline_missed": -0.10,
    "criticality": 0.05,
    "idle": -0.05,
    "terminal_makespan": 1.0,
    "unfinished": -1.0,
    "penalty.default": -0.10,
}

ARENA_CHANNELS: Final[tuple[str, ...]] = (
    "completion_reward",
    "utilization_reward",
    "deadline_reward",
    "criticality_reward",
    "idle_penalty",
    "invalid_action_penalty",
    "terminal_makespan_score",
    "unfinished_task_penalty",
)

# How many failure events the observation repeats (the newest ones).
RECENT_FAILURES: Final = 5

# Bound once: the compiled build looks a module's attribute up at every call.
_bisect_left: Final = bisect.bisect_left
_bisect_right: Final = bisect.bisect_right


@dataclass(slots=True)
class ArenaTables:
    """Static facts of one arena task, computed once per compiled task."""

    total_workers: int
    time_budget: int | None
    lower_bound: int
    durations: tuple[int, ...]
    priorities: tuple[int, ...]
    deadlines: tuple[int | None, ...]
    criticality: tuple[float, ...]
    total_priority: int
    max_priority: int
    # (time, usable workers from then on), sorted by time, starting at time 0.
    capacity_steps: tuple[tuple[int, int], ...]
    # Deadlines sorted, with their subtasks, for "which deadlines passed in (t0, t1]".
    sorted_deadlines: tuple[int, ...]
    sorted_deadline_subtasks: tuple[int, ...]
    dispatch_actions: tuple[dict[str, Any], ...]
    # The fields of each subtask view that never change, copied into every view, with the
    # changing ones last (None here: every view sets them, so a copy never grows).
    static_views: tuple[dict[str, Any], ...]
    # Tasks with a budget (arena/expert): the money budget, and its grade's weights.
    budget: float | None
    weights: Mapping[str, float]
    # The reliability every worker is shown with when the real ones are not declared, else None.
    reliability_prior: float | None
    # Capacity changes announced ahead of time ({"at", "workers"}), else None (hidden outages).
    capacity_schedule: tuple[dict[str, int], ...] | None
    # Per worker, its delegate (and retry) action for each subtask, when workers differ (else empty).
    delegate_actions: tuple[tuple[dict[str, str], ...], ...]
    retry_actions: tuple[tuple[dict[str, str], ...], ...]
    # The times of capacity_steps, and the usable worker-time before each (capacity_time reads them).
    capacity_times: tuple[int, ...] = ()
    capacity_before: tuple[int, ...] = ()
    # Whether every worker costs 1 per time unit (busy_worker_time then reads the budget used).
    unit_costs: bool = False

    @classmethod
    def build(cls, spec: TaskSpec, dag: DagIndex) -> ArenaTables:
        durations = dag.fastest_duration
        total_workers = spec.capacity
        critical = max(1, dag.critical_path_length)
        # Work over the workers' combined rate (each does 1 / speed units of work per time unit;
        # with workers of speed 1, the work spread over every worker).
        rate = sum(1.0 / max(1, agent.speed) for agent in spec.agents) if spec.agents else float(total_workers)
        if all(agent.speed == 1 for agent in spec.agents):
            rate = float(total_workers)
        lower_bound = max(dag.critical_path_length, math.ceil(sum(durations) / rate - 1e-9))
        changes: dict[int, int] = {}
        for event in spec.events:
            if event.kind is EventKind.CAPACITY and event.value is not None:
                changes[event.at] = event.value
        steps = [(0, total_workers)]
        for at in sorted(changes):
            if at == 0:
                steps[0] = (0, changes[at])
            else:
                steps.append((at, changes[at]))
        dated = sorted((s.deadline, i) for i, s in enumerate(spec.subtasks) if s.deadline is not None)
        priorities = tuple(s.priority for s in spec.subtasks)
        criticality = tuple(
            round((dag.head_length[i] + dag.tail_length[i] - durations[i]) / critical, 4) for i in range(len(durations))
        )
        prior = spec.parameters.get("reliability_prior")
        announced = bool(spec.parameters.get("announced_outages") is not None)
        named = len({(a.speed, a.cost) for a in spec.agents}) > 1
        before = [0]
        for (at, capacity), (until, _) in zip(steps, steps[1:], strict=False):
            before.append(before[-1] + capacity * (until - at))
        return cls(
            total_workers=total_workers,
            time_budget=spec.time_limit,
            lower_bound=lower_bound,
            durations=durations,
            priorities=priorities,
            deadlines=tuple(s.deadline for s in spec.subtasks),
            criticality=criticality,
            total_priority=sum(priorities),
            max_priority=max(priorities),
            capacity_steps=tuple(steps),
            sorted_deadlines=tuple(d for d, _ in dated),
            sorted_deadline_subtasks=tuple(i for _, i in dated),
            dispatch_actions=tuple({"action_type": "dispatch", "task_ids": [s.id]} for s in spec.subtasks),
            static_views=tuple(
                {
                    "id": s.id,
                    "duration": durations[i],
                    "priority": s.priority,
                    "deadline": s.deadline,
                    "criticality": criticality[i],
                    "downstream_count": dag.downstream_count[i],
                    "depends_on": list(s.depends_on),
                    "status": None,
                    "slack": None,
                    "attempts": None,
                    "failed_attempts": None,
                }
                for i, s in enumerate(spec.subtasks)
            ),
            budget=spec.budget,
            weights=_PLAIN_WEIGHTS if spec.budget is None else BUDGETED_WEIGHTS,
            reliability_prior=float(prior) if isinstance(prior, (int, float)) else None,
            capacity_schedule=tuple({"at": at, "workers": w} for at, w in steps[1:]) if announced else None,
            delegate_actions=tuple(
                tuple({"action_type": "delegate", "subtask_id": s.id, "agent_name": a.name} for s in spec.subtasks)
                for a in spec.agents
            )
            if named
            else (),
            retry_actions=tuple(
                tuple({"action_type": "retry", "subtask_id": s.id, "agent_name": a.name} for s in spec.subtasks)
                for a in spec.agents
            )
            if named
            else (),
            capacity_times=tuple(at for at, _ in steps),
            capacity_before=tuple(before),
            unit_costs=all(agent.cost == 1.0 for agent in spec.agents),
        )

    def capacity_at(self, t: int) -> int:
        """Usable workers at time ``t`` (events at ``t`` included)."""
        steps = self.capacity_steps
        value = steps[0][1]
        for at, capacity in steps:
            if at > t:
                break
            value = capacity
        return value

    def capacity_time(self, start: int, end: int) -> int:
        """Usable worker-time between ``start`` and ``end``."""
        if end <= start:
            return 0
        return self._capacity_until(end) - self._capacity_until(start)

    def _capacity_until(self, t: int) -> int:
        """Usable worker-time from time 0 to ``t`` (0 before time 0)."""
        if t <= 0:
            return 0
        k = _bisect_right(self.capacity_times, t) - 1
        return self.capacity_before[k] + self.capacity_steps[k][1] * (t - self.capacity_times[k])


def _tables(episode: Episode) -> ArenaTables:
    tables = episode.compiled.tables
    if not isinstance(tables, ArenaTables):
        raise ValueError(f"task {episode.task.task_id!r} is not an arena task")
    return tables


# --------------------------------------------------------------------- metrics


def busy_worker_time(episode: Episode) -> int:
    """Worker-time spent working so far, finished attempts and running ones.

    Workers of the interchangeable presets cost 1 per time unit, so the cost
    charged for finished attempts is exactly their worker-time; where costs
    differ, from the finished attempts' durations (an arena attempt runs to its end).
    """
    now = episode.now
    started_at = episode.started_at
    running = sum([now - started_at[s] for s in episode.running])  # the running subtasks
    if _tables(episode).unit_costs:
        return round(episode.budget_used) + running
    speed = {agent.name: agent.speed for agent in episode.agents}
    total = running
    for s, subtask in enumerate(episode.subtasks):
        by = episode.completed_by[s]
        if by >= 0:
            total += max(1, episode.agents[by].speed * subtask.work)
        for failure in episode.failures[s]:
            total += max(1, speed[failure["agent"]] * subtask.work)
    return total


def success_metrics(episode: Episode, tables: ArenaTables | None = None) -> dict[str, Any]:
    """Schedule quality so far; final once the episode is done."""
    tables = tables or _tables(episode)
    now = episode.now
    completed_at = episode.completed_at
    priorities = tables.priorities
    done_priority = 0
    on_time_priority = 0
    misses = 0
    done = episode.done
    for finished, deadline, priority in zip(completed_at, tables.deadlines, priorities, strict=True):
        if finished is not None:
            done_priority += priority
            if deadline is None or finished <= deadline:  # formulas.deadline_met
                on_time_priority += priority
            else:
                misses += 1
        elif deadline is not None and (deadline < now or done):
            misses += 1
    total = len(tables.durations)
    all_done = episode.completed_count == total
    makespan = now if all_done else None
    capacity_time = tables.capacity_time(0, now)
    completion = done_priority / tables.total_priority
    on_time = on_time_priority / tables.total_priority
    makespan_score = efficiency(tables.lower_bound, now) if all_done else 0.0
    weights = tables.weights
    score = weights["completion"] * completion + weights["on_time"] * on_time + weights["makespan"] * makespan_score
    extra: dict[str, Any] = {}
    if tables.budget is not None:
        spent = episode.budget_used
        cost_score = on_time * (1.0 if spent <= tables.budget else tables.budget / spent)
        score += weights["cost"] * cost_score
        extra = {"budget_used": round(spent, 4), "cost_score": round(cost_score, 4)}
    return {
        "makespan": makespan,
        "lower_bound": tables.lower_bound,
        # Work started before an outage goes on through it, so busy time can exceed usable time.
        "worker_utilization": round(ratio(busy_worker_time(episode), capacity_time, 0.0), 4),
        "deadline_miss_count": misses,
        "unfinished_task_count": total - episode.completed_count,
        "weighted_priority_completion": round(completion, 4),
        "on_time_priority_completion": round(on_time, 4),
        "makespan_score": round(makespan_score, 4),
        "benchmark_score": round(unit(score), 4),
        **extra,
    }


# ----------------------------------------------------------------- observation


def add_arena_views(episode: Episode, observation: dict[str, Any]) -> None:
    """Add the ``arena`` views to an observation and list the arena's actions.

    The arena's legal actions are its action space: ``dispatch`` of one
    dispatchable subtask (``task_ids``) while a worker is free, and ``wait``
    while the episode runs. Batches of up to ``free_workers`` ids,
    ``delegate``, ``retry`` and ``abort`` are accepted too.
    """
    tables = _tables(episode)
    dag = episode.dag
    now = episode.now
    status = episode.status
    subtasks = episode.subtasks
    durations = tables.durations
    ready: list[str] = []
    running: list[str] = []
    blocked: list[str] = []
    completed: list[str] = []
    earliest_finish = [0] * len(status)
    ids = dag.ids
    predecessors = dag.predecessors
    completed_at = episode.completed_at
    finish_at = episode.finish_at
    for s in dag.topological_order:
        st = status[s]
        if st == COMPLETED:
            earliest_finish[s] = completed_at[s] or 0
            completed.append(ids[s])
        elif st == RUNNING:
            earliest_finish[s] = finish_at[s]
            running.append(ids[s])
        else:
            start = now
            for p in predecessors[s]:
                if earliest_finish[p] > start:
                    start = earliest_finish[p]
            earliest_finish[s] = start + durations[s]
            (blocked if st == PENDING else ready).append(ids[s])
    failure_count = episode.failure_count
    views = []
    for static, st, deadline, finish, tried, failed in zip(
        tables.static_views, status, tables.deadlines, earliest_finish, episode.attempts, failure_count, strict=True
    ):
        view = static.copy()
        view["status"] = SUBTASK_STATUS[st]
        view["slack"] = None if deadline is None else deadline - finish
        view["attempts"] = tried
        view["failed_attempts"] = failed
        views.append(view)
    effective = tables.capacity_at(now)
    free = max(0, effective - episode.active_count)
    budget = tables.time_budget
    failures: list[tuple[int, str, int, str]] = []
    if any(failure_count):
        # Failure histories only grow: their total length tells whether the last sort still holds.
        total = sum(map(len, episode.failures))
        cached = episode.observed.get("recent_failures")
        if cached is None or cached[0] != total:
            recent = sorted(
                (f["at"], subtasks[s].id, n + 1, f["agent"])
                for s, history in enumerate(episode.failures)
                for n, f in enumerate(history)
            )[-RECENT_FAILURES:]
            cached = episode.observed["recent_failures"] = (total, recent)
        failures = cached[1]
    observation["arena"] = {
        "ready": ready,
        "running": running,
        "blocked": blocked,
        "completed": completed,
        "subtask_views": views,
        "total_workers": tables.total_workers,
        "effective_workers": effective,
        "degraded_workers": tables.total_workers - effective,
        "free_workers": free,
        "time_budget": budget,
        "time_left": None if budget is None else max(0, budget - now),
        "progress": round(episode.completed_count / len(status), 4),
        "recent_failure_events": [
            {"at": at, "subtask_id": sid, "failure": number, "worker": worker} for at, sid, number, worker in failures
        ],
        "success_metrics": success_metrics(episode, tables),
    }
    arena = observation["arena"]
    if tables.capacity_schedule is not None:
        arena["capacity_schedule"] = [dict(change) for change in tables.capacity_schedule]
    if tables.budget is not None:
        arena["budget"] = tables.budget
        arena["budget_left"] = round(tables.budget - episode.budget_used, 4)
    if tables.delegate_actions:
        arena["worker_record"] = worker_record(episode)
    if episode.done:
        observation["legal_actions"] = []
        return
    legal: list[dict[str, Any]] = []
    if free > 0 and tables.delegate_actions:
        # Workers differ: every (startable subtask, idle worker) pair is an action of its own.
        idle = [a for a, st in enumerate(episode.agent_status) if st == IDLE]
        for s, st in enumerate(status):
            if st == READY:
                legal.extend(tables.delegate_actions[a][s] for a in idle)
            elif st == FAILED:
                legal.extend(tables.retry_actions[a][s] for a in idle if (s, a) not in episode.known_permanent)
    elif free > 0:
        actions = tables.dispatch_actions
        legal.extend(actions[s] for s, st in enumerate(status) if st == READY or st == FAILED)
    # Always: a wait with nothing running lasts one time unit, so its legality tells nothing
    # of the outages still to come.
    legal.append(_WAIT)
    observation["legal_actions"] = legal


_WAIT: Final[dict[str, Any]] = {"action_type": "wait"}


def record_counts(episode: Episode) -> tuple[list[int], list[int]]:
    """Per agent (by index), its finished attempts and its failures so far."""
    finished = [0] * len(episode.agents)
    failed = [0] * len(episode.agents)
    index = {agent.name: a for a, agent in enumerate(episode.agents)}
    for s, by in enumerate(episode.completed_by):
        if by >= 0:
            finished[by] += 1
        for failure in episode.failures[s]:
            a = index[failure["agent"]]
            finished[a] += 1
            failed[a] += 1
    return finished, failed


def worker_record(episode: Episode) -> list[dict[str, Any]]:
    """Per worker, what the episode showed of it so far: finished attempts and failures
    (the evidence for its reliability when it is not declared)."""
    finished, failed = record_counts(episode)
    return [
        {"worker": agent.name, "finished_attempts": finished[a], "failures": failed[a]}
        for a, agent in enumerate(episode.agents)
    ]


def render_arena_lines(arena: Mapping[str, Any]) -> list[str]:
    """Text lines of the arena views for an LLM prompt."""
    lines = [
        f"Workers: {arena['free_workers']} free of {arena['effective_workers']} usable "
        f"({arena['total_workers']} total, {arena['degraded_workers']} degraded)."
    ]
    if arena["time_budget"] is not None:
        lines.append(f"Time budget {arena['time_budget']}, {arena['time_left']} left.")
    if "budget" in arena:
        lines.append(f"Budget {arena['budget']}, {arena['budget_left']} left.")
    if "capacity_schedule" in arena:
        lines.append(
            "Announced capacity: "
            + (", ".join(f"t={c['at']}: {c['workers']} usable" for c in arena["capacity_schedule"]) or "no outage")
            + "."
        )
    if "worker_record" in arena:
        lines.append(
            "Worker record: "
            + ", ".join(
                f"{w['worker']} {w['failures']} failed of {w['finished_attempts']}" for w in arena["worker_record"]
            )
            + "."
        )
    lines.append(
        "Ready: "
        + (", ".join(arena["ready"]) or "none")
        + ". Running: "
        + (", ".join(arena["running"]) or "none")
        + "."
    )
    for view in arena["subtask_views"]:
        if view["status"] in ("ready", "failed"):
            lines.append(
                f"- {view['id']}: duration {view['duration']}, priority {view['priority']}, "
                f"deadline {view['deadline']}, slack {view['slack']}, criticality {view['criticality']}, "
                f"downstream {view['downstream_count']}, failed attempts {view['failed_attempts']}"
            )
    return lines


# --------------------------------------------------------------------- rewards


# Open to subclasses in the compiled build too (native.py).
@mypyc_attr(allow_interpreted_subclasses=True)
class ArenaRewards:
    """The arena's per-step reward channels (see :data:`ARENA_REWARD_TABLE`).

    ``completion_reward``       ``completion * sum p_i / p_max`` over subtasks completed this step
    ``utilization_reward``      ``utilization * busy / usable worker-time`` over the time that passed
    ``deadline_reward``         ``deadline_met * p_i / p_max`` per completion by its deadline,
                                ``deadline_missed * p_i / p_max`` per deadline that passed this step
                                unmet (once per subtask)
    ``criticality_reward``      ``criticality * c_i`` per completion
    ``idle_penalty``            on a ``wait``: ``idle * min(free workers, dispatchable subtasks) /
                                total_workers``, both counted before the wait
    ``invalid_action_penalty``  ``penalty.<code>`` (default ``penalty.default``) per error
    ``terminal_makespan_score`` at the end: ``terminal_makespan * M``
    ``unfinished_task_penalty`` at the end: ``unfinished * sum p_i over unfinished / sum p_i``
    """

    channels = ARENA_CHANNELS

    reads_busy_time = True

    def __init__(self, tables: ArenaTables, dag: DagIndex, overrides: Mapping[str, float] | None = None) -> None:
        table = dict(ARENA_REWARD_TABLE)
        table.update(overrides or {})
        self.table = table
        self.tables = tables
        self.successors = dag.successors

    def penalty(self, code: str) -> float:
        return self.table.get("penalty." + code, self.table["penalty.default"])

    def step_reward(self, episode: Episode, facts: StepFacts) -> dict[str, float]:
        t, tables = self.table, self.tables
        p_max = tables.max_priority
        now = episode.now
        start = now - facts.elapsed
        completion = criticality = deadline = 0.0
        for s in facts.completed:
            weight = tables.priorities[s] / p_max
            completion += t["completion"] * weight
            criticality += t["criticality"] * tables.criticality[s]
            due = tables.deadlines[s]
            if due is not None and deadline_met(now, due):
                deadline += t["deadline_met"] * weight
        if facts.elapsed:
            # Deadlines that passed during this step, unmet: paid once, when time crosses them.
            lo = _bisect_left(tables.sorted_deadlines, start)
            hi = _bisect_left(tables.sorted_deadlines, now)
            for k in range(lo, hi):
                s = tables.sorted_deadline_subtasks[k]
                if not deadline_met(episode.completed_at[s], tables.sorted_deadlines[k]):
                    deadline += t["deadline_missed"] * tables.priorities[s] / p_max
        utilization = 0.0
        if facts.elapsed:
            usable = tables.capacity_time(start, now)
            if usable:
                utilization = t["utilization"] * ratio(facts.busy_time, usable)
        idle = 0.0
        if facts.waited and not facts.error_codes:
            idle = t["idle"] * self._idle_before_wait(episode, facts, start) / tables.total_workers
        terminal = unfinished = 0.0
        if facts.ended:
            total = len(tables.durations)
            if episode.completed_count == total:
                terminal = t["terminal_makespan"] * efficiency(tables.lower_bound, now)
            else:
                left = sum(p for p, at in zip(tables.priorities, episode.completed_at, strict=True) if at is None)
                unfinished = t["unfinished"] * left / tables.total_priority
        return {
            "completion_reward": completion,
            "utilization_reward": utilization,
            "deadline_reward": deadline,
            "criticality_reward": criticality,
            "idle_penalty": idle,
            "invalid_action_penalty": sum((self.penalty(code) for code in facts.error_codes), 0.0),
            "terminal_makespan_score": terminal,
            "unfinished_task_penalty": unfinished,
        }

    def _idle_before_wait(self, episode: Episode, facts: StepFacts, start: int) -> int:
        """Workers left idle by a wait although work was dispatchable.

        Nothing starts during a wait, so what was dispatchable before it is
        what is dispatchable now, less what became ready or failed on arrival.
        """
        free = self.tables.capacity_at(start) - facts.running_after_action
        if free <= 0:
            return 0
        status = episode.status
        dispatchable = sum(1 for st in status if st == READY or st == FAILED)
        arrived: set[int] = {s for s in facts.failed if status[s] == FAILED}
        for s in facts.completed:
            for succ in self.successors[s]:
                if status[succ] == READY:
                    arrived.add(succ)
        return max(0, min(free, dispatchable - len(arrived)))


# ----------------------------------------------------------------------- grade


def grade_arena(episode: Episode) -> dict[str, Any]:
    """The arena grade: ``benchmark_score`` with its three parts (four with a budget) and the metrics."""
    tables = _tables(episode)
    metrics = success_metrics(episode, tables)
    breakdown = {
        "completion": metrics["weighted_priority_completion"],
        "on_time": metrics["on_time_priority_completion"],
        "makespan": metrics["makespan_score"],
    }
    if tables.budget is not None:
        breakdown["cost"] = metrics["cost_score"]
    # Every error, including those of a step beyond the rows its log keeps.
    invalid = episode.invalid_count
    return {
        "task_id": episode.task.task_id,
        "seed": episode.seed,
        "score": metrics["benchmark_score"],
        "breakdown": breakdown,
        "weights": dict(tables.weights),
        "activity_gate": 1.0,
        "finished": episode.done,
        "counts": {
            "subtasks_completed": episode.completed_count,
            "subtasks_total": len(episode.subtasks),
            "failures": sum(episode.failure_count),
            "invalid_actions": invalid,
            "steps": episode.step_count,
            "time_used": episode.now,
            **metrics,
        },
    }


# ------------------------------------------------------------------- heuristic


def arena_dispatch(arena: Mapping[str, Any]) -> dict[str, Any]:
    """The built-in heuristic on an arena observation (its ``arena`` views): ready
    subtasks by longest remaining chain of durations, then priority, then least
    slack, those that fit in the time left first, as many as there are free
    workers, in one ``dispatch``."""
    free = arena["free_workers"]
    views = arena["subtask_views"]
    candidates = [v for v in views if v["status"] in ("ready", "failed")]
    if free <= 0 or not candidates:
        return dict(_WAIT)
    tail = chain_tails({v["id"]: v["duration"] for v in views}, view_successors(views))
    time_left = arena["time_left"]
    unbounded = 10**9

    def order(view: dict[str, Any]) -> tuple[bool, int, int, int]:
        # Work that cannot finish before the time budget runs out goes last.
        late = time_left is not None and view["duration"] > time_left
        slack = view["slack"] if view["slack"] is not None else unbounded
        return (late, -tail(view["id"]), -view["priority"], slack)

    candidates.sort(key=order)
    return {"action_type": "dispatch", "task_ids": [v["id"] for v in candidates[:free]]}


def arena_dispatch_on_episode(episode: Episode) -> dict[str, Any]:
    """:func:`arena_dispatch` read from the episode's state instead of its views:
    the same move, without building an observation (rollouts call it at every
    step). A startable subtask's predecessors are all complete, so its slack is
    its deadline less ``now`` plus its duration; its chain ahead is the DAG's
    static tail length."""
    tables = _tables(episode)
    now = episode.now
    free = tables.capacity_at(now) - episode.active_count
    if free <= 0:
        return dict(_WAIT)
    status = episode.status
    candidates = [s for s, st in enumerate(status) if st == READY or st == FAILED]
    if not candidates:
        return dict(_WAIT)
    durations = tables.durations
    deadlines = tables.deadlines
    priorities = tables.priorities
    tails = episode.dag.tail_length
    budget = tables.time_budget
    time_left = None if budget is None else max(0, budget - now)
    unbounded = 10**9

    def order(s: int) -> tuple[bool, int, int, int]:
        late = time_left is not None and durations[s] > time_left
        deadline = deadlines[s]
        slack = unbounded if deadline is None else deadline - now - durations[s]
        return (late, -tails[s], -priorities[s], slack)

    candidates.sort(key=order)
    ids = episode.dag.ids
    return {"action_type": "dispatch", "task_ids": [ids[s] for s in candidates[:free]]}


def _action_label(action: Mapping[str, Any]) -> str:
    if action["action_type"] == "dispatch":
        return "dispatch(" + ",".join(action["task_ids"]) + ")."
    return "wait()."


# ---------------------------------------------------------------------- family


# Open to subclasses in the compiled build too (native.py).
@mypyc_attr(allow_interpreted_subclasses=True)
class ArenaFamily(WorkflowFamily):
    """The arena's rules (``TaskSpec.family`` ``arena``): its tables, rewards,
    views, text, grade, success metrics, heuristic and oracle problem."""

    view_key: str | None = "arena"
    oracle_problem: str | None = "arena"

    def prepare(self, spec: TaskSpec, dag: DagIndex) -> tuple[ArenaTables, RewardModel]:
        tables = ArenaTables.build(spec, dag)
        return tables, ArenaRewards(tables, dag, spec.reward_table)

    def observe(self, episode: Episode) -> dict[str, Any]:
        # Workers are interchangeable: the hint's starts name subtasks only, as the arena's dispatch does.
        observation = workflow_observation(episode, named_agents=False)
        add_arena_views(episode, observation)
        tables = _tables(episode)
        if tables.delegate_actions and not episode.done:
            # Workers differ: the hint's action is the built-in heuristic's move (the episode gives an
            # unnamed start the cheapest idle worker), after the situations it lists.
            hint = observation["hint"]
            head = hint.rsplit(" Do: ", 1)[0]
            observation["hint"] = head + " Do: " + _action_label(arena_dispatch_on_episode(episode))
        prior = tables.reliability_prior
        if prior is not None:
            # Reliabilities not declared: every worker is shown with the prior.
            observation["agents"] = [{**view, "reliability": prior} for view in observation["agents"]]
        return observation

    def grade(self, episode: Episode) -> dict[str, Any]:
        return grade_arena(episode)

    def render(self, observation: Mapping[str, Any]) -> str:
        return render_workflow_text(observation, render_arena_lines(observation["arena"]))

    def heuristic(self, observation: Mapping[str, Any]) -> dict[str, Any] | None:
        return arena_dispatch(observation["arena"])

    def heuristic_on_episode(self, episode: Episode) -> dict[str, Any] | None:
        return arena_dispatch_on_episode(episode)

    def slack_on_episode(self, episode: Episode) -> dict[str, Any] | None:
        if not _tables(episode).delegate_actions:
            return None
        from .policies import arena_workers_slack_on_state  # policies reads the families, which read this module

        return arena_workers_slack_on_state(episode)

    def success_metrics(self, episode: Episode) -> dict[str, Any] | None:
        return success_metrics(episode)


ARENA: Final = ArenaFamily()
