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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..core.model import AgentSpec, EventKind, ScheduledEvent, TaskSpec, TimeModel
from ..core.outcomes import sealed_seed
from .arena import (  # one seed convention for both families, one way to build drawn subtasks
    EVALUATION_SEEDS,
    TRAINING_SEEDS,
    _head_and_tail,
    _subtask_specs,
)

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

    subtasks = _subtask_specs(ids, kinds, predecessors, works, priorities, deadlines)
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

    def usable(j: int, agent: _Agent, now: int, end: int) -> bool:
        return _able(agent, kinds[j]) and (agent.offline_at is None or end <= agent.offline_at)

    order = sorted(range(len(kinds)), key=lambda j: (-tail[j], ids[j]))
    return _schedule(predecessors, works, order, agents, capacity, usable)


def _schedule(
    predecessors: list[list[int]],
    works: list[int],
    order: list[int],
    agents: list[_Agent],
    capacity: int,
    usable: Callable[[int, _Agent, int, int], bool],
) -> tuple[list[int], list[int]]:
    """Finish times and agents of a reference schedule: tick by tick, the ready subtasks in
    ``order`` start (up to ``capacity`` running) each on the idle agent that would finish it
    first (then the cheaper, then by name) among those ``usable(j, agent, now, end)``."""
    n = len(works)
    finish = [0] * n
    assigned = [-1] * n
    started = [False] * n
    busy_until = [0] * len(agents)
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
                if busy_until[a] > now:
                    continue
                end = now + agent.speed * works[j]
                if not usable(j, agent, now, end):
                    continue
                key = (end, agent.cost * agent.speed * works[j], agent.name)
                if best is None or key < best:
                    best, choice = key, a
            if best is None:
                continue
            started[j] = True
            assigned[j] = choice
            finish[j] = best[0]
            busy_until[choice] = finish[j]
            running += 1
        now += 1
        if now > 100_000:
            raise AssertionError("the reference schedule does not end")
    return finish, assigned


# ------------------------------------------------------------------ expert


