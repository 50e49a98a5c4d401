"""References on request through the server: a seed outside the shipped slice is
graded ``pending`` at once, the planner runs off the event loop while other
sessions keep stepping, and later grades carry its score."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.server_fixtures import start_server
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.tasks.references import compute_planner_score

TASK, SEED = "arena/hard", 777


def _play(http: httpx.Client, task_id: str, seed: int, latencies: list[float] | None = None) -> tuple[str, Any]:
    reply = http.post("/reset", json={"task_id": task_id, "seed": seed}).json()
    episode_id = reply["observation"]["episode_id"]
    policy = make_policy("heuristic", seed)
    while not reply["done"]:
        action = policy.act(reply["observation"])
        started = time.perf_counter()
        response = http.post("/step", json={"episode_id": episode_id, "action": action})
        if latencies is not None:
            latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        reply = response.json()
    return episode_id, reply["observation"]["grade"]


def test_a_reference_is_pending_then_known_and_never_stalls_other_sessions(tmp_path: Path) -> None:
    cache = tmp_path / "references"
    server = start_server(
        tmp_path,
        env={"WORKFLOW_ORCHESTRATOR_REFERENCES": "on-request", "WORKFLOW_ORCHESTRATOR_REFERENCE_CACHE": str(cache)},
    )
    try:
        with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as http:
            _, grade = _play(http, TASK, SEED)
            assert grade["planner_score_status"] == "pending" and grade["planner_score"] is None
            latencies: list[float] = []
            pending_steps = 0
            deadline = time.monotonic() + 180
            while True:
                before = len(latencies)
                _play(http, "easy", 0, latencies)
                pending_steps += len(latencies) - before
                # A later episode of the same task and seed: its grade, once the planner answered.
                _, graded = _play(http, TASK, SEED)
                if graded["planner_score_status"] != "pending":
                    break
                assert time.monotonic() < deadline, "the planner's score never came"
            assert graded["planner_score_status"] == "known"
            # Another session stepped all along, and no step waited for the planner.
            assert pending_steps >= 6
            assert max(latencies) < 1.5, max(latencies)
    finally:
        server.stop()
    expected = compute_planner_score(TASK, SEED, None)["planner_score"]
    assert graded["planner_score"] == expected
    assert graded["normalized_to_planner"] == round(graded["score"] / expected, 6)
    assert len(list(cache.glob("arena-hard_777_*.json"))) == 1
