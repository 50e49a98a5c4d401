"""The oracle: the best achievable grade of a task and seed, with a plan that earns it.

The oracle knows every seeded outcome in advance. It searches the actions of
an episode exactly (branch and bound, see :mod:`.search`), starting from the
best plan of the built-in policies, and reports either ``optimal`` (the search
finished) or ``best_found`` with a proven upper bound and the gap. Every plan
it reports has been replayed through a real :class:`Episode`; the replay's
grade is the reported score.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..server.core.compiled import CompiledTask
from ..server.core.episode import Episode
from ..server.core.families import FAMILIES, build_observation, grade_episode, new_episode
from ..server.core.model import TimeModel
from ..server.core.policies import make_policy
from .event import ArenaProblem, realise
from .search import BranchAndBound, SearchProblem
from .tick import TickProblem, TickSearch

OPTIMAL = "optimal"
BEST_FOUND = "best_found"

# Policies whose plans seed the search with a first incumbent (stubborn: the greedy
# these searches and their shipped results were made with).
SEED_POLICIES = ("heuristic", "stubborn")

# The search problems of the families that name one (``Family.oracle_problem``): its
# factory, and how a plan it finds becomes actions (None: it already is). A realised
# plan may score less than the search said (see event.py); any other plan must not.
PROBLEMS: dict[str, tuple[Callable[[CompiledTask, int], SearchProblem[Any]], Realise | None]] = {
    "arena": (ArenaProblem, realise),
}


Realise = Callable[[CompiledTask, int, Sequence[dict[str, Any]]], list[dict[str, Any]]]


class ModelMismatchError(AssertionError):
    """The search's model of an episode disagreed with a real replay (a bug to fix)."""


@dataclass(slots=True)
class OracleResult:
    task_id: str
    seed: int
    status: str  # OPTIMAL or BEST_FOUND
    best_score: float  # the replayed grade of ``plan``
    upper_bound: float  # no plan scores more
    plan: list[dict[str, Any]]
    seconds: float
    nodes: int
    breakdown: dict[str, float] = field(default_factory=dict)
    method: str = "branch_and_bound"

    @property
    def gap(self) -> float:
        return round(max(0.0, self.upper_bound - self.best_score), 6)

    def to_dict(self, with_plan: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_id": self.task_id,
            "seed": self.seed,
            "status": self.status,
            "best_score": self.best_score,
            "upper_bound": self.upper_bound,
            "gap": self.gap,
            "method": self.method,
            "seconds": round(self.seconds, 3),
            "nodes": self.nodes,
            "breakdown": self.breakdown,
        }
        if with_plan:
            out["plan"] = self.plan
        return out


def replay(compiled: CompiledTask, seed: int, plan: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], Episode]:
    """Play ``plan`` in a fresh episode; return its grade and the episode."""
    episode: Episode = new_episode(compiled, seed)
    for action in plan:
        if episode.done:
            break
        episode.step(action)
    return grade_episode(episode), episode


def policy_plan(compiled: CompiledTask, seed: int, policy_name: str) -> list[dict[str, Any]]:
    """The actions a built-in policy takes in one episode."""
    episode: Episode = new_episode(compiled, seed)
    policy = make_policy(policy_name, seed)
    plan: list[dict[str, Any]] = []
    observation = build_observation(episode)
    while not episode.done:
        action = dict(policy.act(observation))
        plan.append(action)
        episode.step(action)
        observation = build_observation(episode)
    return plan


def solve(
    compiled: CompiledTask,
    seed: int,
    seconds: float | None = 60.0,
    max_nodes: int | None = None,
) -> OracleResult:
    """Search for the best plan of ``compiled`` at ``seed`` within the budget."""
    spec = compiled.spec
    if compiled.family is FAMILIES["canvas"]:
        from .canvas import solve_canvas  # the canvas family's own exact oracle

        return solve_canvas(compiled, seed, seconds=10.0 if seconds is None else seconds)
    started = time.perf_counter()
    incumbent_score, incumbent_plan = -1.0, []
    for name in SEED_POLICIES:
        plan = policy_plan(compiled, seed, name)
        score = replay(compiled, seed, plan)[0]["score"]
        if score > incumbent_score:
            incumbent_score, incumbent_plan = score, plan

    problem: SearchProblem[Any]
    to_actions: Realise | None = None
    own = compiled.family.oracle_problem
    if own is not None:
        make_problem, to_actions = PROBLEMS[own]
        problem = make_problem(compiled, seed)
    elif spec.time_model is TimeModel.TICK:
        problem = TickSearch(TickProblem(compiled, seed))
    else:
        raise ValueError(f"no oracle for task {spec.task_id!r} ({spec.time_model.value} time model)")
    # Scores the search gave plans that could not be realised as they were found (see event.py).
    unrealised: list[float] = []

    def accept(plan: list[dict[str, Any]], model_score: float) -> tuple[float, list[dict[str, Any]]]:
        if to_actions is not None:
            plan = to_actions(compiled, seed, plan)
        grade = replay(compiled, seed, plan)[0]
        if abs(grade["score"] - model_score) > 1e-9:
            if to_actions is None or grade["score"] > model_score:
                raise ModelMismatchError(
                    f"{spec.task_id} seed {seed}: the search scored a plan {model_score}, "
                    f"its replay {grade['score']}: {plan}"
                )
            unrealised.append(model_score)
        return grade["score"], plan

    remaining = None if seconds is None else max(0.0, seconds - (time.perf_counter() - started))
    outcome = BranchAndBound[Any](
        problem, incumbent_score, incumbent_plan, seconds=remaining, max_nodes=max_nodes, accept=accept
    ).run()
    grade = replay(compiled, seed, outcome.plan)[0]
    upper = max([grade["score"], outcome.upper_bound, *unrealised])
    proven = outcome.proven and upper <= grade["score"]
    return OracleResult(
        task_id=spec.task_id,
        seed=seed,
        status=OPTIMAL if proven else BEST_FOUND,
        best_score=grade["score"],
        upper_bound=upper,
        plan=outcome.plan,
        seconds=time.perf_counter() - started,
        nodes=outcome.nodes,
        breakdown=grade["breakdown"],
    )
