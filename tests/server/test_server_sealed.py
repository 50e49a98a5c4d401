"""A sealed server: the outcome secret from its environment variable or option
seals every episode like WorkflowEnv(outcome_secret=...), and no route shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.server_fixtures import start_server
from workflow_orchestrator.server.app import ServerSettings, parse_settings
from workflow_orchestrator.server.inprocess import WorkflowEnv

SECRET = "held by the evaluator"


def test_the_secret_comes_from_its_variable_or_option_and_is_not_in_the_repr() -> None:
    assert parse_settings([], {}).outcome_secret is None
    from_variable = parse_settings([], {"WORKFLOW_ORCHESTRATOR_OUTCOME_SECRET": SECRET})
    assert from_variable.outcome_secret == SECRET
    assert parse_settings(["--outcome-secret", "other"], {"WORKFLOW_ORCHESTRATOR_OUTCOME_SECRET": SECRET}) == (
        ServerSettings(outcome_secret="other")
    )
    assert SECRET not in repr(from_variable)


def _first_legal(observation: dict[str, Any]) -> dict[str, Any]:
    legal = observation["legal_actions"]
    return legal[0] if legal else {"action_type": "wait"}


def test_a_sealed_server_plays_the_sealed_episode_and_shows_no_secret(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"WORKFLOW_ORCHESTRATOR_OUTCOME_SECRET": SECRET})
    try:
        with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as http:
            for task_id, seed in (("hard", 3), ("generated/hard", 5001)):
                reply = http.post("/reset", json={"task_id": task_id, "seed": seed}).json()
                episode_id = reply["observation"]["episode_id"]
                local = WorkflowEnv(outcome_secret=SECRET)
                local.reset(task_id=task_id, seed=seed)
                texts = [str(reply)]
                while not reply["done"]:
                    action = _first_legal(reply["observation"])
                    local.step(action)
                    reply = http.post("/step", json={"episode_id": episode_id, "action": action}).json()
                    texts.append(str(reply))
                state = http.get("/state", params={"episode_id": episode_id}).json()
                record = http.get(f"/episodes/{episode_id}").json()
                grade = http.post("/grader", json={"episode_id": episode_id}).json()
                texts += [str(state), str(record), str(grade)]
                assert state["events"] == local.episode.log.records
                assert state["events"] != _unsealed_events(task_id, seed, local)
                assert grade["best_score"] is None and grade["normalized_score"] is None
                assert not any(SECRET in text for text in texts)
    finally:
        server.stop()
    assert SECRET not in server.log()


def _unsealed_events(task_id: str, seed: int, sealed: WorkflowEnv) -> list[dict[str, Any]]:
    env = WorkflowEnv()
    env.reset(task_id=task_id, seed=seed)
    for entry in sealed.episode.trace:
        env.step(entry["action"])
    return list(env.episode.log.records)
