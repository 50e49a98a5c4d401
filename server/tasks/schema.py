"""The schema of a scenario file, checked when the file is loaded.

Pydantic is used here, at load time only; the core receives plain frozen
dataclasses. Unknown fields are errors, so a typo cannot silently drop a rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from ...vocabulary import GRADE_DIMENSIONS
from ..core.dag import WorkflowDefinitionError, validate_task
from ..core.model import (
    AgentSpec,
    ConflictSpec,
    EventKind,
    PatienceSpec,
    ScheduledEvent,
    SubtaskSpec,
    TaskSpec,
    TimeModel,
)
from .variation import VARIATION, check_variation


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubtaskFile(_Strict):
    id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=64)
    depends_on: list[str] = []
    work: int = Field(default=1, ge=1)
    priority: int = Field(default=1, ge=1)
    deadline: int | None = Field(default=None, ge=1)
    tags: list[str] = []


class AgentFile(_Strict):
    name: str = Field(min_length=1, max_length=64)
    capabilities: list[str] = Field(min_length=1)
    speed: int = Field(default=1, ge=1)
    cost: float = Field(default=1.0, ge=0)
    reliability: float = Field(default=1.0, ge=0, le=1)
    never_succeeds: list[str] = []
    fails_first: dict[str, int] = {}


class EventFile(_Strict):
    at: int = Field(ge=1)
    kind: Literal["offline", "online", "speed", "capacity"]
    agent: str | None = None
    value: int | None = None


class ConflictFile(_Strict):
    at: str
    tracks: list[str] = Field(min_length=2)


class PatienceFile(_Strict):
    after: str
    waits: int = Field(ge=1)


class GradingFile(_Strict):
    activity_gate: float = Field(default=1.0, gt=0, le=1)
    weights: dict[str, float]


class VariationFile(_Strict):
    """Seeded variation (``variation.py``): what a seed other than the canonical one may change."""

    agent_speeds: list[PositiveInt] = Field(default=[], max_length=8)
    extra_capabilities: list[tuple[str, str]] = Field(default=[], max_length=32)
    extra_probability: float = Field(default=0.0, ge=0, le=1)


class ScenarioFile(_Strict):
    id: str = Field(min_length=1, max_length=64)
    title: str
    description: str
    difficulty: str
    time_model: Literal["tick", "event"] = "tick"
    time_limit: int = Field(ge=1)
    capacity: int = Field(ge=1)
    budget: float | None = Field(default=None, gt=0)
    canonical_seed: int = Field(default=0, ge=0)
    pillars: list[str] = []
    grading: GradingFile
    rewards: dict[str, float] = {}
    patience: PatienceFile | None = None
    conflicts: list[ConflictFile] = []
    events: list[EventFile] = []
    subtasks: list[SubtaskFile] = Field(min_length=1)
    agents: list[AgentFile] = Field(min_length=1)
    variation: VariationFile | None = None


def _variation_rules(variation: VariationFile) -> dict[str, object]:
    rules: dict[str, object] = {}
    if variation.agent_speeds:
        rules["agent_speeds"] = list(variation.agent_speeds)
    if variation.extra_capabilities:
        rules["extra_capabilities"] = [list(pair) for pair in variation.extra_capabilities]
        rules["extra_probability"] = variation.extra_probability
    return rules


def _format_validation_error(source: str, error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problems.append(f"{location}: {item['msg']}")
    return problems


def task_from_file(data: dict[str, object], source: str | Path) -> TaskSpec:
    """Validate a parsed scenario file and turn it into a :class:`TaskSpec`.

    Raises :class:`WorkflowDefinitionError` naming the file, the field and
    the problem, listing every problem found.
    """
    source = str(source)
    try:
        parsed = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        raise WorkflowDefinitionError(source, _format_validation_error(source, exc)) from None
    problems: list[str] = []
    for name in parsed.grading.weights:
        if name not in GRADE_DIMENSIONS:
            problems.append(f"grading.weights.{name}: unknown grade dimension; known: {', '.join(GRADE_DIMENSIONS)}")
    for name in parsed.rewards:
        from ..core.rewards import DEFAULT_REWARD_TABLE  # local: only needed to check names

        if name not in DEFAULT_REWARD_TABLE and not name.startswith("penalty."):
            problems.append(f"rewards.{name}: unknown reward channel")
    task = TaskSpec(
        task_id=parsed.id,
        title=parsed.title,
        description=parsed.description,
        family="scenario",
        difficulty=parsed.difficulty,
        time_model=TimeModel(parsed.time_model),
        time_limit=parsed.time_limit,
        capacity=parsed.capacity,
        budget=parsed.budget,
        subtasks=tuple(
            SubtaskSpec(
                id=s.id,
                type=s.type,
                depends_on=tuple(s.depends_on),
                work=s.work,
                priority=s.priority,
                deadline=s.deadline,
                tags=tuple(s.tags),
            )
            for s in parsed.subtasks
        ),
        agents=tuple(
            AgentSpec(
                name=a.name,
                capabilities=frozenset(a.capabilities),
                speed=a.speed,
                cost=a.cost,
                reliability=a.reliability,
                never_succeeds=frozenset(a.never_succeeds),
                fails_first=dict(a.fails_first),
            )
            for a in parsed.agents
        ),
        events=tuple(
            ScheduledEvent(at=e.at, kind=EventKind(e.kind), agent=e.agent, value=e.value) for e in parsed.events
        ),
        conflicts=tuple(ConflictSpec(at=c.at, tracks=tuple(c.tracks)) for c in parsed.conflicts),
        patience=(PatienceSpec(after=parsed.patience.after, waits=parsed.patience.waits) if parsed.patience else None),
        pillars=tuple(parsed.pillars),
        grade_weights=dict(parsed.grading.weights),
        activity_gate=parsed.grading.activity_gate,
        reward_table=dict(parsed.rewards),
        canonical_seed=parsed.canonical_seed,
        step_limit=None,
        parameters={} if parsed.variation is None else {VARIATION: _variation_rules(parsed.variation)},
    )
    for pillar in task.pillars:
        if not any(pillar in s.tags for s in task.subtasks):
            problems.append(f"pillars: pillar {pillar!r} tags no subtask")
    if "pillar_balance" in task.grade_weights and not task.pillars:
        problems.append("grading.weights.pillar_balance: the task declares no pillars")
    problems.extend(validate_task(task))
    if parsed.variation is not None:
        problems.extend(check_variation(task, task.parameters[VARIATION]))  # type: ignore[arg-type]
    if problems:
        raise WorkflowDefinitionError(source, problems)
    return task
