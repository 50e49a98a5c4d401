"""The simulation core: pure Python, no HTTP, no pydantic, no networkx."""

from ...vocabulary import GRADE_DIMENSIONS
from .actions import Action, ActionError, ActionType, Assignment, ErrorCode, parse_action
from .dag import DagIndex, WorkflowDefinitionError, validate_task
from .env import WorkflowEnv
from .episode import Episode
from .eventlog import EventLog
from .grading import grade_episode
from .model import AgentSpec, EventKind, ScheduledEvent, SubtaskSpec, TaskSpec, TimeModel
from .observation import build_observation, render_text

__all__ = [
    "Action",
    "ActionError",
    "ActionType",
    "AgentSpec",
    "Assignment",
    "DagIndex",
    "Episode",
    "ErrorCode",
    "EventKind",
    "EventLog",
    "GRADE_DIMENSIONS",
    "ScheduledEvent",
    "SubtaskSpec",
    "TaskSpec",
    "TimeModel",
    "WorkflowDefinitionError",
    "WorkflowEnv",
    "build_observation",
    "grade_episode",
    "parse_action",
    "render_text",
    "validate_task",
]
