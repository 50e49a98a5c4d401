"""Every word of the environment has one home (vocabulary.py): the core, the
wire models and the dashboard use the same words."""

from __future__ import annotations

from typing import get_args

from workflow_orchestrator import models, vocabulary
from workflow_orchestrator.server.core.actions import ActionType, ErrorCode
from workflow_orchestrator.server.core.arena import BENCHMARK_WEIGHTS
from workflow_orchestrator.server.core.eventlog import FIELDS
from workflow_orchestrator.server.core.grading import GATED_DIMENSIONS


def test_the_wire_action_types_are_the_cores() -> None:
    wire = get_args(models.ActionType)
    assert wire == tuple(t.value for t in ActionType) == vocabulary.ACTION_TYPES
    # A wire action is a workflow action or a canvas action (the canvas family's words).
    workflow, canvas = get_args(models.WorkflowAction.model_fields["action_type"].annotation)
    assert get_args(workflow) == wire and get_args(canvas) == vocabulary.CANVAS_ACTION_TYPES


def test_the_core_enums_are_built_from_the_vocabulary() -> None:
    assert [t.name for t in ActionType] == [w.upper() for w in vocabulary.ACTION_TYPES]
    assert tuple(c.value for c in ErrorCode) == vocabulary.ERROR_CODES
    assert ErrorCode.NOT_READY == "not_ready" and ActionType.DELEGATE == "delegate"


def test_the_event_log_kinds_and_grade_dimensions_are_the_vocabularys() -> None:
    assert tuple(FIELDS) == vocabulary.EVENT_KINDS
    assert GATED_DIMENSIONS <= set(vocabulary.GRADE_DIMENSIONS)
    assert tuple(BENCHMARK_WEIGHTS) == vocabulary.ARENA_GRADE_DIMENSIONS


def test_the_dashboard_offers_every_action_type() -> None:
    from workflow_orchestrator.server.dashboard.session import ACTION_KINDS

    assert sorted(ACTION_KINDS) == sorted(vocabulary.ACTION_TYPES)
