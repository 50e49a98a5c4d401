"""The shipped best achievable scores, the normalised grade, and replays of oracle plans."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from tests.support.tasks import SCENARIOS, registry_of
from workflow_orchestrator.oracle import OPTIMAL, best_achievable, replay, solve
from workflow_orchestrator.oracle.catalogue import ARENA_SEEDS, COMMAND, check_entries, summary_table
from workflow_orchestrator.oracle.demos import export, skip_steps
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.server.tasks.best_scores import load_entries, shipped_entry, task_fingerprint

ENTRIES = load_entries()


def _entry(task_id: str, seed: int) -> dict:
    found = [e for e in ENTRIES if e["task_id"] == task_id and e["seed"] == seed]
    assert found, f"no shipped best score for {task_id} seed {seed}"
    return found[0]


def test_every_shipped_plan_earns_its_recorded_score_on_the_current_tasks() -> None:
    assert ENTRIES
    problems = check_entries(ENTRIES)
    assert problems == [], f"{problems[:5]} ... regenerate with: {COMMAND}"


@pytest.mark.parametrize("task_id", SCENARIOS)
def test_scenarios_at_their_canonical_seed_are_proven_and_a_fresh_search_agrees(task_id: str) -> None:
    resolved = default_registry().resolve(task_id)
    entry = _entry(task_id, resolved.seed)
    assert entry["status"] == OPTIMAL and entry["seconds"] <= 60
    result = solve(resolved.compiled, resolved.seed, seconds=60)
    assert result.status == OPTIMAL
    assert result.best_score == entry["best_score"]


@pytest.mark.parametrize("preset", ["easy", "medium"])
def test_arena_easy_and_medium_are_proven_for_most_seeds_within_ten_seconds(preset: str) -> None:
    entries = [_entry(f"arena/{preset}", seed) for seed in ARENA_SEEDS]
    proven = [e for e in entries if e["status"] == OPTIMAL and e["seconds"] <= 10]
    assert len(proven) >= 0.9 * len(entries)


def test_every_shipped_result_reports_a_bound_and_gap() -> None:
    for entry in ENTRIES:
        assert entry["upper_bound"] >= entry["best_score"]
        assert entry["gap"] == pytest.approx(entry["upper_bound"] - entry["best_score"], abs=1e-6)
        if entry["status"] == OPTIMAL:
            assert entry["gap"] == 0
        else:
            assert entry["gap"] > 0
    assert "| arena/hard |" in summary_table(ENTRIES)


def _heuristic_grade(env: WorkflowEnv, task_id: str, seed: int | None) -> dict:
    policy = make_policy("heuristic", 0)
    observation = env.reset(task_id, seed=seed)
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    return observation["grade"]


def test_the_grade_carries_the_normalised_score() -> None:
    env = WorkflowEnv()
    grade = _heuristic_grade(env, "hard", None)
    best = _entry("hard", env.episode.seed)["best_score"]  # type: ignore[union-attr]
    assert grade["best_score"] == best and grade["best_score_upper_bound"] == best
    assert grade["best_score_status"] == OPTIMAL
    assert grade["normalized_score"] == round(grade["score"] / best, 6)
    arena = _heuristic_grade(env, "arena/hard", 7)
    assert arena["normalized_score"] == round(arena["score"] / _entry("arena/hard", 7)["best_score"], 6)


def test_the_normalised_score_is_unknown_without_a_current_best_score() -> None:
    env = WorkflowEnv()
    assert _heuristic_grade(env, "hard", 12345)["normalized_score"] is None
    assert _heuristic_grade(env, "arena/medium", 999)["best_score"] is None
    # The same task id with other weights is another task: its shipped entries do not apply.
    hard = default_registry().resolve("hard").spec
    changed = dataclasses.replace(hard, grade_weights={**hard.grade_weights, "completion": 0.2, "deadlines": 0.1})
    assert task_fingerprint(changed) != task_fingerprint(hard)
    grade = _heuristic_grade(WorkflowEnv(registry=registry_of(changed)), "hard", None)
    assert grade["normalized_score"] is None and grade["best_score"] is None
    assert grade["best_score_status"] is None


def test_demonstrations_are_oracle_trajectories_as_prompt_action_lines(tmp_path: Path) -> None:
    out = tmp_path / "demos.jsonl"
    trajectories, lines = export(out, tasks=["hard", "arena/hard"], seeds=[0, 1], count=3)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert trajectories == 3 and len(records) == lines
    assert {(r["task_id"], r["seed"]) for r in records} == {("hard", 0), ("arena/hard", 0), ("hard", 1)}
    for record in records:
        assert set(record) >= {"task_id", "seed", "step", "prompt", "action", "final_score"}
        assert record["prompt"].startswith(f"Task {record['task_id']}")
        assert "hindsight_skip" not in record
    # The hard trajectory is the shipped plan, step by step, and earns the best score.
    hard = [r for r in records if (r["task_id"], r["seed"]) == ("hard", 0)]
    entry = _entry("hard", 0)
    assert [r["action"] for r in hard] == entry["plan"]
    assert hard[0]["final_score"] == entry["best_score"]


def test_zero_time_skips_are_recognised() -> None:
    plan = [
        {"action_type": "dispatch", "assignments": [{"subtask_id": "a", "agent_name": "w1"}]},
        {"action_type": "abort", "subtask_id": "a"},
        {"action_type": "dispatch", "assignments": [{"subtask_id": "a", "agent_name": "w2"}]},
        {"action_type": "abort", "subtask_id": "a"},
    ]
    assert skip_steps(plan, [0, 0, 0, 1]) == {0, 1}


@pytest.mark.parametrize("task_id", [*SCENARIOS, "arena/hard"])
def test_an_oracle_plan_replayed_through_the_server_earns_its_score(http: httpx.Client, task_id: str) -> None:
    resolved = default_registry().resolve(task_id)
    entry = shipped_entry(resolved.spec, resolved.seed)
    assert entry is not None
    reply = http.post("/reset", json={"task_id": task_id, "seed": resolved.seed}).json()
    episode_id = reply["observation"]["episode_id"]
    for action in entry["plan"]:
        reply = http.post("/step", json={"episode_id": episode_id, "action": action}).json()
        assert reply["observation"]["errors"] == []
    assert reply["done"]
    grade = reply["observation"]["grade"]
    assert grade["score"] == entry["best_score"]
    assert grade["normalized_score"] == 1.0


def test_best_achievable_uses_a_current_shipped_result_and_searches_otherwise() -> None:
    shipped = best_achievable("expert")
    entry = _entry("expert", shipped.seed)
    assert shipped.method == "shipped" and shipped.best_score == entry["best_score"]
    resolved = default_registry().resolve("medium", seed=4321)
    fresh = best_achievable("medium", seed=4321, seconds=30)
    assert fresh.method == "branch_and_bound" and fresh.status == OPTIMAL
    assert replay(resolved.compiled, 4321, fresh.plan)[0]["score"] == fresh.best_score
