"""A task prepared once for many episodes: its DAG index and the static parts
of every observation (so that a step builds only what changed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .dag import DagIndex
from .model import TaskSpec, public_rules
from .observation import initial_agent_view, initial_subtask_view, observation_template
from .outcomes import PairOutcomes
from .rewards import RewardModel
from .states import PENDING, READY

if TYPE_CHECKING:
    from .family import Family


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
    # Every observation key in order, with the task's static values (observation.py).
    observation_template: dict[str, Any]
    # Ready-made legal action objects, shared by every observation (read-only):
    # per subtask, (agent, action) for each capable agent.
    delegate_choices: tuple[tuple[tuple[int, dict[str, str]], ...], ...]
    retry_choices: tuple[tuple[tuple[int, dict[str, str]], ...], ...]
    # Per (subtask, able agent): what decides its attempts (outcomes.PairOutcomes).
    outcomes: dict[tuple[int, int], PairOutcomes]
    abort_actions: tuple[dict[str, str], ...]
    # Per subtask: its fastest tail minus its own fastest duration (the rest of
    # the chain after it), for the critical path of running work.
    running_tail: tuple[int, ...]
    # The state every episode starts from.
    initial_unmet: tuple[int, ...]
    initial_status: tuple[int, ...]
    initial_frontier: tuple[int, ...]  # the subtasks ready at the start
    # Views before anything happened, shared by new episodes and copied when a view changes.
    initial_subtask_views: tuple[dict[str, Any], ...]
    initial_agent_views: tuple[dict[str, Any], ...]
    # A subtask's view when it is ready: it has no history yet, so one view serves all.
    ready_subtask_views: tuple[dict[str, Any], ...]
    agent_index: dict[str, int]
    deadlines: tuple[tuple[int, int], ...]  # (deadline, subtask), earliest first
    patience_index: int
    reward_model: RewardModel
    # The end of the budget-pressure hint (the budget, formatted once).
    budget_hint_tail: str
    # Hindsight bounds per seed (grading.Hindsight), filled on demand.
    hindsight_by_seed: dict[int, Any] = field(default_factory=dict)
    # Best achievable grades per seed (grading.BestScore), precomputed by the oracle
    # and attached by the task registry; empty when none is known.
    best_scores: dict[int, Any] = field(default_factory=dict)

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

        def choices(action_type: str) -> tuple[tuple[tuple[int, dict[str, str]], ...], ...]:
            return tuple(
                tuple(
                    (a, {"action_type": action_type, "subtask_id": subtask.id, "agent_name": spec.agents[a].name})
                    for a in capable[s]
                )
                for s, subtask in enumerate(spec.subtasks)
            )

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
            observation_template=observation_template(spec, rules),
            delegate_choices=choices("delegate"),
            retry_choices=choices("retry"),
            outcomes=outcomes,
            abort_actions=tuple({"action_type": "abort", "subtask_id": s.id} for s in spec.subtasks),
            running_tail=tuple(tail - own for tail, own in zip(dag.tail_length, dag.fastest_duration, strict=True)),
            initial_unmet=unmet,
            initial_status=status,
            initial_frontier=tuple(s for s, st in enumerate(status) if st == READY),
            initial_subtask_views=tuple(
                initial_subtask_view(s, st) for s, st in zip(spec.subtasks, status, strict=True)
            ),
            initial_agent_views=tuple(initial_agent_view(agent) for agent in spec.agents),
            ready_subtask_views=tuple(initial_subtask_view(s, READY) for s in spec.subtasks),
            agent_index={agent.name: i for i, agent in enumerate(spec.agents)},
            deadlines=tuple(sorted((s.deadline, i) for i, s in enumerate(spec.subtasks) if s.deadline is not None)),
            patience_index=dag.index[spec.patience.after] if spec.patience is not None else -1,
            budget_hint_tail=("" if spec.budget is None else f" of {spec.budget:.1f} spent; prefer cheaper agents."),
            reward_model=reward_model,
        )
