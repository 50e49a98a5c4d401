"""The two references: the no-foresight planner and the hindsight best, in grades,
shipped for the evaluation slice, and resolved on request off the caller's thread."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.tasks import registry_of, tiny_task
from workflow_orchestrator.oracle.catalogue import EXPERT_TASKS
from workflow_orchestrator.oracle.references import SHIPPED_SLICE_TASKS, slice_seeds
from workflow_orchestrator.server.core.families import build_observation, new_episode
from workflow_orchestrator.server.core.model import (
    AgentSpec,
    ConflictSpec,
    EventKind,
    PatienceSpec,
    ScheduledEvent,
    SubtaskSpec,
)
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.server.tasks.best_scores import load_entries
from workflow_orchestrator.server.tasks.planner import PlannerPolicy, plan_episode
from workflow_orchestrator.server.tasks.references import (
    KNOWN,
    PENDING,
    UNKNOWN,
    References,
    compute_planner_score,
    load_planner_entries,
)
from workflow_orchestrator.server.tasks.registry import SCENARIO_DIR, TaskRegistry, builtin_families


def _heuristic_score(task_id: str, seed: int) -> float:
    env = WorkflowEnv()
    observation = env.reset(task_id=task_id, seed=seed)
    policy = make_policy("heuristic", seed)
    while not env.done:
        observation = env.step(policy.act(observation))
    return float(env.grade()["score"])


def _public(observation: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in observation.items() if k not in ("episode_id", "metadata")}


@pytest.mark.parametrize("task_id", ["hard", "expert"])
def test_the_planner_does_not_see_the_outcome_draws(task_id: str) -> None:
    """Same seed, two outcome secrets: the planner's actions follow the observations
    alone. While the two episodes look the same its moves are the same, although
    their outcome draws differ (they part ways when an outcome differs)."""
    seed = 7
    plays = []
    for secret in ("one", "two"):
        env = WorkflowEnv(outcome_secret=secret)
        observation = env.reset(task_id=task_id, seed=seed)
        planner = PlannerPolicy(task_id, seed, samples=3)
        trajectory = []
        while not env.done:
            action = planner.act(observation)
            trajectory.append((_public(observation), action))
            observation = env.step(action)
        plays.append((trajectory, env.grade()["score"]))
    (one, score_one), (two, score_two) = plays
    assert one[0][0] == two[0][0] and one[0][1] == two[0][1]
    shared = 0
    for (seen_one, action_one), (seen_two, action_two) in zip(one, two, strict=False):
        if seen_one != seen_two:
            break
        assert action_one == action_two
        shared += 1
    # The secrets do change what happens: the episodes part ways, or end differently.
    assert shared < min(len(one), len(two)) or score_one != score_two
    # And the planner reads nothing but what it is given: the same observation, the same move.
    assert PlannerPolicy(task_id, seed, samples=3).act(one[0][0]) == one[0][1]


def test_the_planner_is_never_above_the_hindsight_best() -> None:
    registry = default_registry()
    for seed in range(0, 4):
        best = registry.resolve("hard", seed).compiled.best_scores[seed]
        assert plan_episode("hard", seed, samples=4)["grade"]["score"] <= best.upper_bound
    # Every shipped planner score, against the shipped best of the same task definition.
    best_of = {(e["task_id"], e["seed"], e["fingerprint"]): e["upper_bound"] for e in load_entries()}
    compared = 0
    for entry in load_planner_entries():
        bound = best_of.get((entry["task_id"], entry["seed"], entry["fingerprint"]))
        if bound is not None:
            assert entry["planner_score"] <= bound + 1e-9, entry
            compared += 1
    assert compared >= 80


def test_the_planner_is_at_least_the_heuristic_on_a_small_slice() -> None:
    seeds = range(0, 6)
    planner = statistics.fmean(plan_episode("hard", seed, samples=4)["grade"]["score"] for seed in seeds)
    heuristic = statistics.fmean(_heuristic_score("hard", seed) for seed in seeds)
    assert planner >= heuristic - 0.01


@pytest.mark.parametrize(
    "task_id", [t for t in default_registry().task_ids() if not t.startswith("canvas/")] + ["conflicts"]
)
def test_the_heuristic_read_from_the_episode_state_is_the_heuristics_move(task_id: str) -> None:
    """The planner's rollouts ask the family for the heuristic's move without building
    an observation: it must be the move the heuristic makes on the observation, in
    every state (reached by the heuristic and by random play, with failures, outages
    and deadlines passing)."""
    registry = default_registry() if task_id != "conflicts" else _conflicts_registry()
    heuristic = make_policy("heuristic", 0)
    checked = 0
    for seed in range(3 if task_id != "conflicts" else 40):
        resolved = registry.resolve(task_id, seed)
        for player in (heuristic, make_policy("random", seed)):
            episode = new_episode(resolved.compiled, resolved.seed)
            while not episode.done:
                observation = build_observation(episode)
                assert resolved.compiled.family.heuristic_on_episode(episode) == heuristic.act(observation)
                checked += 1
                episode.step(player.act(observation))
    assert checked > 50


@pytest.mark.parametrize("task_id", ["arena/expert", "generated/expert"])
def test_the_slack_policy_read_from_the_episode_state_is_the_slack_policys_move(task_id: str) -> None:
    """On the presets whose reliabilities are hidden, the planner's rollouts continue with the
    slack policy read from the state: in every state reached by the slack policy, the heuristic
    and random play (failures, records, outages and deadlines passing), the same move as
    :class:`SlackPolicy` on the observation."""
    registry = default_registry()
    slack = make_policy("slack", 0)
    checked = 0
    for seed in (2000000000, 2000000001, 7):
        resolved = registry.resolve(task_id, seed)
        family = resolved.compiled.family
        for player in (slack, make_policy("heuristic", 0), make_policy("random", seed)):
            episode = new_episode(resolved.compiled, resolved.seed)
            while not episode.done:
                observation = build_observation(episode)
                assert family.slack_on_episode(episode) == slack.act(observation)
                checked += 1
                episode.step(player.act(observation))
    assert checked > 500


@pytest.mark.parametrize("task_id", ["hard", "arena/hard", "generated/hard", "canvas/math"])
def test_the_slack_shortcut_exists_only_where_reliabilities_are_hidden(task_id: str) -> None:
    resolved = default_registry().resolve(task_id, 0)
    assert resolved.compiled.family.slack_on_episode(new_episode(resolved.compiled, 0)) is None


def _conflicts_registry() -> TaskRegistry:
    """A task whose conflicting tracks and speed events the shipped tasks exercise only in part:
    a third track, a speed change, a permanent trap."""
    spec = tiny_task(
        task_id="conflicts",
        subtasks=(
            SubtaskSpec(id="root", type="a"),
            SubtaskSpec(id="left", type="b", depends_on=("root",)),
            # Slack 2 and 3 when w completes root at 2, 3 and 4 at 1: both sides of the urgency line.
            SubtaskSpec(id="middle", type="b", depends_on=("root",), deadline=7),
            SubtaskSpec(id="right", type="b", depends_on=("root",), deadline=8),
            SubtaskSpec(id="join", type="a", depends_on=("left", "middle", "right"), work=2),
        ),
        agents=(
            AgentSpec(name="x", capabilities=frozenset({"a", "b"}), speed=1, cost=3.0, reliability=0.7),
            AgentSpec(name="y", capabilities=frozenset({"b"}), speed=2, cost=1.0, never_succeeds=frozenset({"b"})),
            AgentSpec(name="z", capabilities=frozenset({"b"}), speed=1, cost=2.0, reliability=0.9),
            AgentSpec(name="w", capabilities=frozenset({"a", "b"}), speed=2, cost=0.5, reliability=1.0),
        ),
        conflicts=(ConflictSpec(at="join", tracks=("left", "middle", "right")),),
        events=(ScheduledEvent(at=5, kind=EventKind.SPEED, agent="x", value=3),),
        patience=PatienceSpec("join", 2),
        capacity=3,
        time_limit=30,
    )
    return registry_of(spec)


def test_the_canvas_family_has_no_shortcut() -> None:
    resolved = default_registry().resolve("canvas/math", 0)
    assert resolved.compiled.family.heuristic_on_episode(new_episode(resolved.compiled, 0)) is None


def test_the_planner_plays_what_it_decided() -> None:
    registry = default_registry()
    played = plan_episode("medium", 3, samples=2)
    resolved = registry.resolve("medium", 3)
    episode = new_episode(resolved.compiled, 3)
    for action in played["actions"]:
        episode.step(action)
    assert episode.done
    assert resolved.compiled.family.grade(episode)["score"] == played["grade"]["score"]
    assert build_observation(episode)["done"]


def test_grades_of_the_shipped_slice_carry_both_references() -> None:
    shipped = {(e["task_id"], e["seed"]) for e in load_planner_entries()}
    for task_id in SHIPPED_SLICE_TASKS:
        seeds = slice_seeds(task_id)
        missing = [seed for seed in seeds if (task_id, seed) not in shipped]
        assert not missing, f"{task_id}: no planner score shipped for seeds {missing}"
        env = WorkflowEnv()
        observation = env.reset(task_id=task_id, seed=seeds[-1])
        policy = make_policy("greedy")
        while not env.done:
            observation = env.step(policy.act(observation))
        grade = env.grade()
        assert grade["planner_score_status"] == KNOWN and grade["planner_score"] is not None
        assert grade["normalized_to_planner"] == round(grade["score"] / grade["planner_score"], 6)
        assert grade["hindsight_best"] == grade["best_score"]
        if task_id in EXPERT_TASKS:
            assert grade["hindsight_best_status"] == UNKNOWN  # the oracle does not model them
        else:
            assert grade["hindsight_best_status"] in ("optimal", "best_found")


def test_a_sealed_grade_claims_no_reference() -> None:
    env = WorkflowEnv(outcome_secret="hush")
    observation = env.reset(task_id="hard", seed=0)
    policy = make_policy("heuristic")
    while not env.done:
        observation = env.step(policy.act(observation))
    grade = env.grade()
    assert grade["planner_score"] is None and grade["planner_score_status"] == "sealed"
    assert grade["hindsight_best"] is None and grade["hindsight_best_status"] == "sealed"
    assert grade["normalized_to_planner"] is None


def _registry(references: References) -> TaskRegistry:
    registry = TaskRegistry(references)
    registry.load_directory(SCENARIO_DIR)
    for family in builtin_families():
        registry.add_family(family)
    return registry


def _grade(registry: TaskRegistry, task_id: str, seed: int) -> dict[str, Any]:
    env = WorkflowEnv(registry)
    observation = env.reset(task_id=task_id, seed=seed)
    policy = make_policy("greedy")
    while not env.done:
        observation = env.step(policy.act(observation))
    return env.grade()


def test_a_seed_outside_the_slice_is_pending_then_known_and_cached_on_disk(tmp_path: Path) -> None:
    seed = 123_456
    off = References(on_request=False, cache_dir=tmp_path)
    assert _grade(_registry(off), "medium", seed)["planner_score_status"] == UNKNOWN

    references = References(on_request=True, cache_dir=tmp_path)
    registry = _registry(references)
    started = time.perf_counter()
    first = _grade(registry, "medium", seed)
    # The grade came back at once: the planner runs in a worker process.
    assert first["planner_score_status"] == PENDING and first["planner_score"] is None
    assert time.perf_counter() - started < 5
    references.wait(timeout=120)
    later = _grade(registry, "medium", seed)
    expected = compute_planner_score("medium", seed, None)["planner_score"]
    assert later["planner_score_status"] == KNOWN and later["planner_score"] == expected
    references.close()
    assert list(tmp_path.glob("medium_123456_*.json"))

    # A restart: a new resolver over the same directory knows it without computing.
    restarted = References(on_request=False, cache_dir=tmp_path)
    again = _grade(_registry(restarted), "medium", seed)
    assert again["planner_score_status"] == KNOWN and again["planner_score"] == expected


def test_a_reference_over_its_budget_is_unknown(tmp_path: Path) -> None:
    references = References(on_request=True, cache_dir=tmp_path, budget_seconds=0.0)
    registry = _registry(references)
    assert _grade(registry, "hard", 98_765)["planner_score_status"] == PENDING
    references.wait(timeout=120)
    assert _grade(registry, "hard", 98_765)["planner_score_status"] == UNKNOWN
    references.close()
    assert not list(tmp_path.glob("*.json"))
