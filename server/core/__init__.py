"""The simulation core: pure Python, no HTTP, no pydantic, no networkx.

Nothing here imports from outside the core (the in-process API that resolves
tasks by name is ``server/inprocess.py``, above the task registry).
"""

from .actions import Action, ActionError, ActionType, Assignment, ErrorCode, parse_action
from .compiled import CompiledTask
from .dag import DagIndex, WorkflowDefinitionError, validate_task
from .episode import Episode
from .eventlog import EventLog
from .families import (
    FAMILIES,
    build_observation,
    compile_task,
    family_named,
    family_of_observation,
    grade_episode,
    new_episode,
    register_family,
    render_text,
)
from .family import Family
from .model import AgentSpec, EventKind, ScheduledEvent, SubtaskSpec, TaskSpec, TimeModel

__all__ = [
    "Action",
    "ActionError",
    "ActionType",
    "AgentSpec",
    "Assignment",
    "CompiledTask",
    "DagIndex",
    "Episode",
    "ErrorCode",
    "EventKind",
    "EventLog",
    "FAMILIES",
    "Family",
    "ScheduledEvent",
    "SubtaskSpec",
    "TaskSpec",
    "TimeModel",
    "WorkflowDefinitionError",
    "build_observation",
    "compile_task",
    "family_named",
    "family_of_observation",
    "grade_episode",
    "new_episode",
    "parse_action",
    "register_family",
    "render_text",
    "validate_task",
]
