"""Generated scenarios: seeded workflows of the scenario kind at difficulty levels.

``generated/easy|medium|hard`` with a seed is a task like the four
hand-written scenarios: typed subtasks, named agents with capabilities,
speeds, costs and reliabilities, permanent-failure traps, a dropout,
deadlines and a budget, in the ``tick`` time model, graded by the scenario
graders and rewarded by the scenario reward table.

Construction, for a level and a seed:

1. Subtask types and agent names are drawn from fixed vocabularies. Every
   type gets a primary agent (round robin over the shuffled agents, so every
   agent has work), and every other (agent, type) pair is added with the
   level's extra-capability probability. Speed is 1 or 2 ticks per unit of
   work; a fast agent costs more per tick (1.5-4.0 against 0.5-2.0);
   reliability is uniform in the level's range.
2. Public cover: where a dropout is to come, types accepted by a single agent
   get a second one; then one more capable (agent, type) pair per trap.
3. ``n`` subtasks on a random DAG over a topological order (edge probability
   of the level), each of a random type, work 1-2, priority 1-3, named
   ``<type>_<k>`` with ``k`` a random permutation of ``1..n``.
4. The reference schedule, one action per tick, on the public facts (every
   capable agent, no trap, no dropout): at every tick the ready subtasks
   (longest chain of fastest durations ahead first, then by name) go to the
   idle capable agent that finishes first (then the cheapest, then by name),
   up to the capacity; every attempt succeeding. It ends with ``synthesize``
   one tick after the last completion.
5. Hidden: traps, capable pairs that can never complete, each where enough
   other agents stay able to complete the type that the dropout still leaves
   one; and the dropout (hard): one agent goes offline for good at a tick in
   ``[2, critical path + 1]``.
6. The setback allowance, from the public counts of traps and dropouts:
   each may throw away one attempt, so ``L = (traps + dropouts) x`` the
   longest fastest duration in time and ``(traps + dropouts) x`` the dearest
   reference attempt in cost.
7. Deadlines on ``deadline_count`` subtasks (the highest priority first):
   ``D_i = F_i + L + floor((1 - tightness) x makespan x u_i)``, ``u_i`` uniform
   in [0, 1), so the reference schedule meets every deadline when no trap is
   on its path and no dropout cuts it short, with ``L`` to spare for them.
8. Budget: the reference cost plus its allowance, times the level's budget
   factor (one decimal, rounded up). Time limit:
   ``ref_end + L + ceil(time_slack x ref_end)`` where ``ref_end`` is the
   reference schedule's synthesis tick.

Everything a policy sees (capabilities, deadlines, budget, time limit,
description, parameters) comes from the public draws; the hidden facts (5)
come from a generator of their own, keyed by the secret as well as the seed
when an outcome secret is given, so the task looks the same whatever they are.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields
from typing import Any

from ..core.model import AgentSpec, EventKind, ScheduledEvent, SubtaskSpec, TaskSpec, TimeModel
from ..core.outcomes import sealed_seed
from .arena import EVALUATION_SEEDS, TRAINING_SEEDS  # one seed convention for both families

GENERATED_PREFIX = "generated"

TYPE_VOCABULARY = (
    "design",
    "implement",
    "test",
    "review",
    "deploy",
    "analyze",
    "document",
    "integrate",
    "audit",
    "notify",
    "migrate",
    "benchmark",
)
AGENT_VOCABULARY = (
    "planner",
    "builder",
    "tester",
    "reviewer",
    "operator",
    "analyst",
    "writer",
    "integrator",
    "auditor",
    "courier",
)


@dataclass(frozen=True, slots=True)
class GeneratedLevel:
    name: str
    subtask_range: tuple[int, int]
    type_count: int
    agent_count: int
    edge_probability: float
    extra_capability_probability: float
    reliability_range: tuple[float, float]
    traps: int
    dropouts: int
    deadline_count: int
    deadline_tightness: float
    capacity: int
    budget_factor: float | None  # None: no budget
    time_slack: float
    grade_weights: dict[str, float]

    def table(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


LEVELS: dict[str, GeneratedLevel] = {
    "easy": GeneratedLevel(
        name="easy",
        subtask_range=(6, 8),
        type_count=4,
        agent_count=4,
        edge_probability=0.3,
        extra_capability_probability=0.25,
        reliability_range=(1.0, 1.0),
        traps=0,
        dropouts=0,
        deadline_count=0,
        deadline_tightness=0.0,
        capacity=3,
        budget_factor=None,
        time_slack=0.6,
        grade_weights={
            "completion": 0.35,
            "parallelism": 0.15,
            "time_efficiency": 0.25,
            "cost_efficiency": 0.15,
            "valid_actions": 0.10,
        },
    ),
    "medium": GeneratedLevel(
        name="medium",
        subtask_range=(8, 11),
        type_count=5,
        agent_count=5,
        edge_probability=0.3,
        extra_capability_probability=0.25,
        reliability_range=(0.85, 1.0),
        traps=1,
        dropouts=0,
        deadline_count=1,
        deadline_tightness=0.5,
        capacity=3,
        budget_factor=1.6,
        time_slack=0.5,
        grade_weights={
            "completion": 0.25,
            "deadlines": 0.15,
            "recovery": 0.10,
            "recovery_speed": 0.05,
            "error_classification": 0.05,
            "parallelism": 0.10,
            "cost_efficiency": 0.10,
            "budget": 0.05,
            "time_efficiency": 0.15,
        },
    ),
    "hard": GeneratedLevel(
        name="hard",
        subtask_range=(10, 14),
        type_count=6,
        agent_count=6,
        edge_probability=0.3,
        extra_capability_probability=0.25,
        reliability_range=(0.75, 0.95),
        traps=2,
        dropouts=1,
        deadline_count=2,
        deadline_tightness=0.7,
        capacity=3,
        budget_factor=1.4,
        time_slack=0.4,
        grade_weights={
            "completion": 0.20,
            "deadlines": 0.20,
            "recovery": 0.10,
            "recovery_speed": 0.05,
            "error_classification": 0.10,
            "parallelism": 0.05,
            "cost_efficiency": 0.10,
            "budget": 0.05,
            "time_efficiency": 0.15,
        },
    ),
}


@dataclass(slots=True)
class _Agent:
    name: str
    capabilities: set[str]
    speed: int
    cost: float
    reliability: float
    traps: set[str]
    offline_at: int | None  # the time (not the tick) from which it is offline


def generate_scenario(level: GeneratedLevel, seed: int, secret: bytes | None = None) -> TaskSpec:
    """One scenario-kind workflow; the same arguments give the same task in any process.

    With an outcome ``secret``, the hidden facts (which agent is trapped on
    which type, who drops out and when) are drawn from a generator keyed by
    the secret, so the seed alone does not tell them; the public draws stay
    on the seed's generator.
    """
    rng = random.Random(f"generated:{level.name}:{seed}")
    if secret is None:
        hidden = random.Random(f"generated-hidden:{level.name}:{seed}")
    else:
        hidden = random.Random(sealed_seed(secret, "generated", level.name, str(seed)))
    types = rng.sample(TYPE_VOCABULARY, level.type_count)
    names = rng.sample(AGENT_VOCABULARY, level.agent_count)
    agents = [_draw_agent(rng, name, level) for name in names]
    order = list(range(len(agents)))
    rng.shuffle(order)
    for k, kind in enumerate(types):
        agents[order[k % len(agents)]].capabilities.add(kind)
    for agent in agents:
        for kind in types:
            if kind not in agent.capabilities and rng.random() < level.extra_capability_probability:
                agent.capabilities.add(kind)
    n = rng.randint(*level.subtask_range)
    predecessors = [[i for i in range(j) if rng.random() < level.edge_probability] for j in range(n)]
    kinds = [rng.choice(types) for _ in range(n)]
    used = sorted(set(kinds), key=types.index)
    # Public: enough agents per type that a dropout and the traps leave one able, and one
    # more capable pair per trap; which pairs are traps and who drops out is hidden.
    keep = 1 + level.dropouts
    _cover(rng, agents, types, keep)
    _add_trap_candidates(rng, agents, used, level.traps)
    works = [rng.randint(1, 2) for _ in range(n)]
    priorities = [rng.randint(1, 3) for _ in range(n)]
    numbers = list(range(1, n + 1))
    rng.shuffle(numbers)
    width = len(str(n))
    ids = [f"{kinds[j]}_{numbers[j]:0{width}d}" for j in range(n)]

    fastest = [min(a.speed for a in agents if _able(a, kinds[j])) * works[j] for j in range(n)]
    tail = list(fastest)
    for j in range(n - 1, -1, -1):
        for i in predecessors[j]:
            tail[i] = max(tail[i], fastest[i] + tail[j])
    critical_path = max(tail)
    # The reference schedule on the public facts alone: before any trap or dropout is drawn.
    finish, assigned = _reference_schedule(predecessors, kinds, works, ids, tail, agents, level.capacity)

    # Hidden: the traps and the dropout.
    _choose_traps(hidden, agents, used, level.traps, keep)
    events: list[ScheduledEvent] = []
    for _ in range(level.dropouts):
        dropped = _add_dropout(hidden, agents, critical_path)
        if dropped is not None:
            # "Offline at tick T" happens at the start of tick T, time T - 1.
            events.append(ScheduledEvent(at=dropped.offline_at + 1, kind=EventKind.OFFLINE, agent=dropped.name))  # type: ignore[operator]
    makespan = max(finish)
    reference_end = makespan + 1  # the synthesis tick
    reference_cost = sum(agents[assigned[j]].cost * agents[assigned[j]].speed * works[j] for j in range(n))
    # What the hidden facts may cost, from their public counts: each trap or dropout
    # can throw away one attempt, at most the longest fastest duration and the dearest one.
    setbacks = level.traps + level.dropouts
    lost_time = setbacks * max(fastest)
    lost_cost = setbacks * max(agents[assigned[j]].cost * agents[assigned[j]].speed * works[j] for j in range(n))
    deadline_draws = [rng.random() for _ in range(n)]
    deadlines: list[int | None] = [None] * n
    by_priority = sorted(range(n), key=lambda j: (-priorities[j], ids[j]))
    for j in by_priority[: level.deadline_count]:
        deadlines[j] = finish[j] + lost_time + int((1.0 - level.deadline_tightness) * makespan * deadline_draws[j])
    budget = (
        None if level.budget_factor is None else math.ceil((reference_cost + lost_cost) * level.budget_factor * 10) / 10
    )

    subtasks = tuple(
        sorted(
            (
                SubtaskSpec(
                    id=ids[j],
                    type=kinds[j],
                    depends_on=tuple(sorted(ids[i] for i in predecessors[j])),
                    work=works[j],
                    priority=priorities[j],
                    deadline=deadlines[j],
                )
                for j in range(n)
            ),
            key=lambda spec: spec.id,
        )
    )
    return TaskSpec(
        task_id=f"{GENERATED_PREFIX}/{level.name}",
        title=f"Generated {level.name}: {n} subtasks, {len(agents)} agents",
        description=(
            f"A generated workflow of {n} typed subtasks and {len(agents)} specialist agents"
            + (", with traps" if level.traps else "")
            + (", a dropout" if level.dropouts else "")
            + (", deadlines" if level.deadline_count else "")
            + (f" and a budget of {budget}" if budget is not None else "")
            + ". Delegate each subtask to a capable agent, recover from failures, synthesize when done."
        ),
        family=GENERATED_PREFIX,
        difficulty=level.name,
        time_model=TimeModel.TICK,
        time_limit=reference_end + lost_time + math.ceil(level.time_slack * reference_end),
        capacity=level.capacity,
        budget=budget,
        subtasks=subtasks,
        agents=tuple(
            AgentSpec(
                name=a.name,
                capabilities=frozenset(a.capabilities),
                speed=a.speed,
                cost=a.cost,
                reliability=a.reliability,
                never_succeeds=frozenset(a.traps),
            )
            for a in agents
        ),
        events=tuple(events),
        grade_weights=dict(level.grade_weights),
        activity_gate=1.0,
        canonical_seed=seed,
        parameters={
            "level": level.name,
            "seed": seed,
            "reference_end": reference_end,
            "reference_cost": round(reference_cost, 4),
        },
    )


def _draw_agent(rng: random.Random, name: str, level: GeneratedLevel) -> _Agent:
    speed = rng.choice((1, 1, 2))
    low, high = (1.5, 4.0) if speed == 1 else (0.5, 2.0)
    lo_rel, hi_rel = level.reliability_range
    return _Agent(
        name=name,
        capabilities=set(),
        speed=speed,
        cost=round(rng.uniform(low, high), 1),
        reliability=round(rng.uniform(lo_rel, hi_rel), 2),
        traps=set(),
        offline_at=None,
    )


def _able(agent: _Agent, kind: str) -> bool:
    return kind in agent.capabilities and kind not in agent.traps


def _cover(rng: random.Random, agents: list[_Agent], types: list[str], keep: int) -> None:
    """Give each type more capable agents until ``keep`` of them accept it."""
    for kind in types:
        short = keep - sum(1 for a in agents if kind in a.capabilities)
        if short > 0:  # no draw otherwise: levels without a dropout keep the draws they had
            others = [a for a in agents if kind not in a.capabilities]
            rng.shuffle(others)
            for agent in others[:short]:
                agent.capabilities.add(kind)


def _add_trap_candidates(rng: random.Random, agents: list[_Agent], types: list[str], count: int) -> None:
    """One more capable (agent, type) pair per trap, so that each trap can be drawn
    while every type keeps its able agents."""
    candidates = [(a, kind) for a in range(len(agents)) for kind in types if kind not in agents[a].capabilities]
    rng.shuffle(candidates)
    for a, kind in candidates[:count]:
        agents[a].capabilities.add(kind)


def _choose_traps(rng: random.Random, agents: list[_Agent], types: list[str], count: int, keep: int) -> None:
    """Trap ``count`` capable pairs, each where ``keep`` other agents stay able to
    complete the type (the public capabilities leave room for every trap)."""
    pairs = [(a, kind) for a in range(len(agents)) for kind in types if kind in agents[a].capabilities]
    rng.shuffle(pairs)
    chosen = 0
    for a, kind in pairs:
        if chosen == count:
            break
        if sum(1 for agent in agents if _able(agent, kind)) > keep:
            agents[a].traps.add(kind)
            chosen += 1


def _add_dropout(rng: random.Random, agents: list[_Agent], critical_path: int) -> _Agent | None:
    """An agent goes offline for good; every type it can do stays covered (see _cover)."""
    present = [a for a in agents if a.offline_at is None]
    if len(present) < 2:
        return None
    dropped = rng.choice(present)
    dropped.offline_at = rng.randint(2, max(2, critical_path + 1)) - 1
    return dropped


def _reference_schedule(
    predecessors: list[list[int]],
    kinds: list[str],
    works: list[int],
    ids: list[str],
    tail: list[int],
    agents: list[_Agent],
    capacity: int,
) -> tuple[list[int], list[int]]:
    """Finish times and agents of the reference schedule (see the module docstring)."""
    n = len(kinds)
    finish = [0] * n
    assigned = [-1] * n
    started = [False] * n
    busy_until = [0] * len(agents)
    order = sorted(range(n), key=lambda j: (-tail[j], ids[j]))
    now = 0
    done = 0
    while done < n:
        done = sum(1 for j in range(n) if started[j] and finish[j] <= now)
        if done == n:
            break
        running = sum(1 for j in range(n) if started[j] and finish[j] > now)
        for j in order:
            if running >= capacity:
                break
            if started[j] or any(not started[i] or finish[i] > now for i in predecessors[j]):
                continue
            best: tuple[int, float, str] | None = None
            choice = -1
            for a, agent in enumerate(agents):
                if not _able(agent, kinds[j]) or busy_until[a] > now:
                    continue
                end = now + agent.speed * works[j]
                if agent.offline_at is not None and end > agent.offline_at:
                    continue
                key = (end, agent.cost * agent.speed * works[j], agent.name)
                if best is None or key < best:
                    best, choice = key, a
            if choice < 0:
                continue
            started[j] = True
            assigned[j] = choice
            finish[j] = best[0]  # type: ignore[index]
            busy_until[choice] = finish[j]
            running += 1
        now += 1
        if now > 10_000:
            raise AssertionError("the reference schedule does not end")
    return finish, assigned


class GeneratedFamily:
    """``generated/easy``, ``generated/medium``, ``generated/hard``: seeded scenario-kind tasks."""

    prefix = GENERATED_PREFIX

    def __init__(self, levels: dict[str, GeneratedLevel] | None = None) -> None:
        self.levels = dict(LEVELS if levels is None else levels)

    def variants(self) -> list[str]:
        return list(self.levels)

    def describe(self, variant: str) -> dict[str, Any]:
        return {
            "task_id": f"{self.prefix}/{variant}",
            "title": f"Generated scenario {variant}",
            "family": self.prefix,
            "difficulty": variant,
            "time_model": TimeModel.TICK.value,
            "description": (
                "Seeded scenario-kind workflows: typed subtasks, specialist agents, traps, dropouts, "
                "deadlines and budgets, graded like the hand-written scenarios. reset takes seed."
            ),
            "parameters": {
                **self.levels[variant].table(),
                "training_seeds": [TRAINING_SEEDS.start, TRAINING_SEEDS.stop - 1],
                "evaluation_seeds": [EVALUATION_SEEDS.start, EVALUATION_SEEDS.stop - 1],
            },
        }

    def build(self, variant: str, seed: int, worker_count: int | None, secret: bytes | None = None) -> TaskSpec:
        if worker_count is not None:
            raise ValueError(
                f"task '{self.prefix}/{variant}' has named agents; worker_count applies to arena tasks only"
            )
        return generate_scenario(self.levels[variant], seed, secret)
