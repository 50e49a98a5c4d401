"""A task prepared once for many episodes: its DAG index, its family's rules and
tables, the state every episode starts from, and the observation's tables (so
that a step builds only what changed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .dag import DagIndex
from .family import Family
from .model import TaskSpec, public_rules
from .observation import ObservationTables
from .outcomes import PairOutcomes
from .rewards import RewardModel
from .states import NO_ATTEMPT, PENDING, READY


@dataclass(slots=True)
class CompiledTask:
    spec: TaskSpec
    # The rules of the task's family (family.py), and its static tables of this task.
    family: Family
    tables: Any
    dag: DagIndex
    rules: dict[str, Any]
    # Per subtask: indices of the agents that accept its type, in declaration order.
    capable: tuple[tuple[int, ...], ...]
    # Per (subtask, able agent): what decides its attempts (outcomes.PairOutcomes).
    outcomes: dict[tuple[int, int], PairOutcomes]
    # The same, at s * (number of agents) + a (None where the agent cannot do the subtask):
    # what the step reads, without a tuple made and hashed at every start.
    outcome_table: tuple[PairOutcomes | None, ...]
    # The state every episode starts from.
    initial_unmet: tuple[int, ...]
    initial_status: tuple[int, ...]
    initial_frontier: tuple[int, ...]  # the subtasks ready at the start
    initial_attempts: tuple[int, ...]  # Episode._attempt: NO_ATTEMPT for every subtask
    # An episode's failure records before its first failure, shared by every episode of the
    # task and never changed (Episode._own_failure_records copies them at the first failure):
    # no failure per subtask, a failure count of 0 and no step of a failure (-1).
    no_failures: list[list[dict[str, Any]]]
    no_failure_counts: list[int]
    never_failed: list[int]
    # The agents' declared speeds, an episode's until a scheduled event changes one (then it
    # makes its own copy): shared, never changed.
    declared_speeds: list[int]
    agent_index: dict[str, int]
    deadlines: tuple[tuple[int, int], ...]  # (deadline, subtask), earliest first
    patience_index: int
    reward_model: RewardModel
    # What every observation of the task shares (observation.py).
    views: ObservationTables
    # The least cost of doing every subtask once on its cheapest capable agent at its
    # declared speed: what the grade measures cost against before the episode ends
    # (grading's hindsight bound would tell of the outcomes to come).
    public_min_cost: float = 0.0
    # Hindsight bounds per seed (grading.Hindsight), filled on demand.
    hindsight_by_seed: dict[int, Any] = field(default_factory=dict)
    # Best achievable grades per seed (grading.BestScore), precomputed by the oracle
    # and attached by the task registry; empty when none is known.
    best_scores: dict[int, Any] = field(default_factory=dict)
    # The planner's scores per seed (grading's planner reference), shipped and attached
    # by the task registry, or found later by ``references`` (see below).
    planner_scores: dict[int, float] = field(default_factory=dict)
    # What resolves a reference that is not attached: an object with
    # ``planner_status(compiled, seed) -> (score or None, status)``, set by the
    # task registry (tasks/references.py); None: nothing beyond what is attached.
    references: Any = None
    # Per agent, its name and cost; per subtask, its work (read at every start and finish).
    agent_names: tuple[str, ...] = ()
    agent_costs: tuple[float, ...] = ()
    work: tuple[int, ...] = ()

    @classmethod
    def build(cls, spec: TaskSpec, family: Family, dag: DagIndex | None = None) -> CompiledTask:
        """Prepare ``spec`` with the rules of ``family`` (families.compile_task finds
        the family a spec names)."""
        dag = dag if dag is not None else DagIndex.build(spec)
        capable = tuple(
            tuple(a for a, agent in enumerate(spec.agents) if subtask.type in agent.capabilities)
            for subtask in spec.subtasks
        )
        outcomes: dict[tuple[int, int], PairOutcomes] = {}
        for s, subtask in enumerate(spec.subtasks):
            for a in capable[s]:
                outcomes[(s, a)] = PairOutcomes(subtask, spec.agents[a])

        agents = spec.agents
        unmet = tuple(len(p) for p in dag.predecessors)
        status = tuple(READY if count == 0 else PENDING for count in unmet)
        rules = public_rules(spec)
        tables, reward_model = family.prepare(spec, dag)
        return cls(
            spec=spec,
            family=family,
            tables=tables,
            dag=dag,
            rules=rules,
            capable=capable,
            outcomes=outcomes,
            outcome_table=tuple(
                outcomes.get((s, a)) for s in range(len(spec.subtasks)) for a in range(len(spec.agents))
            ),
            initial_unmet=unmet,
            initial_status=status,
            initial_frontier=tuple(s for s, st in enumerate(status) if st == READY),
            initial_attempts=NO_ATTEMPT * len(spec.subtasks),
            no_failures=[[]] * len(spec.subtasks),
            no_failure_counts=[0] * len(spec.subtasks),
            never_failed=[-1] * len(spec.subtasks),
            declared_speeds=[agent.speed for agent in spec.agents],
            agent_index={agent.name: i for i, agent in enumerate(spec.agents)},
            deadlines=tuple(sorted((s.deadline, i) for i, s in enumerate(spec.subtasks) if s.deadline is not None)),
            patience_index=dag.index[spec.patience.after] if spec.patience is not None else -1,
            reward_model=reward_model,
            views=ObservationTables.build(spec, dag, capable, rules, status),
            public_min_cost=sum(
                min((agents[a].cost * max(1, agents[a].speed * subtask.work) for a in capable[s]), default=0.0)
                for s, subtask in enumerate(spec.subtasks)
            ),
            agent_names=tuple(agent.name for agent in agents),
            agent_costs=tuple(agent.cost for agent in agents),
            work=tuple(subtask.work for subtask in spec.subtasks),
        )
