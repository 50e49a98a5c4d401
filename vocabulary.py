"""The words of the environment, defined once: action types, error codes, event
kinds and grade dimensions.

A leaf module (it imports nothing of this package), so that the wire models,
the client and the runner can use these words without loading the simulation.
Each set is a ``Literal`` type, and its tuple of words in order is read from
that type: the core's enums (``ActionType``, ``ErrorCode``), the wire models'
``Literal`` fields and the event log are built from them.
"""

from __future__ import annotations

from typing import Literal, get_args

ActionTypeName = Literal["delegate", "dispatch", "retry", "wait", "synthesize", "abort"]

# Why an action was invalid (the ``code`` of an error record and of ``penalty.<code>``).
ErrorCodeName = Literal[
    "unknown_action",
    "missing_field",
    "unknown_subtask",
    "unknown_agent",
    "not_ready",  # dependencies not completed: a dependency violation
    "already_running",
    "already_completed",
    "not_failed",  # retry of a subtask that has not failed
    "is_failed",  # delegate of a failed subtask: use retry
    "not_running",
    "agent_busy",
    "agent_offline",
    "capability_mismatch",
    "capacity_exceeded",
    "duplicate_subtask",
    "duplicate_agent",
    "no_free_agent",
    "empty_dispatch",
    "work_remaining",  # synthesize before all subtasks are completed
    "nothing_to_wait_for",  # no longer given: a wait is always accepted while the episode runs
    "episode_over",
]

# The kinds of the event log's rows (their fields: server/core/eventlog.py).
EventKindName = Literal[
    "delegated",
    "completed",
    "failed",
    "aborted",
    "deadline_missed",
    "invalid_action",
    "waited",
    "agent_offline",
    "agent_online",
    "speed_changed",
    "capacity_changed",
    "synthesized",
    "episode_end",
]

# The dimensions of a scenario grade (their formulas: server/core/grading.py).
GradeDimensionName = Literal[
    "completion",
    "recovery",
    "recovery_speed",
    "error_classification",
    "parallelism",
    "cost_efficiency",
    "budget",
    "deadlines",
    "time_efficiency",
    "conflict_handling",
    "patience",
    "pillar_balance",
    "valid_actions",
]

# The parts of the arena's benchmark score (server/core/arena.py).
ArenaGradeDimensionName = Literal["completion", "on_time", "makespan"]

# What the per-step reward is, chosen at reset (server/core/rewards.py): the
# family's shaped table, the change of the grade (summing to it), the grade at the end,
# or (canvas tasks only) the published reward -1 + S + C*[S = 1] at the end.
RewardModeName = Literal["shaped", "grade", "sparse", "published"]

# The canvas family (server/core/canvas/): the policy edits a workflow of operators,
# executes it and finishes with an answer. Its actions, written as typed JSON (``xml``
# carries the published XML form as text) ...
CanvasActionTypeName = Literal["add", "delete", "modify", "set_prompt", "execute", "finish", "xml"]

# ... why a canvas action was refused (it changed nothing) ...
CanvasErrorCodeName = Literal[
    "unknown_action",
    "missing_field",
    "unknown_operator",
    "unknown_structure",
    "bad_structure",
    "unknown_target",
    "not_an_operator",
    "unknown_prompt_style",
    "canvas_full",
    "empty_canvas",
    "unchanged",
    "over_budget",
    "bad_xml",
    "episode_over",
]

# ... the kinds of its event log's rows ...
CanvasEventKindName = Literal["edited", "invalid_action", "executed", "finished", "episode_end"]

# ... and the dimensions of its grade (server/core/canvas/grade.py).
CanvasGradeDimensionName = Literal["correctness", "cost", "latency", "valid_actions"]

ACTION_TYPES: tuple[ActionTypeName, ...] = get_args(ActionTypeName)
ERROR_CODES: tuple[ErrorCodeName, ...] = get_args(ErrorCodeName)
EVENT_KINDS: tuple[EventKindName, ...] = get_args(EventKindName)
GRADE_DIMENSIONS: tuple[GradeDimensionName, ...] = get_args(GradeDimensionName)
ARENA_GRADE_DIMENSIONS: tuple[ArenaGradeDimensionName, ...] = get_args(ArenaGradeDimensionName)
REWARD_MODES: tuple[RewardModeName, ...] = get_args(RewardModeName)
CANVAS_ACTION_TYPES: tuple[CanvasActionTypeName, ...] = get_args(CanvasActionTypeName)
CANVAS_ERROR_CODES: tuple[CanvasErrorCodeName, ...] = get_args(CanvasErrorCodeName)
CANVAS_EVENT_KINDS: tuple[CanvasEventKindName, ...] = get_args(CanvasEventKindName)
CANVAS_GRADE_DIMENSIONS: tuple[CanvasGradeDimensionName, ...] = get_args(CanvasGradeDimensionName)
