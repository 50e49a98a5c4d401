"""Seeded variation of the hand-written scenarios (``server/tasks/variation.py``):
``easy`` and ``medium`` play their file on the canonical seed and a variant drawn
from the seed on every other; what varies is only what the file's ``[variation]``
lists, and every variant carries its own shipped references."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from workflow_orchestrator.server.core import WorkflowDefinitionError
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import TaskRegistry, default_registry
from workflow_orchestrator.server.tasks.registry import SCENARIO_DIR, load_scenario_file
from workflow_orchestrator.server.tasks.schema import task_from_file

SEEDS = range(1, 41)


def _without_agents(spec: object) -> object:
    return dataclasses.replace(spec, agents=(), canonical_seed=0)  # type: ignore[type-var]


@pytest.mark.parametrize("task_id", ["easy", "medium"])
def test_the_canonical_seed_plays_the_file_as_written(task_id: str) -> None:
    registry = default_registry()
    written = load_scenario_file(SCENARIO_DIR / f"{task_id}.toml")
    assert registry.resolve(task_id).spec == written
    assert registry.resolve(task_id, 0).spec == written
    # The agents of the file, as the scenario document lists them.
    data = tomllib.loads((SCENARIO_DIR / f"{task_id}.toml").read_text())
    assert {a["name"]: (a.get("speed", 1), sorted(a["capabilities"])) for a in data["agents"]} == {
        a.name: (a.speed, sorted(a.capabilities)) for a in written.agents
    }


@pytest.mark.parametrize("task_id", ["easy", "medium"])
def test_other_seeds_vary_only_what_the_file_lists(task_id: str) -> None:
    registry = default_registry()
    written = registry.resolve(task_id).spec
    variants = set()
    for seed in SEEDS:
        spec = registry.resolve(task_id, seed).spec
        # Subtasks, DAG, limits, budget, events and grading are the file's.
        assert _without_agents(spec) == _without_agents(written)
        for agent, original in zip(spec.agents, written.agents, strict=True):
            assert (agent.name, agent.cost, agent.reliability) == (original.name, original.cost, original.reliability)
            assert (agent.never_succeeds, agent.fails_first) == (original.never_succeeds, original.fails_first)
            assert agent.capabilities >= original.capabilities
            if task_id == "easy":
                assert agent.speed in (1, 2) and agent.capabilities == original.capabilities
            else:
                assert agent.speed == original.speed
        variants.add(tuple((a.speed, tuple(sorted(a.capabilities))) for a in spec.agents))
        # The same seed names the same task in a fresh registry (nothing but the seed decides it).
        fresh = TaskRegistry()
        fresh.load_directory(SCENARIO_DIR)
        assert fresh.resolve(task_id, seed).spec == spec
    assert len(variants) >= 8, f"{task_id}: only {len(variants)} variants over {len(SEEDS)} seeds"


def test_every_medium_variant_offers_a_choice_of_agents_and_keeps_the_scanner_trap() -> None:
    registry = default_registry()
    written = registry.resolve("medium").spec
    able = {t: {a.name for a in written.agents if t in a.capabilities} for t in {s.type for s in written.subtasks}}
    assert all(len(names) == 1 for names in able.values())  # the file: one agent per type
    for seed in SEEDS:
        spec = registry.resolve("medium", seed).spec
        choices = [s.id for s in spec.subtasks if sum(s.type in a.capabilities for a in spec.agents) > 1]
        assert choices, f"seed {seed}: no subtask with a choice of agents"
        scanner = next(a for a in spec.agents if a.name == "security_scanner")
        assert scanner.fails_first == {"security_scan": 1}


def test_the_easy_variants_stay_easy_and_medium_varies_its_grades() -> None:
    """The heuristic still solves every easy variant; on medium its grade now depends on the seed."""
    registry = default_registry()
    for task_id in ("easy", "medium"):
        scores = []
        for seed in range(1, 11):
            env = WorkflowEnv(registry=registry)
            observation = env.reset(task_id=task_id, seed=seed)
            policy = make_policy("heuristic", seed)
            while not env.done:
                observation = env.step(policy.act(observation))
            grade = env.grade()
            scores.append(grade["score"])
            # Every variant of the slice has its own proven best score.
            assert grade["hindsight_best_status"] == "optimal", (task_id, seed)
            assert grade["normalized_score"] == round(grade["score"] / grade["hindsight_best"], 6)
        if task_id == "easy":
            assert min(scores) == 1.0
        else:
            assert len(set(scores)) > 1


def test_scenarios_without_variation_ignore_the_seed_for_their_definition() -> None:
    registry = default_registry()
    for task_id in ("hard", "expert"):
        assert registry.resolve(task_id, 7).spec is registry.resolve(task_id).spec


@pytest.mark.parametrize(
    ("variation", "message"),
    [
        ({"extra_capabilities": [["nobody", "work"]], "extra_probability": 0.5}, "unknown agent 'nobody'"),
        ({"extra_capabilities": [["worker", "nothing"]], "extra_probability": 0.5}, "no subtask has type 'nothing'"),
        ({"extra_capabilities": [["worker", "work"]]}, "extra_probability"),
        ({"agent_speeds": [0, 1]}, "variation.agent_speeds"),
        ({"agent_count": 3}, "variation.agent_count"),
    ],
)
def test_bad_variation_rules_are_refused_with_the_field_named(variation: dict[str, object], message: str) -> None:
    data = {
        "id": "tiny",
        "title": "Tiny",
        "description": "One subtask.",
        "difficulty": "easy",
        "time_limit": 5,
        "capacity": 1,
        "grading": {"weights": {"completion": 1.0}},
        "subtasks": [{"id": "only", "type": "work"}],
        "agents": [{"name": "worker", "capabilities": ["work"]}],
        "variation": variation,
    }
    with pytest.raises(WorkflowDefinitionError, match=message):
        task_from_file(data, "tiny.toml")
