"""Generated scenario-kind tasks: validity over thousands of seeds, an ideal
schedule that meets every deadline and the budget, determinism, the scenario
graders, and policies that separate."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

import pytest

from workflow_orchestrator.server.core import validate_task
from workflow_orchestrator.server.core.model import EventKind, TaskSpec, TimeModel
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import TaskRegistry, default_registry
from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS
from workflow_orchestrator.server.tasks.generated import LEVELS, generate_scenario
from workflow_orchestrator.vocabulary import GRADE_DIMENSIONS


def _able(spec: TaskSpec, kind: str) -> list[str]:
    return [a.name for a in spec.agents if kind in a.capabilities and kind not in a.never_succeeds]


def _check(spec: TaskSpec, level_name: str) -> None:
    level = LEVELS[level_name]
    assert validate_task(spec) == []  # acyclic, every subtask has an agent able to complete it, ...
    assert spec.family == "generated" and spec.time_model is TimeModel.TICK
    assert level.subtask_range[0] <= len(spec.subtasks) <= level.subtask_range[1]
    assert len(spec.agents) == level.agent_count
    assert sum(len(a.never_succeeds) for a in spec.agents) == level.traps
    for agent in spec.agents:
        for kind in agent.never_succeeds:
            assert kind in agent.capabilities and _able(spec, kind)  # a trap always has an alternative
    offline = [e for e in spec.events if e.kind is EventKind.OFFLINE]
    assert len(offline) == level.dropouts
    for event in offline:
        dropped = next(a for a in spec.agents if a.name == event.agent)
        for kind in dropped.capabilities - dropped.never_succeeds:
            assert [name for name in _able(spec, kind) if name != dropped.name]
    assert sum(1 for s in spec.subtasks if s.deadline is not None) == level.deadline_count
    assert (spec.budget is None) == (level.budget_factor is None)
    assert set(spec.grade_weights) <= set(GRADE_DIMENSIONS)
    assert abs(sum(spec.grade_weights.values()) - 1.0) < 1e-9


@pytest.mark.parametrize("level_name", sorted(LEVELS))
def test_thousands_of_generated_scenarios_are_valid(level_name: str) -> None:
    for seed in range(1000):
        _check(generate_scenario(LEVELS[level_name], seed), level_name)


def _fastest_tails(spec: TaskSpec) -> dict[str, int]:
    fastest = {s.id: min(a.speed for a in spec.agents if a.name in _able(spec, s.type)) * s.work for s in spec.subtasks}
    successors: dict[str, list[str]] = {s.id: [] for s in spec.subtasks}
    for s in spec.subtasks:
        for dep in s.depends_on:
            successors[dep].append(s.id)
    tails: dict[str, int] = {}

    def tail(node: str) -> int:
        if node not in tails:
            tails[node] = fastest[node] + max((tail(n) for n in successors[node]), default=0)
        return tails[node]

    for s in spec.subtasks:
        tail(s.id)
    return tails


class IdealPolicy:
    """Knows the hidden facts (traps, dropout ticks): ready subtasks by longest
    chain ahead, then name, each to the idle able agent that finishes first,
    then the cheapest, never one that drops out before finishing."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.tails = _fastest_tails(spec)
        self.offline_time = {e.agent: e.at - 1 for e in spec.events if e.kind is EventKind.OFFLINE}
        self.agents = {a.name: a for a in spec.agents}
        self.work = {s.id: s for s in spec.subtasks}

    def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        if observation["completed_count"] == observation["subtask_count"]:
            return {"action_type": "synthesize"}
        now = observation["time_used"]
        idle = {a["name"] for a in observation["agents"] if a["status"] == "idle"}
        free = observation["capacity"] - observation["active_count"]
        ready = sorted(
            (s["id"] for s in observation["subtasks"] if s["status"] == "ready"),
            key=lambda sid: (-self.tails[sid], sid),
        )
        assignments = []
        for sid in ready:
            if len(assignments) >= free:
                break
            subtask = self.work[sid]
            options = []
            for name in _able(self.spec, subtask.type):
                agent = self.agents[name]
                end = now + agent.speed * subtask.work
                if name in idle and end <= self.offline_time.get(name, 10**9):
                    options.append((end, agent.cost * agent.speed * subtask.work, name))
            if options:
                name = min(options)[2]
                idle.discard(name)
                assignments.append({"subtask_id": sid, "agent_name": name})
        if not assignments:
            return {"action_type": "wait"}
        return {"action_type": "dispatch", "assignments": assignments}


