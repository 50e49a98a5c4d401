"""The oracle against exhaustive enumeration on tasks small enough to try every plan."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.support.oracle_cases import abort_task, brute_task, capped_task, episode_maximum, idle_task, rich_task
from workflow_orchestrator.oracle import OPTIMAL, replay, solve
from workflow_orchestrator.oracle.tick import TickNode, TickProblem, apply_action, leaf_score
from workflow_orchestrator.server.core.episode import Episode
from workflow_orchestrator.server.core.families import build_observation, compile_task
from workflow_orchestrator.server.core.states import FAILED, READY, RUNNING
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.server.tasks.best_scores import shipped_entry


def _every_valid_move(problem: TickProblem, node: TickNode) -> list[tuple[Any, ...]]:
    """Every valid action, with none of the search's shortcuts."""
    if node.done_count == problem.n:
        return [("synthesize",), ("wait",)]
    busy = {node.run_agent[s] for s in range(problem.n) if node.status[s] == RUNNING}
    pairs = [
        (s, a)
        for s in range(problem.n)
        if node.status[s] in (READY, FAILED)
        for a in problem.capable[s]
        if a not in busy and problem.online_at[a][node.t]
    ]
    free = problem.capacity_at[node.t] - node.running
    moves: list[tuple[Any, ...]] = [("wait",)]
    for size in range(1, max(0, free) + 1):
        for chosen in itertools.combinations(pairs, size):
            if len({s for s, _ in chosen}) == size and len({a for _, a in chosen}) == size:
                moves.append(("start", chosen))
    moves.extend(("abort", s) for s in range(problem.n) if node.status[s] == RUNNING)
    return moves


def _full_state(node: TickNode) -> tuple[Any, ...]:
    """Every field of the node: equal states have equal futures and equal grades."""
    return tuple(
        tuple(value) if isinstance(value, list) else value for value in (getattr(node, f) for f in TickNode.__slots__)
    )


def _model_maximum(problem: TickProblem, node: TickNode, seen: dict[tuple[Any, ...], float]) -> float:
    """The best grade over every continuation of the model (memoised on the whole state)."""
    if node.ended:
        return leaf_score(problem, node)
    key = _full_state(node)
    if key not in seen:
        seen[key] = max(
            _model_maximum(problem, apply_action(problem, node, move), seen)
            for move in _every_valid_move(problem, node)
        )
    return seen[key]


@pytest.mark.parametrize("variant", range(6))
def test_oracle_is_optimal_against_every_plan(variant: int) -> None:
    seed = variant // 2
    compiled = compile_task(brute_task(variant))
    problem = TickProblem(compiled, seed)
    best = _model_maximum(problem, problem.root(), {})
    result = solve(compiled, seed, seconds=60)
    assert result.status == OPTIMAL
    assert result.best_score == best
    assert replay(compiled, seed, result.plan)[0]["score"] == best


@pytest.mark.parametrize("seed", range(3))
def test_oracle_is_optimal_on_the_special_tasks(seed: int) -> None:
    for spec in (rich_task(time_limit=6), capped_task(time_limit=6), abort_task(), idle_task()):
        compiled = compile_task(spec)
        problem = TickProblem(compiled, seed)
        best = _model_maximum(problem, problem.root(), {})
        result = solve(compiled, seed, seconds=60)
        assert result.status == OPTIMAL
        assert result.best_score == best, spec.task_id


def test_abort_and_restart_is_found_when_it_pays() -> None:
    compiled = compile_task(abort_task())
    result = solve(compiled, 0, seconds=60)
    assert result.status == OPTIMAL
    assert result.best_score == 1.0
    assert {"action_type": "abort", "subtask_id": "long"} in result.plan


def _episode_actions(episode: Episode) -> list[dict[str, Any]]:
    """Every valid action of the episode now (the listed legal actions, and a
    dispatch of every pair of listed starts that fits), and one invalid action,
    which stands for all of them: an invalid action changes nothing but time."""
    legal = build_observation(episode)["legal_actions"]
    starts = [a for a in legal if a["action_type"] in ("delegate", "retry")]
    actions = [dict(a) for a in legal]
    if episode.capacity - episode.active_count >= 2:
        for first, second in itertools.combinations(starts, 2):
            if first["subtask_id"] != second["subtask_id"] and first["agent_name"] != second["agent_name"]:
                pair = [{"subtask_id": a["subtask_id"], "agent_name": a["agent_name"]} for a in (first, second)]
                actions.append({"action_type": "dispatch", "assignments": pair})
    actions.append({"action_type": "delegate", "subtask_id": "nonexistent", "agent_name": "nobody"})
    return actions


@pytest.mark.parametrize(("variant", "seed"), [(0, 0), (1, 0), (2, 0), (3, 3), (4, 4), (5, 5)])
def test_oracle_is_optimal_against_every_episode(variant: int, seed: int) -> None:
    compiled = compile_task(brute_task(variant, time_limit=4))
    best = episode_maximum(compiled, seed, _episode_actions)
    result = solve(compiled, seed, seconds=60)
    assert result.status == OPTIMAL
    assert result.best_score == best


@pytest.mark.parametrize(("task_id", "seed"), [("generated/hard", 14), ("generated/medium", 2000000008)])
def test_a_search_stopped_early_reports_a_true_upper_bound(task_id: str, seed: int) -> None:
    """Tasks whose full search takes tens of thousands of nodes, stopped after a
    few hundred or thousand: the bound must still hold the proven optimum."""
    resolved = default_registry().resolve(task_id, seed=seed)
    entry = shipped_entry(resolved.spec, seed)
    assert entry is not None and entry["status"] == OPTIMAL
    for budget in (256, 4096):
        result = solve(resolved.compiled, seed, seconds=60, max_nodes=budget)
        assert result.status != OPTIMAL
        assert result.best_score <= entry["best_score"] <= result.upper_bound
        assert result.gap > 0