@dataclass(frozen=True, slots=True)
class ExpertLevel:
    """The generated family's expert level: see :func:`generate_expert_scenario`."""

    name: str
    subtask_range: tuple[int, int]
    type_count: int
    edge_probability: float
    work_range: tuple[int, int]
    priority_range: tuple[int, int]
    urgent_fraction: float  # subtasks off the critical path with a high priority and a tight deadline
    urgent_priority: int
    fast_agents: int  # speed 1, dear
    cheap_agents: int  # slow, cheap
    fast_cost_range: tuple[float, float]
    cheap_speed: int
    cheap_cost_range: tuple[float, float]
    extra_capability_probability: float
    reliability_range: tuple[float, float]  # hidden, per agent
    reliability_prior: float  # what the observation shows for every agent
    capacity: int
    outage_rate: float  # per agent and time unit, the chance an announced outage begins
    outage_duration_range: tuple[int, int]
    deadline_allowance: float  # urgent deadlines: the reference finish times this much
    time_allowance: float  # time limit: the reference end this much
    budget_factor: float
    grade_weights: dict[str, float]

    def table(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


EXPERT_LEVELS: dict[str, ExpertLevel] = {
    "expert": ExpertLevel(
        name="expert",
        subtask_range=(50, 120),
        type_count=6,
        edge_probability=0.035,
        work_range=(1, 3),
        priority_range=(1, 2),
        urgent_fraction=0.2,
        urgent_priority=3,
        fast_agents=3,
        cheap_agents=5,
        fast_cost_range=(3.0, 4.0),
        cheap_speed=3,
        cheap_cost_range=(0.5, 0.8),
        extra_capability_probability=0.4,
        reliability_range=(0.4, 1.0),
        reliability_prior=0.7,
        capacity=5,
        outage_rate=0.04,
        outage_duration_range=(4, 10),
        deadline_allowance=1.3,
        time_allowance=1.5,
        budget_factor=1.0,
        grade_weights={
            "completion": 0.15,
            "deadlines": 0.30,
            "time_efficiency": 0.20,
            "cost_efficiency": 0.15,
            "budget": 0.10,
            "recovery": 0.05,
            "valid_actions": 0.05,
        },
    ),
}

EXPERT_DESCRIPTION = (
    "Seeded scenario-kind workflows of 50-120 typed subtasks: fast-and-dear and slow-and-cheap agents per type, "
    "reliabilities not declared (a prior, and each agent's record of attempts and failures), agent outages "
    "announced ahead, urgent high-priority work off the critical path, a budget. reset takes seed."
)


def generate_expert_scenario(level: ExpertLevel, seed: int, secret: bytes | None = None) -> TaskSpec:
    """One expert workflow of the generated family (tick time model, named agents).

    1. ``n`` subtasks on a random DAG over a topological order (edge
       probability low enough for long workflows), each of a random type, work
       and priority uniform in the level's ranges, named ``<type>_<k>``.
    2. Agents of two kinds: fast (speed 1) and dear, slow (``cheap_speed``) and
       cheap. Every type has a fast agent and two cheap ones able to do it (round
       robin over each kind), and more with the extra-capability probability.
       Each agent's reliability is hidden, drawn from the seed (or under the
       secret when sealed); the observation shows the level's prior for every
       agent and a record of each agent's finished attempts and failures.
    3. Outages announced ahead of time: each agent goes offline for windows of
       ``outage_duration_range`` time units, starting with ``outage_rate`` per
       time unit, drawn from the seed alone (public, also when sealed); the
       observation lists them (``generated.agent_outages``). Work running when
       its agent goes offline fails.
    4. Urgent work: a share of the subtasks whose longest chain is at most half
       the critical path get the urgent priority and a deadline; no other
       subtask has one.
    5. The reference schedule, one action per tick: at every tick the ready
       subtasks (urgent ones first, then the longest chain of fastest
       durations, then by name) go to the idle able agent that finishes first
       without an outage in the way (then the cheaper), up to the capacity,
       every attempt succeeding; ``synthesize`` one tick after the last
       completion. Urgent deadlines: ``ceil(deadline_allowance x F_i / prior)``
       less the half of the prior's expected retries; time limit
       ``ceil(time_allowance x end / prior)``; budget ``budget_factor x
       reference cost / prior`` (one decimal).

    The cheapest agents on the critical path miss the time limit, the fast ones
    everywhere overspend, the longest chain first leaves the urgent work late,
    and the unreliable agents are known only from what they did.
    """
    rng = random.Random(f"generated:{level.name}:{seed}")
    if secret is None:
        hidden = random.Random(f"generated-hidden:{level.name}:{seed}")
    else:
        hidden = random.Random(sealed_seed(secret, "generated", level.name, str(seed)))
    draw = rng.random
    types = rng.sample(TYPE_VOCABULARY, level.type_count)
    names = rng.sample(AGENT_VOCABULARY, level.fast_agents + level.cheap_agents)
    fast = [
        _Agent(names[k], set(), 1, round(rng.uniform(*level.fast_cost_range), 1), 1.0, set(), None)
        for k in range(level.fast_agents)
    ]
    cheap = [
        _Agent(names[k], set(), level.cheap_speed, round(rng.uniform(*level.cheap_cost_range), 2), 1.0, set(), None)
        for k in range(level.fast_agents, len(names))
    ]
    for kind_agents, needed in ((fast, 1), (cheap, 2)):
        slots = list(range(len(kind_agents)))
        rng.shuffle(slots)
        for k, kind in enumerate(types):
            for r in range(needed):
                kind_agents[slots[(k * needed + r) % len(slots)]].capabilities.add(kind)
    agents = fast + cheap
    for agent in agents:
        for kind in types:
            if draw() < level.extra_capability_probability:
                agent.capabilities.add(kind)
    rng.shuffle(agents)  # the order of declaration tells nothing of the kind

    n = rng.randint(*level.subtask_range)
    predecessors = [[i for i in range(j) if draw() < level.edge_probability] for j in range(n)]
    kinds = [rng.choice(types) for _ in range(n)]
    works = [rng.randint(*level.work_range) for _ in range(n)]
    priorities = [rng.randint(*level.priority_range) for _ in range(n)]
    urgency_draws = [draw() for _ in range(n)]
    numbers = list(range(1, n + 1))
    rng.shuffle(numbers)
    width = len(str(n))
    ids = [f"{kinds[j]}_{numbers[j]:0{width}d}" for j in range(n)]

    fastest = [min(a.speed for a in agents if kinds[j] in a.capabilities) * works[j] for j in range(n)]
    head, tail = _head_and_tail(predecessors, fastest)
    critical_path = max(head)
    chain = [head[j] + tail[j] - fastest[j] for j in range(n)]
    off_path = sorted((j for j in range(n) if 2 * chain[j] <= critical_path), key=lambda j: (urgency_draws[j], ids[j]))
    urgent = set(off_path[: round(level.urgent_fraction * n)])
    for j in urgent:
        priorities[j] = level.urgent_priority

    # Announced outages, from the seed alone: per agent, windows [start, end) of time offline.
    horizon = 4 * critical_path + 4 * sum(fastest) // level.capacity
    outage_rng = random.Random(f"generated-announced-outages:{level.name}:{seed}")
    outages: dict[str, list[tuple[int, int]]] = {}
    events: list[ScheduledEvent] = []
    lo, hi = level.outage_duration_range
    for agent in sorted(agents, key=lambda a: a.name):
        t = 1
        while t < horizon:
            if outage_rng.random() < level.outage_rate:
                length = outage_rng.randint(lo, hi)
                outages.setdefault(agent.name, []).append((t, t + length))
                # "At tick T" is the start of tick T, time T - 1.
                events.append(ScheduledEvent(at=t + 1, kind=EventKind.OFFLINE, agent=agent.name))
                events.append(ScheduledEvent(at=t + length + 1, kind=EventKind.ONLINE, agent=agent.name))
                t += length + 1
            else:
                t += 1
    events.sort(key=lambda e: (e.at, e.agent or "", e.kind.value))

    rank = sorted(range(n), key=lambda j: (j not in urgent, -tail[j], ids[j]))
    finish, assigned = _expert_reference(predecessors, kinds, works, rank, agents, outages, level.capacity)
    reference_end = max(finish) + 1  # the synthesis tick
    reference_cost = sum(agents[assigned[j]].cost * agents[assigned[j]].speed * works[j] for j in range(n))
    prior = level.reliability_prior
    deadlines: list[int | None] = [
        math.ceil(level.deadline_allowance * finish[j] * (1 + (1 / prior - 1) / 2)) if j in urgent else None
        for j in range(n)
    ]
    time_limit = math.ceil(level.time_allowance * reference_end / prior)
    budget = math.ceil(level.budget_factor * reference_cost / prior * 10) / 10
    # Only the outages that begin before the time limit can happen.
    outages = {name: [w for w in windows if w[0] < time_limit] for name, windows in outages.items()}
    outages = {name: windows for name, windows in outages.items() if windows}
    events = [e for e in events if e.kind is not EventKind.OFFLINE or e.at - 1 < time_limit]
    events = [
        e
        for e in events
        if e.kind is not EventKind.ONLINE or any(w[1] == e.at - 1 for w in outages.get(e.agent or "", ()))
    ]

    # Hidden: each agent's reliability (in declaration order).
    lo_r, hi_r = level.reliability_range
    reliabilities = [round(lo_r + (hi_r - lo_r) * hidden.random(), 3) for _ in agents]

    subtasks = _subtask_specs(ids, kinds, predecessors, works, priorities, deadlines)
    return TaskSpec(
        task_id=f"{GENERATED_PREFIX}/{level.name}",
        title=f"Generated {level.name}: {n} subtasks, {len(agents)} agents",
        description=(
            f"A generated workflow of {n} typed subtasks and {len(agents)} agents: fast and dear, slow and cheap. "
            "Their reliabilities are not declared (the observation shows a prior; each is drawn uniformly from "
            f"{lo_r}-{hi_r}; generated.worker_record counts each agent's attempts and failures). Agent outages "
            "are announced ahead (generated.agent_outages); work running when its agent goes offline fails. "
            "Urgent high-priority subtasks, off the critical path, "
            f"have deadlines; the budget is {budget}. Delegate each subtask to a capable agent, recover from "
            "failures, synthesize when done."
        ),
        family=GENERATED_PREFIX,
        difficulty=level.name,
        time_model=TimeModel.TICK,
        time_limit=time_limit,
        capacity=level.capacity,
        budget=budget,
        subtasks=subtasks,
        agents=tuple(
            AgentSpec(
                name=a.name,
                capabilities=frozenset(a.capabilities),
                speed=a.speed,
                cost=a.cost,
                reliability=reliabilities[k],
            )
            for k, a in enumerate(agents)
        ),
        events=tuple(events),
        grade_weights=dict(level.grade_weights),
        activity_gate=1.0,
        canonical_seed=seed,
        parameters={
            "level": level.name,
            "seed": seed,
            "subtasks": n,
            "critical_path": critical_path,
            "reference_end": reference_end,
            "reference_cost": round(reference_cost, 4),
            "urgent_subtasks": len(urgent),
            "reliability_prior": prior,
            # Public: the distribution each agent's hidden reliability is drawn from (uniform).
            "reliability_range": [lo_r, hi_r],
            "agent_outages": {name: [list(w) for w in windows] for name, windows in sorted(outages.items())},
        },
    )


def _expert_reference(
    predecessors: list[list[int]],
    kinds: list[str],
    works: list[int],
    rank: list[int],
    agents: list[_Agent],
    outages: Mapping[str, list[tuple[int, int]]],
    capacity: int,
) -> tuple[list[int], list[int]]:
    """Finish times and agents of the expert reference schedule (see :func:`generate_expert_scenario`)."""

    def usable(j: int, agent: _Agent, now: int, end: int) -> bool:
        return kinds[j] in agent.capabilities and outage_free(outages.get(agent.name, ()), now, end)

    return _schedule(predecessors, works, rank, agents, capacity, usable)


def outage_free(windows: Sequence[tuple[int, int]] | Sequence[list[int]], start: int, end: int) -> bool:
    """Whether work from ``start`` to ``end`` meets none of the outage windows ``[from, until)``
    (one that ends as an outage begins counts as met: the episode may take the outage first)."""
    return all(end < w[0] or start >= w[1] for w in windows)


class GeneratedFamily:
    """``generated/easy``, ``generated/medium``, ``generated/hard``, ``generated/expert``: seeded
    scenario-kind tasks."""

    prefix = GENERATED_PREFIX

    def __init__(self, levels: Mapping[str, GeneratedLevel | ExpertLevel] | None = None) -> None:
        self.levels: dict[str, GeneratedLevel | ExpertLevel] = dict(
            {**LEVELS, **EXPERT_LEVELS} if levels is None else levels
        )

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
                EXPERT_DESCRIPTION
                if isinstance(self.levels[variant], ExpertLevel)
                else "Seeded scenario-kind workflows: typed subtasks, specialist agents, traps, dropouts, "
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
        level = self.levels[variant]
        if isinstance(level, ExpertLevel):
            return generate_expert_scenario(level, seed, secret)
        return generate_scenario(level, seed, secret)
