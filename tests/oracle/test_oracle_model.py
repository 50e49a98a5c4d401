"""The oracle's model of the tick time model against the real episode.

The search runs on its own copy of the dynamics (for speed); these tests hold
it to the episode: the same actions give the same states and the same grade,
and the search's upper bound is never below a grade that a continuation earns.
"""

from __future__ import annotations

import random

import pytest

from tests.support.oracle_cases import brute_task, capped_task, rich_task
from tests.support.tasks import SCENARIOS, tiny_task
from workflow_orchestrator.oracle.tick import (
    TickProblem,
    action_to_wire,
    apply_action,
    leaf_score,
    legal_moves,
    upper_bound,
)
from workflow_orchestrator.server.core.compiled import CompiledTask
from workflow_orchestrator.server.core.episode import Episode
from workflow_orchestrator.server.core.families import compile_task, grade_episode
from workflow_orchestrator.server.tasks import default_registry


def _cases() -> list[tuple[CompiledTask, int]]:
    registry = default_registry()
    cases = [(registry.resolve(task_id).compiled, seed) for task_id in SCENARIOS for seed in range(3)]
    for spec in (rich_task(), capped_task(), tiny_task(), brute_task(1), brute_task(3)):
        compiled = compile_task(spec)
        cases.extend((compiled, seed) for seed in range(3))
    return cases


CASES = _cases()


def _walk(problem: TickProblem, rng: random.Random) -> tuple[list, list]:
    """A random valid trajectory of the model: nodes and the moves between them."""
    node = problem.root()
    nodes, moves = [node], []
    while not node.ended:
        options = legal_moves(problem, node)
        if ("wait",) not in options and node.done_count < problem.n:
            options.append(("wait",))  # also the waits the search leaves out
        move = rng.choice(options)
        moves.append(move)
        node = apply_action(problem, node, move)
        nodes.append(node)
    return nodes, moves


@pytest.mark.parametrize("case", range(len(CASES)))
def test_model_steps_like_the_episode(case: int) -> None:
    compiled, seed = CASES[case]
    problem = TickProblem(compiled, seed)
    rng = random.Random(case)
    for _ in range(12):
        nodes, moves = _walk(problem, rng)
        episode = Episode(compiled, seed=seed)
        for before, move, after in zip(nodes, moves, nodes[1:], strict=False):
            for action in action_to_wire(problem, before, move):
                episode.step(action)
                assert episode.last_errors == [], (move, episode.last_errors)
            assert episode.now == after.t
            assert list(episode.status) == after.status
            assert episode.budget_used == pytest.approx(after.cost)
            assert [a if a is not None else -1 for a in episode.completed_at] == after.completed_at
            assert episode.active_count == after.running
        assert episode.done and nodes[-1].ended
        assert grade_episode(episode)["score"] == leaf_score(problem, nodes[-1])


@pytest.mark.parametrize("case", range(len(CASES)))
def test_upper_bound_holds_along_random_trajectories(case: int) -> None:
    compiled, seed = CASES[case]
    problem = TickProblem(compiled, seed)
    rng = random.Random(1000 + case)
    for _ in range(20):
        nodes, _ = _walk(problem, rng)
        final = leaf_score(problem, nodes[-1])
        for node in nodes[:-1]:
            assert upper_bound(problem, node) >= final, (node.t, final)
