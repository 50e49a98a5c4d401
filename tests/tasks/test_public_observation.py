"""No observation field is derived from hidden facts: under an outcome secret,
the same task and seed look the same whatever the secret (which decides the
outages, traps, dropouts and outcomes), and an arena episode with nothing
running shows the same thing whether or not an outage is scheduled, until
one happens."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from workflow_orchestrator.server.core.families import render_text
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import TaskRegistry
from workflow_orchestrator.server.tasks.arena import PRESETS, generate_arena, max_outages
from workflow_orchestrator.server.tasks.generated import LEVELS, generate_scenario

TASKS = [f"arena/{name}" for name in PRESETS] + [f"generated/{name}" for name in LEVELS]
SEEDS = range(60)
SECRETS = ("one evaluator's secret", "another evaluator's secret")


def _public(observation: dict[str, Any]) -> dict[str, Any]:
    # The seed is the same; everything else must be too, the hint and legal actions included.
    return {**observation, "text": render_text(observation)}


@pytest.mark.parametrize("task_id", TASKS)
def test_the_first_observation_is_the_same_under_any_secret(task_id: str) -> None:
    first, second = (WorkflowEnv(outcome_secret=secret) for secret in SECRETS)
    differ = 0
    for seed in SEEDS:
        a = first.reset(task_id, seed=seed)
        b = second.reset(task_id, seed=seed)
        assert _public(a) == _public(b), (task_id, seed)
        differ += first.episode.task.events != second.episode.task.events or any(
            x.never_succeeds != y.never_succeeds
            for x, y in zip(first.episode.task.agents, second.episode.task.agents, strict=True)
        )
    if task_id in ("arena/hard", "generated/medium", "generated/hard"):
        assert differ >= len(SEEDS) // 2  # the secrets did draw different hidden facts


def _public_spec(spec: Any) -> tuple[Any, ...]:
    agents = tuple(dataclasses.replace(a, never_succeeds=frozenset()) for a in spec.agents)
    return (
        spec.title,
        spec.description,
        spec.time_limit,
        spec.step_limit,
        spec.budget,
        spec.subtasks,
        agents,
        dict(spec.parameters),
    )


def test_what_a_task_says_of_itself_is_the_same_under_any_secret() -> None:
    for seed in range(200):
        for preset in PRESETS.values():
            a, b = (generate_arena(preset, seed, secret=secret.encode()) for secret in SECRETS)
            assert _public_spec(a) == _public_spec(b), (preset.name, seed)
        for level in LEVELS.values():
            a, b, plain = (
                generate_scenario(level, seed, secret=None if secret is None else secret.encode())
                for secret in (*SECRETS, None)
            )
            assert _public_spec(a) == _public_spec(b) == _public_spec(plain), (level.name, seed)


def test_the_step_limit_counts_the_most_outages_that_could_be_drawn() -> None:
    preset = PRESETS["hard"]
    for seed in range(200):
        for secret in (None, *SECRETS):
            spec = generate_arena(preset, seed, secret=None if secret is None else secret.encode())
            horizon = spec.parameters["lower_bound"]
            bound = spec.parameters["max_outages"]
            assert len(spec.events) // 2 <= bound
            assert bound == max_outages(preset, spec.capacity, -(-13 * horizon // 10))


def _env(spec: Any) -> WorkflowEnv:
    registry = TaskRegistry()
    registry.add_scenario(spec)
    return WorkflowEnv(registry)


def test_with_nothing_running_an_arena_observation_does_not_tell_of_a_scheduled_outage() -> None:
    checked = 0
    for seed in range(40):
        spec = generate_arena(PRESETS["hard"], seed)
        if not spec.events:
            continue
        start = spec.events[0].at
        scheduled, calm = _env(spec), _env(dataclasses.replace(spec, events=()))
        a = scheduled.reset(spec.task_id, seed=seed)
        b = calm.reset(spec.task_id, seed=seed)
        while True:
            assert _public(a) == _public(b), (seed, a["time_used"])
            assert {"action_type": "wait"} in a["legal_actions"]
            checked += 1
            if a["time_used"] + 1 >= start:
                break
            a = scheduled.step({"action_type": "wait"})
            b = calm.step({"action_type": "wait"})
        # The outage shows once it happens, not before.
        a = scheduled.step({"action_type": "wait"})
        assert a["time_used"] == start and a["arena"]["effective_workers"] < a["arena"]["total_workers"]
    assert checked >= 40
