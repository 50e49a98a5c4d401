"""The arena generator: ``(preset, seed, worker_count)`` -> a workflow.

The generator only builds a :class:`TaskSpec`; the dynamics are the
episode's (event time model) and the arena's views, rewards and grade are in
``server/core/arena.py``.

Construction, for a preset and a seed:

1. ``n`` subtasks, uniform in the preset's range. Subtask ``j`` depends on
   each earlier subtask ``i < j`` with the preset's edge probability (a random
   DAG on the topological order ``0 .. n-1``: acyclic by construction). Work
   amounts (durations; workers have speed 1) and priorities are uniform in
   the preset's ranges.
2. ``LB = max(critical path, ceil(total work / workers))``, a lower bound on
   any schedule's makespan.
3. Outages (presets with an outage rate): at each integer time ``t`` in
   ``[1, horizon)`` with no outage under way, an outage starts with
   probability ``outage_rate``; it lasts a duration uniform in the preset's
   range and takes away ``1 .. max(1, workers // 2)`` workers (never all).
   The horizon is the time budget's floor (``ceil(multiplier x LB)``) or
   ``2 x LB``. The outages are hidden: nothing below depends on them, so the
   task a policy sees (deadlines, budget, step limit, parameters) is the same
   whichever outages were drawn.
4. Names: ``task_01 .. task_n`` assigned by a random permutation (the id
   order tells nothing about the DAG). The reference schedule: list
   scheduling in critical-path order (longest remaining chain first, equal
   chains by name) on all the workers, every attempt succeeding, no outage;
   ``F_i`` its finish times.
5. The outage allowance ``a = 1 / (1 - loss)``, ``loss`` the expected fraction
   of worker-time the preset's outages take away, from its public rate,
   duration range and workers lost (1 without outages).
6. Deadlines ``D_i = ceil(a x F_i) + floor((1 - tightness) x LB x u_i)`` with
   ``u_i`` uniform in [0, 1): tightness 0 leaves up to ``LB`` of slack,
   tightness 1 none.
7. Time budget ``max(ceil(multiplier x LB), ceil(a x reference makespan))``,
   or none.
8. Retry failures: each attempt fails with the preset's failure rate (seeded,
   order-free outcomes); after ``max_retries`` failures of one subtask its next
   attempt succeeds.
9. Step limit: ``4 x n x (max_retries + 1) + 4 x m + 16``, ``m`` the most
   outages step 3 could draw before the horizon (two capacity events each).

So the reference schedule meets every deadline and the time budget when no
attempt fails and no outage happens; with outages, the allowance covers the
preset's expected loss of worker-time, not every draw.

The DAG, durations, priorities and deadline draws depend on ``(preset,
seed)`` only; the reference schedule, deadlines and the budget also on
``worker_count``, so one seed names the same DAG for every worker count.
Sealed (an outcome secret given), the outages are drawn from a generator
keyed by the secret as well.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..core.model import AgentSpec, EventKind, ScheduledEvent, SubtaskSpec, TaskSpec, TimeModel
from ..core.outcomes import sealed_seed

ARENA_PREFIX = "arena"
WORK_TYPE = "work"
MIN_WORKERS = 1
MAX_WORKERS = 16

# Seeds for training and the held-out seeds for evaluation: a policy trained
# on TRAINING_SEEDS is evaluated on EVALUATION_SEEDS, which it never saw.
TRAINING_SEEDS = range(0, 2_000_000_000)
EVALUATION_SEEDS = range(2_000_000_000, 2_000_100_000)


@dataclass(frozen=True, slots=True)
class ArenaPreset:
    name: str
    subtask_range: tuple[int, int]
    edge_probability: float
    duration_range: tuple[int, int]
    priority_range: tuple[int, int]
    workers: int  # the default worker count
    deadline_tightness: float
    time_budget_multiplier: float | None  # None: no time budget
    penalise_unfinished: bool
    outage_rate: float  # chance per time unit that an outage starts
    outage_duration_range: tuple[int, int]
    failure_rate: float  # chance that an attempt fails
    max_retries: int  # failures of one subtask after which its next attempt succeeds

    def table(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PRESETS: dict[str, ArenaPreset] = {
    "easy": ArenaPreset(
        name="easy",
        subtask_range=(8, 12),
        edge_probability=0.14,
        duration_range=(1, 4),
        priority_range=(1, 4),
        workers=3,
        deadline_tightness=0.22,
        time_budget_multiplier=None,
        penalise_unfinished=False,
        outage_rate=0.0,
        outage_duration_range=(0, 0),
        failure_rate=0.0,
        max_retries=0,
    ),
    "medium": ArenaPreset(
        name="medium",
        subtask_range=(12, 18),
        edge_probability=0.22,
        duration_range=(1, 5),
        priority_range=(1, 5),
        workers=3,
        deadline_tightness=0.45,
        time_budget_multiplier=1.5,
        penalise_unfinished=True,
        outage_rate=0.0,
        outage_duration_range=(0, 0),
        failure_rate=0.0,
        max_retries=0,
    ),
    "hard": ArenaPreset(
        name="hard",
        subtask_range=(20, 28),
        edge_probability=0.25,
        duration_range=(1, 6),
        priority_range=(1, 5),
        workers=3,
        deadline_tightness=0.70,
        time_budget_multiplier=1.3,
        penalise_unfinished=True,
        outage_rate=0.08,
        outage_duration_range=(2, 6),
        failure_rate=0.15,
        max_retries=2,
    ),
}


def check_worker_count(worker_count: int) -> int:
    if isinstance(worker_count, bool) or not isinstance(worker_count, int):
        raise ValueError(f"worker_count must be an integer, got {worker_count!r}")
    if not MIN_WORKERS <= worker_count <= MAX_WORKERS:
        raise ValueError(f"worker_count must be between {MIN_WORKERS} and {MAX_WORKERS}, got {worker_count}")
    return worker_count


@dataclass(frozen=True, slots=True)
class ReferenceSchedule:
    finish: tuple[int, ...]
    makespan: int


def capacity_timeline(workers: int, events: tuple[ScheduledEvent, ...]) -> list[tuple[int, int]]:
    """(time, usable workers from then on), sorted, starting at time 0."""
    steps = [(0, workers)]
    for event in sorted(events, key=lambda e: e.at):
        if event.kind is EventKind.CAPACITY and event.value is not None:
            steps.append((event.at, event.value))
    return steps


def reference_schedule(
    predecessors: list[list[int]],
    durations: list[int],
    rank: list[int],
    timeline: list[tuple[int, int]],
) -> ReferenceSchedule:
    """List scheduling: at every event time, start the ready subtasks with the
    lowest ``rank`` on the usable workers; every attempt succeeds, running work
    is never interrupted (as in the episode)."""
    n = len(durations)
    successors: list[list[int]] = [[] for _ in range(n)]
    unmet = [len(p) for p in predecessors]
    for j, preds in enumerate(predecessors):
        for i in preds:
            successors[i].append(j)
    ready = [(rank[j], j) for j in range(n) if unmet[j] == 0]
    heapq.heapify(ready)
    running: list[tuple[int, int]] = []
    finish = [0] * n
    changes = [at for at, _ in timeline[1:]]
    cursor = 0
    capacity = timeline[0][1]
    now = 0
    done = 0
    while True:
        while running and running[0][0] <= now:
            _, j = heapq.heappop(running)
            done += 1
            for k in successors[j]:
                unmet[k] -= 1
                if unmet[k] == 0:
                    heapq.heappush(ready, (rank[k], k))
        if done == n:
            break
        while cursor < len(changes) and changes[cursor] <= now:
            capacity = timeline[cursor + 1][1]
            cursor += 1
        while ready and len(running) < capacity:
            _, j = heapq.heappop(ready)
            finish[j] = now + durations[j]
            heapq.heappush(running, (finish[j], j))
        upcoming = running[0][0] if running else None
        if cursor < len(changes) and (upcoming is None or changes[cursor] < upcoming):
            upcoming = changes[cursor]
        assert upcoming is not None, "the reference schedule stalled"
        now = upcoming
    return ReferenceSchedule(tuple(finish), max(finish, default=0))


def _draw_workflow(
    rng: random.Random, preset: ArenaPreset | ExpertPreset
) -> tuple[int, list[list[int]], list[int], list[int], list[float]]:
    """The workflow's random part, in one fixed draw order (every seed keeps its task):
    size, predecessors, durations (work), priorities and the deadline draws."""
    draw = rng.random
    n = rng.randint(*preset.subtask_range)
    p = preset.edge_probability
    predecessors = [[i for i in range(j) if draw() < p] for j in range(n)]
    lo, hi = preset.duration_range
    durations = [rng.randint(lo, hi) for _ in range(n)]
    lo, hi = preset.priority_range
    priorities = [rng.randint(lo, hi) for _ in range(n)]
    deadline_draws = [draw() for _ in range(n)]
    return n, predecessors, durations, priorities, deadline_draws


def _head_and_tail(predecessors: list[list[int]], durations: list[int]) -> tuple[list[int], list[int]]:
    """Per subtask, the longest chain ending with it (head) and starting with it (tail),
    its own duration included in both."""
    n = len(durations)
    head = [0] * n
    for j in range(n):
        head[j] = durations[j] + max((head[i] for i in predecessors[j]), default=0)
    tail = list(durations)
    for j in range(n - 1, -1, -1):
        for i in predecessors[j]:
            if durations[i] + tail[j] > tail[i]:
                tail[i] = durations[i] + tail[j]
    return head, tail


def _shuffled_ids(rng: random.Random, n: int) -> list[str]:
    """Subtask ids numbered in a shuffled order (so that an id tells nothing of its place)."""
    width = max(2, len(str(n)))
    numbers = list(range(1, n + 1))
    rng.shuffle(numbers)
    return [f"task_{numbers[j]:0{width}d}" for j in range(n)]


def _subtask_specs(
    ids: Sequence[str],
    kinds: Sequence[str],
    predecessors: Sequence[Sequence[int]],
    works: Sequence[int],
    priorities: Sequence[int],
    deadlines: Sequence[int | None],
) -> tuple[SubtaskSpec, ...]:
    """The subtasks of a drawn workflow (subtask ``j`` by its drawn facts), sorted by id
    (the arena's and the generated family's)."""
    specs = (
        SubtaskSpec(
            id=ids[j],
            type=kinds[j],
            depends_on=tuple(sorted(ids[i] for i in predecessors[j])),
            work=works[j],
            priority=priorities[j],
            deadline=deadlines[j],
        )
        for j in range(len(ids))
    )
    return tuple(sorted(specs, key=lambda spec: spec.id))


def generate_arena(
    preset: ArenaPreset, seed: int, worker_count: int | None = None, secret: bytes | None = None
) -> TaskSpec:
    """One arena workflow; the same arguments give the same workflow in any process.
    With an outcome ``secret``, the outages are drawn under it (sealed)."""
    workers = check_worker_count(preset.workers if worker_count is None else worker_count)
    # String seeds are hashed with SHA-512 by ``random``: stable across processes.
    rng = random.Random(f"arena:{preset.name}:{seed}")
    n, predecessors, durations, priorities, deadline_draws = _draw_workflow(rng, preset)
    head, tail = _head_and_tail(predecessors, durations)
    critical_path = max(head)
    lower_bound = max(critical_path, math.ceil(sum(durations) / workers))
    multiplier = preset.time_budget_multiplier
    horizon = math.ceil(multiplier * lower_bound) if multiplier is not None else 2 * lower_bound

    # Names are a random permutation of the topological order, so that the
    # order of the ids tells a policy nothing; subtasks are listed by name.
    ids = _shuffled_ids(rng, n)

    # Hidden: the outages. Everything a policy sees below comes from public quantities only.
    events = _outages(preset, seed, workers, horizon, secret)
    # Critical path first; equal chains by name, so the order follows from the spec alone.
    by_rank = sorted(range(n), key=lambda j: (-tail[j], ids[j]))
    rank = [0] * n
    for position, j in enumerate(by_rank):
        rank[j] = position
    schedule = reference_schedule(predecessors, durations, rank, [(0, workers)])
    stretch = 1.0 / (1.0 - expected_outage_loss(preset, workers))
    allowance = (1.0 - preset.deadline_tightness) * lower_bound
    deadlines = [math.ceil(schedule.finish[j] * stretch) + int(allowance * deadline_draws[j]) for j in range(n)]
    time_budget = (
        None if multiplier is None else max(math.ceil(multiplier * lower_bound), math.ceil(schedule.makespan * stretch))
    )
    most_outages = max_outages(preset, workers, horizon)

    subtasks = _subtask_specs(ids, [WORK_TYPE] * len(ids), predecessors, durations, priorities, deadlines)
    reliability = 1.0 - preset.failure_rate
    agents = tuple(
        AgentSpec(name=f"worker_{k + 1}", capabilities=frozenset({WORK_TYPE}), reliability=reliability)
        for k in range(workers)
    )
    retries = preset.max_retries if preset.failure_rate > 0 else 0
    return TaskSpec(
        task_id=f"{ARENA_PREFIX}/{preset.name}",
        title=f"Arena {preset.name}: {n} subtasks on {workers} workers",
        description=(
            f"A generated workflow of {n} subtasks on {workers} interchangeable workers. "
            "Dispatch ready subtasks (task_ids) to free workers and wait for events; "
            "meet deadlines, protect the critical path"
            + (", finish important work within the time budget" if time_budget is not None else "")
            + "."
        ),
        family=ARENA_PREFIX,
        difficulty=preset.name,
        time_model=TimeModel.EVENT,
        time_limit=time_budget,
        capacity=workers,
        budget=None,
        subtasks=subtasks,
        agents=agents,
        events=events,
        reward_table={} if preset.penalise_unfinished else {"unfinished": 0.0},
        canonical_seed=seed,
        step_limit=4 * n * (retries + 1) + 4 * most_outages + 16,
        retry_cap=retries if preset.failure_rate > 0 else None,
        parameters={
            "preset": preset.name,
            "seed": seed,
            "worker_count": workers,
            "subtasks": n,
            "critical_path": critical_path,
            "lower_bound": lower_bound,
            "reference_makespan": schedule.makespan,
            "time_budget": time_budget,
            "max_outages": most_outages,
            "outage_allowance": round(stretch, 4),
        },
    )


def max_outages(preset: ArenaPreset, workers: int, horizon: int) -> int:
    """The most outages :func:`_outages` can draw before ``horizon``: one may start at
    time 1, and each takes at least the shortest duration plus one time unit."""
    if preset.outage_rate <= 0 or workers < 2 or horizon <= 1:
        return 0
    return math.ceil((horizon - 1) / (preset.outage_duration_range[0] + 1))


def expected_outage_loss(preset: ArenaPreset, workers: int) -> float:
    """The expected fraction of worker-time the preset's outages take away, from its
    public rates alone: an outage starts after ``1 / outage_rate`` time units on
    average, lasts the mean duration and takes the mean number of workers."""
    if preset.outage_rate <= 0 or workers < 2:
        return 0.0
    lo, hi = preset.outage_duration_range
    duration = (lo + hi) / 2
    down = duration / (duration + 1.0 / preset.outage_rate)
    lost = (1 + max(1, workers // 2)) / 2
    return down * lost / workers


def _outages(
    preset: ArenaPreset, seed: int, workers: int, horizon: int, secret: bytes | None = None
) -> tuple[ScheduledEvent, ...]:
    if preset.outage_rate <= 0 or workers < 2:
        return ()
    if secret is None:
        rng = random.Random(f"arena-outages:{preset.name}:{seed}:{workers}")
    else:
        rng = random.Random(sealed_seed(secret, "arena-outages", preset.name, str(seed), str(workers)))
    lo, hi = preset.outage_duration_range
    events: list[ScheduledEvent] = []
    t = 1
    while t < horizon:
        if rng.random() < preset.outage_rate:
            length = rng.randint(lo, hi)
            lost = rng.randint(1, max(1, workers // 2))
            events.append(ScheduledEvent(at=t, kind=EventKind.CAPACITY, value=workers - lost))
            events.append(ScheduledEvent(at=t + length, kind=EventKind.CAPACITY, value=workers))
            t += length + 1
        else:
            t += 1
    return tuple(events)


class ArenaFamily:
    """``arena/easy``, ``arena/medium``, ``arena/hard``, ``arena/expert``: seeded arena workflows."""

    prefix = ARENA_PREFIX

    def __init__(self, presets: Mapping[str, ArenaPreset | ExpertPreset] | None = None) -> None:
        self.presets: dict[str, ArenaPreset | ExpertPreset] = dict(
            {**PRESETS, **EXPERT_PRESETS} if presets is None else presets
        )

    def variants(self) -> list[str]:
        return list(self.presets)

    def describe(self, variant: str) -> dict[str, Any]:
        preset = self.presets[variant]
        return {
            "task_id": f"{self.prefix}/{variant}",
            "title": f"Arena {variant}",
            "family": self.prefix,
            "difficulty": variant,
            "time_model": TimeModel.EVENT.value,
            "description": (
                "Seeded generated workflows on fast-and-dear and slow-and-cheap workers of undeclared "
                "reliability, with outages announced ahead: delegate ready subtasks to chosen workers, wait for "
                "events, meet deadlines, the time budget and the budget. reset takes seed and worker_count."
                if isinstance(preset, ExpertPreset)
                else "Seeded generated workflows on interchangeable workers: dispatch ready subtasks, "
                "wait for events, meet deadlines and the time budget. reset takes seed and worker_count."
            ),
            "parameters": {
                **preset.table(),
                "worker_count_range": [MIN_WORKERS, MAX_WORKERS],
                "training_seeds": [TRAINING_SEEDS.start, TRAINING_SEEDS.stop - 1],
                "evaluation_seeds": [EVALUATION_SEEDS.start, EVALUATION_SEEDS.stop - 1],
            },
        }

    def build(self, variant: str, seed: int, worker_count: int | None, secret: bytes | None = None) -> TaskSpec:
        preset = self.presets[variant]
        if isinstance(preset, ExpertPreset):
            return generate_expert(preset, seed, worker_count, secret)
        return generate_arena(preset, seed, worker_count, secret)


# ------------------------------------------------------------------ expert


@dataclass(frozen=True, slots=True)
class AgentClass:
    """A kind of worker: ``share`` of the worker count (at least one), its speed
    (time units per unit of work) and its cost per time unit."""

    name: str
    share: float
    speed: int
    cost: float


@dataclass(frozen=True, slots=True)
class ExpertPreset:
    """An arena preset where a good schedule needs more than the built-in heuristic
    knows: see :func:`generate_expert`."""

    name: str
    subtask_range: tuple[int, int]
    edge_probability: float
    duration_range: tuple[int, int]
    priority_range: tuple[int, int]
    urgent_fraction: float  # subtasks off the critical path with a high priority and a tight deadline
    urgent_priority_range: tuple[int, int]
    workers: int  # the default worker count
    agent_classes: tuple[AgentClass, ...]
    reliability_range: tuple[float, float]  # hidden, per worker
    reliability_prior: float  # what the observation shows for every worker
    deadline_tightness: float
    time_budget_multiplier: float
    budget_factor: float
    outage_rate: float
    outage_duration_range: tuple[int, int]
    max_retries: int

    def table(self) -> dict[str, Any]:
        return {
            f.name: ([vars_of(c) for c in self.agent_classes] if f.name == "agent_classes" else getattr(self, f.name))
            for f in fields(self)
        }


def vars_of(agent_class: AgentClass) -> dict[str, Any]:
    return {f.name: getattr(agent_class, f.name) for f in fields(agent_class)}


EXPERT_PRESETS: dict[str, ExpertPreset] = {
    "expert": ExpertPreset(
        name="expert",
        subtask_range=(50, 120),
        edge_probability=0.035,
        duration_range=(1, 6),
        priority_range=(1, 3),
        urgent_fraction=0.2,
        urgent_priority_range=(8, 12),
        workers=6,
        agent_classes=(
            AgentClass(name="fast", share=1 / 3, speed=1, cost=2.0),
            AgentClass(name="cheap", share=2 / 3, speed=3, cost=0.4),
        ),
        reliability_range=(0.5, 1.0),
        reliability_prior=0.75,
        deadline_tightness=0.9,
        time_budget_multiplier=1.2,
        budget_factor=1.0,
        outage_rate=0.06,
        outage_duration_range=(3, 8),
        max_retries=2,
    ),
}


def expert_roster(preset: ExpertPreset, workers: int) -> list[AgentClass]:
    """The class of each worker, ``worker_1`` first: every class gets its share
    (rounded, at least one while workers last), the last class the rest."""
    roster: list[AgentClass] = []
    classes = preset.agent_classes
    for k, agent_class in enumerate(classes):
        left = workers - len(roster)
        if k == len(classes) - 1:
            count = left
        else:
            count = min(left, max(1, round(agent_class.share * workers)))
        roster.extend([agent_class] * count)
    return roster


def expert_reference(
    predecessors: list[list[int]],
    work: list[int],
    rank: list[int],
    speeds: list[int],
    costs: list[float],
) -> tuple[list[int], int, float]:
    """List scheduling on heterogeneous workers: at every event time the ready
    subtasks with the lowest ``rank`` go, one by one, to the idle worker that
    finishes them first (then the cheaper, then the first); every attempt
    succeeding, no outage. Finish times, makespan and cost."""
    n = len(work)
    successors: list[list[int]] = [[] for _ in range(n)]
    unmet = [len(p) for p in predecessors]
    for j, preds in enumerate(predecessors):
        for i in preds:
            successors[i].append(j)
    ready = [(rank[j], j) for j in range(n) if unmet[j] == 0]
    heapq.heapify(ready)
    idle = sorted(range(len(speeds)), key=lambda a: (speeds[a], costs[a] * speeds[a], a))
    running: list[tuple[int, int, int]] = []
    finish = [0] * n
    cost = 0.0
    now = 0
    done = 0
    while done < n:
        while running and running[0][0] <= now:
            _, j, a = heapq.heappop(running)
            done += 1
            idle.append(a)
            for k in successors[j]:
                unmet[k] -= 1
                if unmet[k] == 0:
                    heapq.heappush(ready, (rank[k], k))
        idle.sort(key=lambda a: (speeds[a], costs[a] * speeds[a], a))
        while ready and idle:
            _, j = heapq.heappop(ready)
            a = idle.pop(0)
            duration = max(1, speeds[a] * work[j])
            finish[j] = now + duration
            cost += costs[a] * duration
            heapq.heappush(running, (finish[j], j, a))
        if running:
            now = running[0][0]
        else:
            assert done == n, "the expert reference stalled"
    return finish, max(finish, default=0), cost


def generate_expert(
    preset: ExpertPreset, seed: int, worker_count: int | None = None, secret: bytes | None = None
) -> TaskSpec:
    """One expert arena workflow.

    1. ``n`` subtasks on a random DAG as in :func:`generate_arena` (edge
       probability low enough for long workflows), work and priorities
       uniform in the preset's ranges.
    2. Urgent subtasks: a share of the subtasks with the shortest chains ahead
       (off the critical path) get a high priority and a tight deadline, so
       that the longest-chain-first order starts them too late.
    3. Workers of two classes: fast and dear, slow and cheap (speed and cost
       are public). Each worker's reliability is hidden (drawn like the
       outages of the other presets: from the seed, or under the secret when
       sealed); the observation shows the preset's prior for every worker, so
       a policy learns who fails from the failures it sees.
    4. Outages announced ahead of time: capacity events drawn from the seed
       alone (public, also when sealed); the arena view lists them.
    5. The reference: list scheduling with the urgent subtasks first and then
       the longest chain, each to the idle worker finishing it first, no
       failure, no outage. The allowance ``a = 1 / ((1 - loss) x prior)``
       covers the expected outage loss and the prior's failures. Deadlines
       ``ceil(a x F_i)`` for urgent subtasks, plus
       ``floor((1 - tightness) x LB x u_i)`` for the others; time budget
       ``max(ceil(multiplier x LB), ceil(a x reference makespan))``; money
       budget ``budget_factor x reference cost / prior`` (one decimal).

    The grade adds a cost part (``budget / spent``, scaled by completion): the
    fast workers on every subtask overspend, the cheap ones on the critical
    path and the urgent work miss deadlines and the time budget.
    """
    workers = check_worker_count(preset.workers if worker_count is None else worker_count)
    rng = random.Random(f"arena:{preset.name}:{seed}")
    n, predecessors, work, priorities, deadline_draws = _draw_workflow(rng, preset)
    urgency_draws = [rng.random() for _ in range(n)]
    head, tail = _head_and_tail(predecessors, work)
    critical_path = max(head)

    ids = _shuffled_ids(rng, n)

    # Urgent: among the subtasks whose chain through them is at most half the critical path.
    chain = [head[j] + tail[j] - work[j] for j in range(n)]
    off_path = sorted((j for j in range(n) if 2 * chain[j] <= critical_path), key=lambda j: (urgency_draws[j], ids[j]))
    urgent = set(off_path[: round(preset.urgent_fraction * n)])
    lo, hi = preset.urgent_priority_range
    for j in sorted(urgent):
        priorities[j] = lo + int(urgency_draws[j] * 1e6) % (hi - lo + 1)

    roster = expert_roster(preset, workers)
    order = list(range(workers))
    rng.shuffle(order)  # which worker name has which class tells nothing
    classes = [roster[order[k]] for k in range(workers)]
    speeds = [c.speed for c in classes]
    costs = [c.cost for c in classes]
    # The work over the workers' combined rate (as the arena's tables compute it).
    lower_bound = max(critical_path, math.ceil(sum(work) / sum(1.0 / s for s in speeds) - 1e-9))

    by_rank = sorted(range(n), key=lambda j: (j not in urgent, -tail[j], ids[j]))
    rank = [0] * n
    for position, j in enumerate(by_rank):
        rank[j] = position
    finish, makespan, reference_cost = expert_reference(predecessors, work, rank, speeds, costs)

    horizon = math.ceil(preset.time_budget_multiplier * lower_bound * 2)
    events = _expert_outages(preset, seed, workers, horizon)
    loss = _expert_outage_loss(preset, workers)
    # Deadlines allow for the expected outages and half the prior's expected retries; the time and money
    # budgets for all of them.
    outage_stretch = 1.0 / (1.0 - loss)
    stretch = outage_stretch / preset.reliability_prior
    deadline_stretch = outage_stretch * (1.0 + (1.0 / preset.reliability_prior - 1.0) / 2)
    allowance = (1.0 - preset.deadline_tightness) * lower_bound
    deadlines = [
        math.ceil(finish[j] * deadline_stretch) + (0 if j in urgent else int(allowance * deadline_draws[j]))
        for j in range(n)
    ]
    time_budget = max(math.ceil(preset.time_budget_multiplier * lower_bound), math.ceil(makespan * stretch))
    budget = math.ceil(preset.budget_factor * reference_cost / preset.reliability_prior * 10) / 10

    # Hidden: each worker's reliability.
    if secret is None:
        hidden = random.Random(f"arena-reliability:{preset.name}:{seed}:{workers}")
    else:
        hidden = random.Random(sealed_seed(secret, "arena-reliability", preset.name, str(seed), str(workers)))
    lo_r, hi_r = preset.reliability_range
    reliabilities = [round(lo_r + (hi_r - lo_r) * hidden.random(), 3) for _ in range(workers)]

    subtasks = _subtask_specs(ids, [WORK_TYPE] * len(ids), predecessors, work, priorities, deadlines)
    agents = tuple(
        AgentSpec(
            name=f"worker_{k + 1}",
            capabilities=frozenset({WORK_TYPE}),
            speed=speeds[k],
            cost=costs[k],
            reliability=reliabilities[k],
        )
        for k in range(workers)
    )
    most_outages = len(events) // 2
    return TaskSpec(
        task_id=f"{ARENA_PREFIX}/{preset.name}",
        title=f"Arena {preset.name}: {n} subtasks on {workers} workers",
        description=(
            f"A generated workflow of {n} subtasks on {workers} workers of two kinds: fast and dear, slow and "
            "cheap; their reliabilities are not declared (the observation shows a prior; each is drawn uniformly "
            f"from {preset.reliability_range[0]}-{preset.reliability_range[1]}), learn them from the "
            "failures you see. Capacity outages are announced in advance (arena.capacity_schedule). "
            "Delegate ready subtasks to chosen workers and wait for events; meet deadlines (the urgent, "
            "high-priority ones are off the critical path), finish within the time budget, stay within budget."
        ),
        family=ARENA_PREFIX,
        difficulty=preset.name,
        time_model=TimeModel.EVENT,
        time_limit=time_budget,
        capacity=workers,
        budget=budget,
        subtasks=subtasks,
        agents=agents,
        events=events,
        reward_table={},
        canonical_seed=seed,
        step_limit=4 * n * (preset.max_retries + 1) + 4 * most_outages + 16,
        retry_cap=preset.max_retries,
        parameters={
            "preset": preset.name,
            "seed": seed,
            "worker_count": workers,
            "subtasks": n,
            "critical_path": critical_path,
            "lower_bound": lower_bound,
            "reference_makespan": makespan,
            "reference_cost": round(reference_cost, 1),
            "time_budget": time_budget,
            "budget": budget,
            "urgent_subtasks": len(urgent),
            "announced_outages": most_outages,
            "reliability_prior": preset.reliability_prior,
            # Public: the distribution each worker's hidden reliability is drawn from (uniform).
            "reliability_range": list(preset.reliability_range),
            "deadline_allowance": round(deadline_stretch, 4),
            "allowance": round(stretch, 4),
        },
    )


def _expert_outage_loss(preset: ExpertPreset, workers: int) -> float:
    if preset.outage_rate <= 0 or workers < 2:
        return 0.0
    lo, hi = preset.outage_duration_range
    duration = (lo + hi) / 2
    down = duration / (duration + 1.0 / preset.outage_rate)
    lost = (1 + max(1, workers // 3)) / 2
    return down * lost / workers


def _expert_outages(preset: ExpertPreset, seed: int, workers: int, horizon: int) -> tuple[ScheduledEvent, ...]:
    """Public outages: drawn from the seed alone, never under a secret."""
    if preset.outage_rate <= 0 or workers < 2:
        return ()
    rng = random.Random(f"arena-announced-outages:{preset.name}:{seed}:{workers}")
    lo, hi = preset.outage_duration_range
    events: list[ScheduledEvent] = []
    t = 1
    while t < horizon:
        if rng.random() < preset.outage_rate:
            length = rng.randint(lo, hi)
            lost = rng.randint(1, max(1, workers // 3))
            events.append(ScheduledEvent(at=t, kind=EventKind.CAPACITY, value=workers - lost))
            events.append(ScheduledEvent(at=t + length, kind=EventKind.CAPACITY, value=workers))
            t += length + 1
        else:
            t += 1
    return tuple(events)
