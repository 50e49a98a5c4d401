"""Arena episodes: event time, dispatch codes, outages, retry failures, views,
reward channels, the grade, and the separation of the built-in policies."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from workflow_orchestrator.server.core.arena import ARENA_CHANNELS, BENCHMARK_WEIGHTS
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS, PRESETS, generate_arena

WAIT = {"action_type": "wait"}


def dispatch(*ids: str) -> dict[str, Any]:
    return {"action_type": "dispatch", "task_ids": list(ids)}


@pytest.fixture()
def env() -> WorkflowEnv:
    return WorkflowEnv()


def _views(observation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in observation["arena"]["subtask_views"]}


def _codes(observation: dict[str, Any]) -> list[str]:
    return [e["code"] for e in observation["errors"]]


def test_dispatch_takes_no_time_and_wait_jumps_to_the_next_completion(env: WorkflowEnv) -> None:
    observation = env.reset("arena/easy", seed=11)
    ready = observation["arena"]["ready"][:2]
    durations = [_views(observation)[sid]["duration"] for sid in ready]
    observation = env.step(dispatch(*ready))
    assert observation["errors"] == []
    assert observation["time_used"] == 0
    assert sorted(observation["arena"]["running"]) == sorted(ready)
    observation = env.step(WAIT)
    assert observation["time_used"] == min(durations)
    finished = [sid for sid, d in zip(ready, durations, strict=True) if d == min(durations)]
    assert set(finished) <= set(observation["arena"]["completed"])


def test_wait_with_nothing_running_is_legal_and_lasts_one_time_unit(env: WorkflowEnv) -> None:
    observation = env.reset("arena/easy", seed=3)
    assert {"action_type": "wait"} in observation["legal_actions"]
    observation = env.step(WAIT)
    assert observation["errors"] == []
    assert observation["time_used"] == 1
    assert observation["reward_breakdown"]["invalid_action_penalty"] == 0
    assert observation["reward_breakdown"]["idle_penalty"] < 0  # workers left idle with work ready


def test_the_step_limit_ends_a_do_nothing_episode(env: WorkflowEnv) -> None:
    observation = env.reset("arena/easy", seed=5)
    limit = observation["step_limit"]
    steps = 0
    while not observation["done"]:
        observation = env.step(WAIT)
        steps += 1
    assert steps == limit
    assert observation["truncated"] and not observation["terminated"]
    assert observation["grade"]["score"] == 0.0


def test_all_subtasks_completed_terminates_with_the_makespan(env: WorkflowEnv) -> None:
    policy = make_policy("heuristic")
    observation = env.reset("arena/easy", seed=2)
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    assert observation["terminated"] and not observation["truncated"]
    metrics = observation["arena"]["success_metrics"]
    assert metrics["makespan"] == observation["time_used"]
    assert metrics["unfinished_task_count"] == 0
    assert observation["arena"]["progress"] == 1.0
    lower_bound = metrics["lower_bound"]
    assert observation["reward_breakdown"]["terminal_makespan_score"] == pytest.approx(
        lower_bound / metrics["makespan"]
    )


def test_the_time_budget_truncates_and_penalises_unfinished_work(env: WorkflowEnv) -> None:
    """One subtask at a time is far slower than the budget allows."""
    observation = env.reset("arena/medium", seed=4)
    budget = observation["arena"]["time_budget"]
    assert budget is not None and observation["time_limit"] == budget
    while not observation["done"]:
        arena = observation["arena"]
        if arena["running"] or not arena["ready"]:
            observation = env.step(WAIT)
        else:
            observation = env.step(dispatch(arena["ready"][0]))
    assert observation["truncated"]
    assert observation["time_used"] == budget
    assert observation["arena"]["time_left"] == 0
    assert observation["reward_breakdown"]["unfinished_task_penalty"] < 0
    metrics = observation["grade"]["counts"]
    assert metrics["unfinished_task_count"] > 0 and metrics["makespan"] is None
    assert observation["grade"]["breakdown"]["makespan"] == 0.0


def test_invalid_dispatches_carry_their_codes_and_change_nothing(env: WorkflowEnv) -> None:
    observation = env.reset("arena/hard", seed=EVALUATION_SEEDS[0])
    arena = observation["arena"]
    ready, blocked = arena["ready"], arena["blocked"]
    assert arena["free_workers"] == 3 and len(ready) >= 1 and blocked
    cases = [
        (dispatch(blocked[0]), "not_ready"),
        (dispatch(ready[0], ready[0]), "duplicate_subtask"),
        (dispatch("task_999"), "unknown_subtask"),
        ({"action_type": "dispatch"}, "empty_dispatch"),
    ]
    for action, code in cases:
        before = observation["arena"]["ready"]
        observation = env.step(action)
        assert code in _codes(observation)
        assert observation["arena"]["running"] == [] and observation["arena"]["ready"] == before
        assert observation["time_used"] == 0
        assert observation["reward_breakdown"]["invalid_action_penalty"] < 0


def test_dispatching_more_than_the_free_workers_is_capacity_exceeded(env: WorkflowEnv) -> None:
    for seed in range(200):
        observation = env.reset("arena/medium", seed=seed)
        ready = observation["arena"]["ready"]
        if len(ready) > observation["arena"]["free_workers"]:
            break
    else:
        pytest.fail("no seed with more ready subtasks than workers")
    assert len(ready) > len(observation["agents"])
    observation = env.step(dispatch(*ready))
    # More ids than the episode has workers: refused whole, with one error (see test_core_log_bounds).
    assert _codes(observation) == ["capacity_exceeded"]
    assert observation["arena"]["running"] == []
    observation = env.step(dispatch(*ready[: observation["arena"]["free_workers"]]))
    assert observation["errors"] == [] and observation["arena"]["free_workers"] == 0


def _first_outage_seed() -> int:
    for seed in range(100):
        spec = generate_arena(PRESETS["hard"], seed)
        if spec.events and spec.events[0].value == spec.capacity - 1:
            return seed
    raise AssertionError("no hard seed with a one-worker outage")


def test_an_outage_shrinks_usable_workers_and_free_workers_follow(env: WorkflowEnv) -> None:
    seed = _first_outage_seed()
    spec = generate_arena(PRESETS["hard"], seed)
    start, end = spec.events[0].at, spec.events[1].at
    observation = env.reset("arena/hard", seed=seed)
    # Wait through the empty start: with nothing running, a wait lasts one time unit.
    while observation["time_used"] < start:
        assert observation["arena"]["effective_workers"] == 3
        observation = env.step(WAIT)
    arena = observation["arena"]
    assert observation["time_used"] == start
    assert arena["total_workers"] == 3 and arena["effective_workers"] == 2 and arena["degraded_workers"] == 1
    assert arena["free_workers"] == 2
    idle_agents = sum(1 for a in observation["agents"] if a["status"] == "idle")
    assert idle_agents == 3  # the workers are idle, but only two slots are usable
    if len(arena["ready"]) >= 3:
        observation = env.step(dispatch(*arena["ready"][:3]))
        assert _codes(observation) == ["capacity_exceeded"]
    observation = env.step(dispatch(*arena["ready"][:2]))
    assert observation["arena"]["free_workers"] == 0
    while observation["time_used"] < end and not observation["done"]:
        observation = env.step(WAIT)
    if observation["time_used"] == end:
        assert observation["arena"]["effective_workers"] == 3


def test_failed_attempts_return_to_ready_and_respect_the_retry_cap(env: WorkflowEnv) -> None:
    max_retries = PRESETS["hard"].max_retries
    seen_failure = False
    for seed in range(40):
        policy = make_policy("heuristic")
        observation = env.reset("arena/hard", seed=seed)
        while not observation["done"]:
            views = _views(observation)
            for event in observation["arena"]["recent_failure_events"]:
                view = views[event["subtask_id"]]
                assert 1 <= view["failed_attempts"] <= max_retries
            for sid, view in views.items():
                if view["status"] == "failed":
                    seen_failure = True
                    assert sid in observation["arena"]["ready"]
                    assert view["attempts"] == view["failed_attempts"]
            observation = env.step(policy.act(observation))
        for view in _views(observation).values():
            assert view["failed_attempts"] <= max_retries
    assert seen_failure


def test_the_observation_has_the_arena_views(env: WorkflowEnv) -> None:
    observation = env.reset("arena/hard", seed=9)
    arena = observation["arena"]
    for key in (
        "ready",
        "running",
        "blocked",
        "completed",
        "subtask_views",
        "total_workers",
        "effective_workers",
        "degraded_workers",
        "free_workers",
        "time_budget",
        "time_left",
        "progress",
        "recent_failure_events",
        "success_metrics",
    ):
        assert key in arena
    assert set(arena["success_metrics"]) >= {
        "makespan",
        "worker_utilization",
        "deadline_miss_count",
        "unfinished_task_count",
        "weighted_priority_completion",
        "benchmark_score",
    }
    ids = {s["id"] for s in observation["subtasks"]}
    assert set(arena["ready"]) | set(arena["blocked"]) == ids
    views = _views(observation)
    for sid in arena["ready"]:
        view = views[sid]
        assert set(view) >= {"duration", "priority", "deadline", "criticality", "slack", "downstream_count", "attempts"}
        # At time 0 a ready subtask can finish after its duration at the earliest.
        assert view["slack"] == view["deadline"] - view["duration"]
        assert 0 < view["criticality"] <= 1
    assert max(v["criticality"] for v in views.values()) == 1.0
    for sid in arena["blocked"]:
        deps = views[sid]["depends_on"]
        earliest = max(views[d]["deadline"] - views[d]["slack"] for d in deps) + views[sid]["duration"]
        assert views[sid]["slack"] == views[sid]["deadline"] - earliest
    assert arena["time_left"] == arena["time_budget"] == observation["time_limit"]
    legal = observation["legal_actions"]
    assert sorted(a["task_ids"][0] for a in legal if a["action_type"] == "dispatch") == sorted(arena["ready"])
    assert all(a in (dispatch(*a.get("task_ids", [])), WAIT) for a in legal)
    assert (WAIT in legal) == bool(generate_arena(PRESETS["hard"], 9).events)


def test_the_reward_has_the_arena_channels_and_pays_completions(env: WorkflowEnv) -> None:
    observation = env.reset("arena/easy", seed=8)
    assert set(observation["reward_breakdown"]) <= set(ARENA_CHANNELS)
    observation = env.step(dispatch(observation["arena"]["ready"][0]))
    assert list(observation["reward_breakdown"]) == list(ARENA_CHANNELS)
    observation = env.step(WAIT)
    breakdown = observation["reward_breakdown"]
    assert breakdown["completion_reward"] > 0 and breakdown["criticality_reward"] > 0
    assert breakdown["utilization_reward"] > 0
    assert observation["reward"] == pytest.approx(sum(breakdown.values()))


def test_waiting_while_work_is_dispatchable_is_penalised(env: WorkflowEnv) -> None:
    observation = env.reset("arena/easy", seed=8)
    ready = observation["arena"]["ready"]
    observation = env.step(dispatch(ready[0]))
    observation = env.step(WAIT)
    assert observation["reward_breakdown"]["idle_penalty"] < 0  # workers stayed idle with work ready
    observation = env.reset("arena/easy", seed=8)
    free = observation["arena"]["free_workers"]
    observation = env.step(dispatch(*observation["arena"]["ready"][:free]))
    observation = env.step(WAIT)
    assert observation["reward_breakdown"]["idle_penalty"] == 0.0


def test_the_grade_is_the_benchmark_score_of_its_parts(env: WorkflowEnv) -> None:
    for policy_name in ("random", "greedy", "heuristic"):
        for seed in range(5):
            policy = make_policy(policy_name, seed)
            observation = env.reset("arena/hard", seed=seed)
            while not observation["done"]:
                observation = env.step(policy.act(observation))
            grade = observation["grade"]
            parts = grade["breakdown"]
            expected = sum(BENCHMARK_WEIGHTS[name] * parts[name] for name in BENCHMARK_WEIGHTS)
            assert grade["score"] == pytest.approx(expected, abs=1e-3)
            assert grade["score"] == observation["arena"]["success_metrics"]["benchmark_score"]
            assert 0.0 <= grade["score"] <= 1.0
            assert 0.0 <= grade["counts"]["worker_utilization"] <= 1.0


def test_same_seed_and_actions_give_the_same_episode() -> None:
    logs = []
    for _ in range(2):
        env = WorkflowEnv()
        policy = make_policy("random", 5)
        observation = env.reset("arena/hard", seed=123)
        while not observation["done"]:
            observation = env.step(policy.act(observation))
        assert env.episode is not None
        logs.append(env.episode.log.digest())
    assert logs[0] == logs[1]


def _mean_scores(task_id: str, seeds: range) -> dict[str, float]:
    env = WorkflowEnv()
    means = {}
    for name in ("noop", "random", "greedy", "heuristic"):
        scores = []
        for seed in seeds:
            policy = make_policy(name, seed)
            observation = env.reset(task_id, seed=seed)
            while not observation["done"]:
                observation = env.step(policy.act(observation))
            scores.append(observation["grade"]["score"])
        means[name] = statistics.mean(scores)
    return means


def test_the_hard_preset_separates_the_policies() -> None:
    means = _mean_scores("arena/hard", EVALUATION_SEEDS[:30])
    assert means["noop"] == 0.0
    assert means["random"] < means["greedy"] - 0.2
    assert means["greedy"] < means["heuristic"] - 0.05
