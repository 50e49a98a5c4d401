"""Seeded variation of a hand-written scenario.

A scenario file may declare a ``[variation]`` table. Its canonical seed
(``canonical_seed``, 0 for the shipped files) plays the file exactly as
written; every other seed plays a variant drawn from the seed alone, so a
seed names one task whoever plays it. What may vary is only what the file
lists, and only public facts (what the observation shows); the subtasks, the
DAG, the limits, the traps and the events never change:

``agent_speeds``
    every agent's speed (ticks per unit of work) is drawn from this list;
``extra_capabilities`` with ``extra_probability``
    each listed ``[agent, type]`` pair is added to the agent's capabilities
    with this probability, at least one of them on every variant, so a
    subtask type gets a second capable agent: a choice between agents of
    different speed, cost, reliability or load.

The variation is part of the task's definition (``TaskSpec.parameters``
``variation``), so each variant has a fingerprint of its own and the shipped
references match it seed by seed.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.model import AgentSpec, TaskSpec

VARIATION = "variation"


def variation_of(spec: TaskSpec) -> Mapping[str, Any] | None:
    """The scenario's variation rules, or ``None`` when it has none."""
    rules = spec.parameters.get(VARIATION)
    return rules if isinstance(rules, Mapping) and rules else None


def vary_scenario(spec: TaskSpec, seed: int) -> TaskSpec:
    """The variant of ``spec`` that ``seed`` names (``spec`` itself on its canonical seed)."""
    rules = variation_of(spec)
    if rules is None or seed == spec.canonical_seed:
        return spec
    rng = random.Random(f"scenario-variation/{spec.task_id}/{seed}")
    speeds: Sequence[int] = rules.get("agent_speeds") or ()
    pairs: Sequence[Sequence[str]] = rules.get("extra_capabilities") or ()
    probability = float(rules.get("extra_probability", 0.0))
    drawn_speeds = {agent.name: rng.choice(list(speeds)) for agent in spec.agents} if speeds else {}
    extras: list[tuple[str, str]] = [(a, t) for a, t in pairs if rng.random() < probability]
    if pairs and not extras:
        agent_name, type_name = pairs[rng.randrange(len(pairs))]
        extras.append((agent_name, type_name))
    added: dict[str, set[str]] = {}
    for agent_name, type_name in extras:
        added.setdefault(agent_name, set()).add(type_name)

    def varied(agent: AgentSpec) -> AgentSpec:
        return dataclasses.replace(
            agent,
            speed=drawn_speeds.get(agent.name, agent.speed),
            capabilities=agent.capabilities | frozenset(added.get(agent.name, ())),
        )

    return dataclasses.replace(spec, agents=tuple(varied(agent) for agent in spec.agents), canonical_seed=seed)


def check_variation(spec: TaskSpec, rules: Mapping[str, Any]) -> list[str]:
    """Problems of a file's variation rules: unknown agents or types, empty draws."""
    problems = []
    agents = {agent.name for agent in spec.agents}
    types = {subtask.type for subtask in spec.subtasks}
    for agent_name, type_name in rules.get("extra_capabilities") or ():
        if agent_name not in agents:
            problems.append(f"variation.extra_capabilities: unknown agent {agent_name!r}")
        if type_name not in types:
            problems.append(f"variation.extra_capabilities: no subtask has type {type_name!r}")
    if rules.get("extra_capabilities") and not 0 < float(rules.get("extra_probability", 0.0)) <= 1:
        problems.append("variation.extra_probability: must be in (0, 1] when extra_capabilities are listed")
    return problems