def test_an_ideal_schedule_meets_every_deadline_the_budget_and_the_time_limit() -> None:
    """On the public facts (every capable agent able, no dropout, every attempt
    succeeding) the reference schedule meets every deadline and the budget, and
    finishes at its synthesis tick: the task's figures say nothing of the hidden ones."""
    for level_name, level in LEVELS.items():
        for seed in range(30):
            spec = generate_scenario(level, seed)
            public = tuple(dataclasses.replace(a, reliability=1.0, never_succeeds=frozenset()) for a in spec.agents)
            spec = dataclasses.replace(spec, agents=public, events=())
            registry = TaskRegistry()
            registry.add_scenario(spec)
            env = WorkflowEnv(registry)
            policy = IdealPolicy(spec)
            observation = env.reset(spec.task_id, seed=seed)
            while not observation["done"]:
                observation = env.step(policy.act(observation))
                assert not observation["errors"], (level_name, seed, observation["errors"])
            counts = observation["grade"]["counts"]
            assert observation["terminated"], (level_name, seed)
            assert counts["deadlines_met"] == counts["deadlines_total"], (level_name, seed)
            assert counts["failures"] == 0
            if spec.budget is not None:
                assert counts["cost"] <= spec.budget
            assert observation["time_used"] == spec.parameters["reference_end"]


def test_generation_is_deterministic_and_seeds_differ() -> None:
    for level in LEVELS.values():
        assert generate_scenario(level, 9) == generate_scenario(level, 9)
    shapes = {
        tuple((s.id, s.depends_on) for s in generate_scenario(LEVELS["hard"], seed).subtasks) for seed in range(40)
    }
    assert len(shapes) == 40


def test_generated_tasks_are_listed_refuse_a_worker_count_and_use_the_scenario_graders() -> None:
    registry = default_registry()
    assert {"generated/easy", "generated/medium", "generated/hard"} <= set(registry.task_ids())
    env = WorkflowEnv()
    with pytest.raises(ValueError, match="worker_count"):
        env.reset("generated/hard", seed=1, worker_count=3)
    policy = make_policy("heuristic")
    observation = env.reset("generated/hard", seed=4)
    assert "arena" not in observation and observation["time_model"] == "tick"
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    grade = observation["grade"]
    assert set(grade["breakdown"]) == set(LEVELS["hard"].grade_weights)
    assert set(observation["reward_breakdown"]) >= {"delegation", "completion", "invalid_action"}


def _mean_score(task_id: str, policy_name: str, seeds: range) -> float:
    env = WorkflowEnv()
    scores = []
    for seed in seeds:
        policy = make_policy(policy_name, seed)
        observation = env.reset(task_id, seed=seed)
        while not observation["done"]:
            observation = env.step(policy.act(observation))
        scores.append(observation["grade"]["score"])
    return statistics.mean(scores)


def test_generated_hard_separates_the_policies() -> None:
    seeds = EVALUATION_SEEDS[:20]
    noop = _mean_score("generated/hard", "noop", seeds)
    stubborn = _mean_score("generated/hard", "stubborn", seeds)
    greedy = _mean_score("generated/hard", "greedy", seeds)
    heuristic = _mean_score("generated/hard", "heuristic", seeds)
    assert noop <= 0.02
    # Retrying a trapped agent stalls; switching agents after a permanent failure
    # recovers, and the heuristic's order and choice of agents still count.
    assert stubborn < greedy - 0.1
    assert greedy < heuristic - 0.1
