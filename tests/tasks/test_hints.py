"""Hints that help: every hint names one action, legal now, whose starts can all
be taken together; no situation hides another; a policy that does exactly what
the hint says finishes the hard scenario well; an unnamed assignment never goes
to an agent that publicly failed that subtask permanently."""

from __future__ import annotations

import re
import statistics
from typing import Any

import pytest

from tests.support.tasks import SCENARIOS, act, tiny_task
from tests.support.tasks import registry_of as tiny_registry
from workflow_orchestrator.server.core.formulas import budget_pressure
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv

TASKS = (*SCENARIOS, "arena/easy", "arena/hard", "generated/medium", "generated/hard")
HINTED_ACTION = re.compile(r" Do: (\w+)\(([^)]*)\)\.$")


def hinted_action(observation: dict[str, Any]) -> dict[str, Any] | None:
    """The action the hint ends with, as an action dict (None: the hint names none)."""
    found = HINTED_ACTION.search(observation["hint"])
    if found is None:
        return None
    kind, args = found.group(1), [a for a in found.group(2).split(",") if a]
    if kind == "dispatch":
        assignments = []
        for arg in args:
            subtask_id, _, agent = arg.partition(":")
            assignments.append({"subtask_id": subtask_id, **({"agent_name": agent} if agent else {})})
        return {"action_type": "dispatch", "assignments": assignments}
    if kind in ("delegate", "retry"):
        return {"action_type": kind, "subtask_id": args[0], "agent_name": args[1]}
    return {"action_type": kind}


def follow_the_hint(observation: dict[str, Any]) -> dict[str, Any]:
    return hinted_action(observation) or {"action_type": "wait"}


def _starts(action: dict[str, Any]) -> list[tuple[str, str | None]]:
    if action["action_type"] == "dispatch":
        return [(a["subtask_id"], a.get("agent_name")) for a in action["assignments"]]
    if action["action_type"] in ("delegate", "retry"):
        return [(action["subtask_id"], action["agent_name"])]
    return []


def _check_hint(observation: dict[str, Any]) -> None:
    action = hinted_action(observation)
    assert action is not None or observation["legal_actions"] == [], observation["hint"]
    if action is None:
        return
    legal = observation["legal_actions"]
    starts = _starts(action)
    if not starts:
        assert action in legal, (observation["hint"], legal)
        return
    subtasks = {s["id"]: s for s in observation["subtasks"]}
    agents = {a["name"]: a for a in observation["agents"]}
    free = observation["capacity"] - observation["active_count"]
    assert 1 <= len(starts) <= free
    assert len({s for s, _ in starts}) == len(starts)
    named = [a for _, a in starts if a is not None]
    assert len(set(named)) == len(named)
    if named:
        pairs = {(a["subtask_id"], a["agent_name"]) for a in legal if a["action_type"] in ("delegate", "retry")}
    else:  # the arena: dispatches of subtasks to any free worker
        pairs = {(t, None) for a in legal if a["action_type"] == "dispatch" for t in a.get("task_ids", ())}
    for subtask_id, agent in starts:
        assert (subtask_id, agent) in pairs, (observation["hint"], subtask_id, agent)
        if agent is not None:
            assert agents[agent]["status"] == "idle"
            failed_for_good = {f["agent"] for f in subtasks[subtask_id]["failures"] if f["kind"] == "permanent"}
            assert agent not in failed_for_good


def _check_nothing_hidden(observation: dict[str, Any]) -> None:
    hint = observation["hint"]
    for subtask in observation["subtasks"]:
        if subtask["status"] == "failed":
            assert f"{subtask['id']} failed" in hint, hint
    if budget_pressure(observation["budget_used"], observation["budget"]):
        assert "Budget pressure" in hint, hint
    patience = (observation.get("rules") or {}).get("patience")
    if patience and observation["completed_count"] == observation["subtask_count"]:
        if observation.get("patience_waits", 0) < patience["waits"]:
            assert "monitoring wants" in hint, hint


@pytest.mark.parametrize("task_id", TASKS)
def test_every_hint_names_one_legal_action_and_hides_no_situation(task_id: str) -> None:
    env = WorkflowEnv()
    for seed in range(8):
        for name in ("heuristic", "random", "stubborn", "hint"):
            policy = None if name == "hint" else make_policy(name, seed)
            observation = env.reset(task_id=task_id, seed=seed)
            while not observation["done"]:
                _check_hint(observation)
                _check_nothing_hidden(observation)
                action = follow_the_hint(observation) if policy is None else policy.act(observation)
                observation = env.step(action)
                if policy is None:
                    assert observation["errors"] == [], (task_id, seed, action)


def test_the_literal_hint_follower_finishes_hard() -> None:
    env = WorkflowEnv()
    scores = []
    for seed in range(100):
        observation = env.reset(task_id="hard", seed=seed)
        while not observation["done"]:
            observation = env.step(follow_the_hint(observation))
        assert observation["terminated"], seed
        scores.append(observation["grade"]["score"])
    assert statistics.mean(scores) >= 0.8 and min(scores) >= 0.7, (statistics.mean(scores), min(scores))


def test_budget_pressure_and_monitoring_waits_are_both_said() -> None:
    env = WorkflowEnv()
    seen = 0
    for seed in range(40):
        policy = make_policy("heuristic", seed)
        observation = env.reset(task_id="hard", seed=seed)
        while not observation["done"]:
            hint = observation["hint"]
            seen += "Budget pressure" in hint and "monitoring wants" in hint
            observation = env.step(policy.act(observation))
    assert seen > 0


def test_an_unnamed_assignment_never_goes_to_an_agent_that_failed_it_permanently() -> None:
    # In the tiny task, pair accepts gamma work (subtask c) but can never complete it; flaky can.
    env = WorkflowEnv(tiny_registry(tiny_task()))
    env.reset(task_id="tiny")
    env.step(act("delegate", "a", "solo"))
    observation = env.step(act("delegate", "c", "pair"))
    assert observation["subtasks"][2]["failures"][-1]["kind"] == "permanent"
    assert observation["hint"].endswith("Do: dispatch(c:flaky,b:pair).")  # b is ready, with a deadline close
    observation = env.step({"action_type": "dispatch", "task_ids": ["c"]})
    assert observation["errors"] == []
    started = [r["agent"] for r in env.episode.log.records if r["kind"] == "delegated" and r["subtask"] == "c"]
    assert started == ["pair", "flaky"]
