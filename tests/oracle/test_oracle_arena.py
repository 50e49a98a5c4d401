"""The oracle on arena tasks (event time model, benchmark_score)."""

from __future__ import annotations

import dataclasses
import itertools
import random
from typing import Any

import pytest

from tests.support.oracle_cases import episode_maximum
from workflow_orchestrator.oracle import OPTIMAL, replay, solve
from workflow_orchestrator.oracle.event import ArenaNode, ArenaProblem, realise
from workflow_orchestrator.server.core.compiled import CompiledTask
from workflow_orchestrator.server.core.episode import Episode
from workflow_orchestrator.server.core.families import build_observation, compile_task
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.server.tasks.arena import PRESETS, generate_arena

# Arena workflows small enough to enumerate: outages and failures, or neither.
STORMY = dataclasses.replace(
    PRESETS["hard"],
    name="stormy",
    subtask_range=(5, 6),
    duration_range=(1, 3),
    workers=2,
    outage_rate=0.25,
    outage_duration_range=(1, 3),
    failure_rate=0.35,
    max_retries=1,
)
CALM = dataclasses.replace(PRESETS["medium"], name="calm", subtask_range=(5, 6), duration_range=(1, 3), workers=2)


def _compiled(preset: Any, seed: int) -> CompiledTask:
    return compile_task(generate_arena(preset, seed))


def _full_state(node: ArenaNode) -> tuple[Any, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in (getattr(node, f) for f in ArenaNode.__slots__))


def _model_maximum(problem: ArenaProblem, node: ArenaNode, seen: dict[tuple[Any, ...], float]) -> float:
    if node.ended:
        return problem.score(node)
    key = _full_state(node)
    if key not in seen:
        seen[key] = max(_model_maximum(problem, problem.apply(node, m), seen) for m in problem.moves(node))
    return seen[key]


@pytest.mark.parametrize("seed", range(8))
def test_realised_schedules_earn_their_model_score(seed: int) -> None:
    """Random schedules of the search's model, turned into actions on named
    workers (skipping doomed attempts), earn exactly the model's score."""
    compiled = _compiled(STORMY, seed)
    problem = ArenaProblem(compiled, seed)
    rng = random.Random(seed)
    for _ in range(10):
        node, schedule = problem.root(), []
        while not node.ended:
            move = rng.choice(problem.moves(node))
            schedule.extend(problem.wire(node, move))
            node = problem.apply(node, move)
        plan = realise(compiled, seed, schedule)
        grade, episode = replay(compiled, seed, plan)
        assert all(not step["errors"] for step in episode.trace)
        assert grade["score"] == problem.score(node)
        assert grade["counts"]["failures"] == 0


@pytest.mark.parametrize("seed", range(6))
def test_arena_oracle_matches_every_schedule(seed: int) -> None:
    compiled = _compiled(STORMY, seed)
    problem = ArenaProblem(compiled, seed)
    best = _model_maximum(problem, problem.root(), {})
    result = solve(compiled, seed, seconds=30)
    assert result.status == OPTIMAL
    assert result.best_score == best
    assert replay(compiled, seed, result.plan)[0]["score"] == best


def _arena_actions(episode: Episode) -> list[dict[str, Any]]:
    """Every dispatch (any set of ready subtasks that fits) and a wait when anything can happen."""
    arena = build_observation(episode)["arena"]
    options: list[dict[str, Any]] = [{"action_type": "wait"}] if episode.has_pending_events else []
    for size in range(1, arena["free_workers"] + 1):
        for ids in itertools.combinations(arena["ready"], size):
            options.append({"action_type": "dispatch", "task_ids": list(ids)})
    return options


@pytest.mark.parametrize("seed", range(3))
def test_arena_oracle_matches_every_episode_without_failures(seed: int) -> None:
    compiled = _compiled(CALM, seed)
    best = episode_maximum(compiled, seed, _arena_actions)
    result = solve(compiled, seed, seconds=30)
    assert result.status == OPTIMAL
    assert result.best_score == best


@pytest.mark.parametrize("preset", ["easy", "medium", "hard"])
def test_arena_presets_are_proven_quickly(preset: str) -> None:
    registry = default_registry()
    for seed in range(3):
        resolved = registry.resolve(f"arena/{preset}", seed=seed)
        result = solve(resolved.compiled, seed, seconds=10)
        assert result.status == OPTIMAL, (preset, seed)
        assert replay(resolved.compiled, seed, result.plan)[0]["score"] == result.best_score
