"""arena/expert: large workflows, workers that differ, reliabilities not declared,
outages announced ahead, a budget, urgent work off the critical path; and the
direction of its targets on a small slice of held-out seeds."""

from __future__ import annotations

import statistics

from bench.arena import play_expert
from workflow_orchestrator.server.core import validate_task
from workflow_orchestrator.server.core.families import build_observation, compile_task, new_episode
from workflow_orchestrator.server.core.model import EventKind
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS, EXPERT_PRESETS, generate_expert
from workflow_orchestrator.server.tasks.planner import sampled_task

EXPERT = EXPERT_PRESETS["expert"]
SECRET = b"expert-test-secret-0123456789abc"


def test_expert_workflows_are_large_valid_and_deterministic() -> None:
    for seed in range(12):
        spec = generate_expert(EXPERT, seed)
        assert validate_task(spec) == []
        assert 50 <= len(spec.subtasks) <= 120
        assert spec == generate_expert(EXPERT, seed)
        assert spec.budget is not None and spec.time_limit is not None
        assert {(a.speed, a.cost) for a in spec.agents} == {(1, 2.0), (3, 0.4)}
        assert all(s.deadline is not None for s in spec.subtasks)
        assert spec.parameters["urgent_subtasks"] >= 1


def test_public_facts_do_not_depend_on_the_secret_and_the_reliabilities_do() -> None:
    plain = generate_expert(EXPERT, 7)
    sealed = generate_expert(EXPERT, 7, secret=SECRET)
    assert plain.subtasks == sealed.subtasks
    assert plain.events == sealed.events and plain.events  # announced outages: public, also when sealed
    assert (plain.time_limit, plain.budget, plain.step_limit) == (sealed.time_limit, sealed.budget, sealed.step_limit)
    assert [a.reliability for a in plain.agents] != [a.reliability for a in sealed.agents]
    assert [(a.name, a.speed, a.cost) for a in plain.agents] == [(a.name, a.speed, a.cost) for a in sealed.agents]


def test_the_observation_shows_the_prior_the_schedule_and_a_choice_of_workers() -> None:
    resolved = default_registry().resolve("arena/expert", EVALUATION_SEEDS[0])
    spec = resolved.compiled.spec
    episode = new_episode(resolved.compiled, resolved.seed)
    observation = build_observation(episode)
    assert {a["reliability"] for a in observation["agents"]} == {EXPERT.reliability_prior}
    assert {a.reliability for a in spec.agents} != {EXPERT.reliability_prior}
    arena = observation["arena"]
    changes = [{"at": e.at, "workers": e.value} for e in spec.events if e.kind is EventKind.CAPACITY]
    assert arena["capacity_schedule"] == changes
    assert arena["budget"] == spec.budget
    assert [w["failures"] for w in arena["worker_record"]] == [0] * len(spec.agents)
    ready = arena["ready"]
    delegates = [a for a in observation["legal_actions"] if a["action_type"] == "delegate"]
    assert len(delegates) == len(ready) * len(spec.agents)
    assert observation["hint"].endswith("Do: dispatch(" + ",".join(_heuristic_ids(observation)) + ").")
    grade = resolved.compiled.family.grade(episode)
    assert set(grade["breakdown"]) == {"completion", "on_time", "makespan", "cost"}
    assert abs(sum(grade["weights"].values()) - 1.0) < 1e-9


def _heuristic_ids(observation: dict) -> list[str]:  # type: ignore[type-arg]
    from workflow_orchestrator.server.core.arena import arena_dispatch

    action = arena_dispatch(observation["arena"])
    return list(action["task_ids"])


def test_a_worker_record_counts_the_failures_seen() -> None:
    resolved = default_registry().resolve("arena/expert", EVALUATION_SEEDS[1])
    episode = new_episode(resolved.compiled, resolved.seed)
    steps = 0
    while not episode.done and not any(episode.failure_count) and steps < 500:
        observation = build_observation(episode)
        ready = observation["arena"]["ready"]
        idle = [a["name"] for a in observation["agents"] if a["status"] == "idle"]
        if ready and idle and observation["arena"]["free_workers"]:
            episode.step({"action_type": "delegate", "subtask_id": ready[0], "agent_name": idle[0]})
        else:
            episode.step({"action_type": "wait"})
        steps += 1
    record = build_observation(episode)["arena"]["worker_record"]
    assert sum(w["failures"] for w in record) == sum(episode.failure_count) >= 1


def test_the_planner_samples_reliabilities_instead_of_reading_the_played_ones() -> None:
    public = generate_expert(EXPERT, 3)
    hidden = generate_expert(EXPERT, 3, secret=SECRET)
    sampled = sampled_task(public, hidden)
    assert [a.reliability for a in sampled.agents] == [a.reliability for a in hidden.agents]
    assert compile_task(sampled).spec.subtasks == public.subtasks


def test_targets_point_the_right_way_on_a_small_slice() -> None:
    """The full table on 50 seeds: ``python -m bench arena expert``."""
    seeds = EVALUATION_SEEDS[:6]
    mean = {
        policy: statistics.mean(play_expert("arena/expert", seed, policy) for seed in seeds)
        for policy in ("random", "heuristic", "slack", "hint")
    }
    assert mean["random"] <= 0.35
    assert mean["hint"] <= mean["heuristic"]
    assert mean["slack"] - mean["heuristic"] >= 0.1
