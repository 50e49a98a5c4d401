"""Wire types: what crosses HTTP and WebSocket, validated with pydantic.

The action, observation and state models extend openenv's base types so
that openenv's clients and schema tooling understand them. The server builds
each observation once, as plain JSON data from the core, and serialises it
once; these models describe that data (for ``/schema`` and the OpenAPI
document) and give the Python client typed results.

Every string and list a client can send has a length limit, and every number
a range, so that bad input gets a 4xx that says what is wrong.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Required

from openenv.core.env_server.types import Action, Observation, State
from pydantic import BaseModel, ConfigDict, Field, field_validator, with_config
from typing_extensions import TypedDict

from .vocabulary import ActionTypeName, CanvasActionTypeName, RewardModeName

# Limits on client input. The seed bound is the task registry's MAX_SEED
# (tests check that they agree); the wire layer repeats it so that a client
# importing these models does not import the simulation.
MAX_SEED = 2**31 - 1
MAX_ID_LENGTH = 64
MAX_BATCH = 64
MAX_WORKER_COUNT = 64
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"

# The action types, as the vocabulary defines them (a Literal: pydantic checks the word).
ActionType = ActionTypeName
# The canvas family's action types (vocabulary.CanvasActionTypeName); a wire action is either.
CanvasActionType = CanvasActionTypeName
MAX_CANVAS_TEXT = 4096
MAX_STRUCTURE = 8

_Identifier = Field(min_length=1, max_length=MAX_ID_LENGTH)


# --------------------------------------------------------------------------- actions


class Assignment(BaseModel):
    """One subtask of a ``dispatch``; without ``agent_name`` the server picks an idle capable agent."""

    model_config = ConfigDict(extra="forbid")

    subtask_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    agent_name: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)


class WorkflowAction(Action):
    """One decision of the orchestrating policy.

    ``delegate`` (subtask_id, agent_name); ``dispatch`` (``assignments``, or
    ``task_ids`` to let the server pick agents); ``retry`` (a failed subtask,
    optionally with agent_name); ``wait``; ``synthesize`` (ends the episode
    once all required work is done); ``abort`` (subtask_id of a running
    subtask). Invalid decisions are not rejected here: they reach the episode,
    cost time, and come back as structured errors in the observation.

    Canvas tasks: ``add`` (``operator``, or ``structure`` parallel, conditional
    or loop with ``operators`` and a loop's ``count``; optional ``position`` and
    ``prompt``), ``delete`` (``target``), ``modify`` (``target``, ``operator`` or
    ``operators``, ``count``), ``set_prompt`` (``target``, ``prompt``),
    ``execute``, ``finish`` (optional ``answer``), and ``xml`` (``text``: the
    published XML form of any of them).
    """

    action_type: ActionType | CanvasActionType = Field(description="Which decision this is.")
    subtask_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    agent_name: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    assignments: list[Assignment] | None = Field(default=None, max_length=MAX_BATCH)
    task_ids: list[str] | None = Field(
        default=None,
        max_length=MAX_BATCH,
        description="dispatch shorthand: subtask ids, each given to an idle capable agent.",
    )
    operator: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    structure: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    operators: list[Annotated[str, Field(max_length=MAX_ID_LENGTH)]] | None = Field(
        default=None, max_length=MAX_STRUCTURE
    )
    count: int | None = Field(default=None, ge=0, le=64, strict=True)
    position: int | None = Field(default=None, ge=0, le=64, strict=True)
    target: int | None = Field(default=None, ge=0, le=64, strict=True)
    prompt: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    answer: str | None = Field(default=None, max_length=MAX_CANVAS_TEXT)
    text: str | None = Field(default=None, max_length=MAX_CANVAS_TEXT, description="xml: the published XML form.")

    def to_core(self) -> dict[str, Any]:
        """The plain mapping the simulation core accepts."""
        core: dict[str, Any] = {"action_type": self.action_type}
        if self.subtask_id is not None:
            core["subtask_id"] = self.subtask_id
        if self.agent_name is not None:
            core["agent_name"] = self.agent_name
        if self.assignments is not None:
            core["assignments"] = [{"subtask_id": a.subtask_id, "agent_name": a.agent_name} for a in self.assignments]
        if self.task_ids is not None:
            core["task_ids"] = list(self.task_ids)
        for name in _CANVAS_FIELDS:
            value = getattr(self, name)
            if value is not None:
                core[name] = list(value) if name == "operators" else value
        return core


_CANVAS_FIELDS: tuple[str, ...] = (
    "operator",
    "structure",
    "operators",
    "count",
    "position",
    "target",
    "prompt",
    "answer",
    "text",
)


# --------------------------------------------------------------------------- observation


# Views inside the observation. They are TypedDicts, not models: the server
# sends the core's plain dicts as they are, and a client validating them gets
# dicts back (fast), with the schema still saying what each key is. Keys the
# core adds later pass through (extra="allow").


@with_config(ConfigDict(extra="allow"))
class FailureView(TypedDict, total=False):
    agent: str
    kind: str  # "transient", "permanent" or "aborted"
    cause: str
    at: float


@with_config(ConfigDict(extra="allow"))
class SubtaskView(TypedDict, total=False):
    id: Required[str]
    type: str
    status: Required[str]  # pending, ready, in_progress, completed, failed
    depends_on: list[str]
    deadline: float | None
    priority: float
    work: float
    tags: list[str]
    assigned_agent: str | None
    time_left: float | None
    attempts: int
    failures: list[FailureView]
    completed_at: float | None
    completed_by: str | None


@with_config(ConfigDict(extra="allow"))
class AgentView(TypedDict, total=False):
    name: Required[str]
    status: Required[str]  # idle, working, offline
    capabilities: list[str]
    speed: float
    cost: float
    reliability: float
    current_task: str | None
    time_left: float | None


@with_config(ConfigDict(extra="allow"))
class LegalAction(TypedDict, total=False):
    action_type: Required[str]
    subtask_id: str
    agent_name: str


@with_config(ConfigDict(extra="allow"))
class ActionErrorInfo(TypedDict, total=False):
    """Why an action was invalid: a stable code and a human-readable message."""

    code: Required[str]
    message: str


class GradeResult(BaseModel):
    """The terminal grade of an episode: a score in [0, 1] with its breakdown."""

    model_config = ConfigDict(extra="allow")

    score: float
    breakdown: dict[str, float] = Field(default_factory=dict)
    weights: dict[str, float] = Field(default_factory=dict)
    counts: dict[str, Any] = Field(default_factory=dict)
    finished: bool = True
    normalized_score: float | None = None


class WorkflowObservation(Observation):
    """What the policy sees after each reset and step.

    ``reward`` is the shaped, unclamped step reward with its channels in
    ``reward_breakdown``. ``terminated`` (the workflow ended) is distinct from
    ``truncated`` (time or step limit ran out); ``done`` is either. ``grade``
    is present once the episode is done. ``episode_id`` names the episode for
    ``/step``, ``/state``, ``/grader`` and ``/episodes/{id}``.
    """

    # The core may add keys for some task families (the arena): accept them
    # rather than fail a client that is older than the server.
    model_config = ConfigDict(extra="allow")

    episode_id: str | None = None
    task_id: str = ""
    seed: int | None = None
    time_model: str = "tick"
    step_count: int = 0
    time_used: float = 0
    time_limit: float | None = None
    time_remaining: float | None = None
    step_limit: int | None = None
    capacity: int = 0
    active_count: int = 0
    budget: float | None = None
    budget_used: float = 0.0
    budget_remaining: float | None = None
    completed_count: int = 0
    subtask_count: int = 0
    critical_path_length: float | None = None
    subtasks: list[SubtaskView] = Field(default_factory=list)
    agents: list[AgentView] = Field(default_factory=list)
    legal_actions: list[LegalAction] = Field(default_factory=list)
    hint: str | None = None
    reward_breakdown: dict[str, float] = Field(default_factory=dict)
    errors: list[ActionErrorInfo] = Field(default_factory=list)
    rules: dict[str, Any] = Field(default_factory=dict)
    terminated: bool = False
    truncated: bool = False
    grade: GradeResult | None = None


class WorkflowState(State):
    """The full state of one episode (``GET /state``, WebSocket ``state``):
    the latest observation, the reward history, the event log and the action trace."""

    model_config = ConfigDict(extra="allow")

    task_id: str | None = None
    seed: int | None = None
    time: float = 0
    done: bool = False
    terminated: bool = False
    truncated: bool = False
    budget_used: float = 0.0
    cumulative_reward: float = 0.0
    rewards: list[float] = Field(default_factory=list)
    observation: dict[str, Any] | None = None
    events: list[dict[str, Any]] = Field(default_factory=list)
    trace: list[dict[str, Any]] = Field(default_factory=list)


# --------------------------------------------------------------------------- requests


class ResetRequest(BaseModel):
    """Start an episode. Every field is optional; ``GET /tasks`` lists the task ids.

    Other keywords are ignored, as openenv's own server ignores the reset
    keywords an environment does not take (harnesses send their own); the
    answer names them in ``observation.metadata.ignored_reset_options``.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"task_id": "easy", "seed": 7}, {}]},
    )

    task_id: str | None = Field(
        default=None, min_length=1, max_length=MAX_ID_LENGTH, description="Default: the first task of GET /tasks."
    )
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    worker_count: int | None = Field(default=None, ge=1, le=MAX_WORKER_COUNT)
    episode_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="Optional name for the new episode; the server makes one up otherwise. A chosen name "
        "needs the episode_secret on every later request.",
    )
    reward_mode: RewardModeName = Field(
        default="shaped",
        description="shaped: the per-step table; grade: the change of the grade as if the episode "
        "ended now (the rewards sum to the grade); sparse: the grade at the last step; published (canvas "
        "tasks): the published reward -1 + S + C*[S = 1] at the last step.",
    )

    @field_validator("seed", "worker_count", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        # JSON true is not the number 1, though Python's bool is an int.
        if isinstance(value, bool):
            raise ValueError("must be an integer, not true or false")
        return value

    def ignored_options(self) -> list[str]:
        """The keywords given that this server does not take (at most 16 named, 64 characters each)."""
        return sorted(str(name)[:MAX_ID_LENGTH] for name in (self.model_extra or {}))[:16]


class StepRequest(BaseModel):
    """Continue the episode ``episode_id`` (from ``/reset``) with one action."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"episode_id": "3f2a9c1e0b7d4e51", "action": {"action_type": "wait"}}]},
    )

    action: WorkflowAction
    episode_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    expected_step_count: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        strict=True,
        description="Optional: the step_count of the latest observation. Then the step is applied only if the "
        "episode is still there, and sending it again (say, after a lost answer) returns the same answer "
        "instead of stepping twice.",
    )


class GradeRequest(BaseModel):
    """Grade one episode by ``episode_id``, or a task's latest finished episode by ``task_id``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"episode_id": "3f2a9c1e0b7d4e51"}, {"task_id": "easy"}]},
    )

    episode_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    task_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)


# --------------------------------------------------------------------------- responses


class StepResponse(BaseModel):
    """``/reset`` and ``/step``: openenv's envelope around our observation."""

    observation: WorkflowObservation
    reward: float | None = None
    done: bool = False
    episode_secret: str | None = Field(
        default=None,
        description="In the answer to /reset only: the new episode's secret, for the header X-Episode-Secret.",
    )


class GradeResponse(GradeResult):
    """A grade together with the episode it belongs to."""

    episode_id: str
    task_id: str
    seed: int | None = None
    step_count: int = 0


class EpisodeRecord(BaseModel):
    """``GET /episodes/{id}``: the event log and the action trace of one episode."""

    model_config = ConfigDict(extra="allow")

    episode_id: str
    task_id: str
    seed: int | None = None
    done: bool
    step_count: int
    events: list[dict[str, Any]]
    trace: list[dict[str, Any]]


class TaskList(BaseModel):
    """``GET /tasks``: every task with its parameters."""

    tasks: list[dict[str, Any]]


class ErrorResponse(BaseModel):
    """Every 4xx: a stable ``error`` code, a ``message`` that says what to send, and details."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str
    expected: dict[str, Any] | str | None = Field(
        default=None, description="What to send instead: an example body, or the request line of a GET."
    )
    errors: list[dict[str, Any]] | None = None


# --------------------------------------------------------------------------- WebSocket messages
# openenv's session protocol on /ws: {"type": "reset" | "step" | "state" | "close", "data": {...}}.


class ResetMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["reset"]
    data: ResetRequest = Field(default_factory=ResetRequest)


class StepMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["step"]
    data: WorkflowAction


class StateMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["state"]
    data: dict[str, Any] | None = None


class CloseMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["close"]
    data: dict[str, Any] | None = None


# --------------------------------------------------------------------------- batches (WebSocket)
# Many episodes per message on the same /ws connection (server/http/batch.py has the wire format).

# Episodes in one batch: workflow_orchestrator.vector.MAX_EPISODES (a test checks that they agree).
MAX_EPISODES = 256
_Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
_WorkerCount = Annotated[int, Field(ge=1, le=MAX_WORKER_COUNT)]


class BatchResetRequest(BaseModel):
    """Start a batch of episodes on this connection (replacing any earlier batch).

    ``task_ids`` lists one task per episode, or ``task_id`` with ``num_envs``
    names one task for all. ``seed``: episode ``i`` plays ``seed + i``, or a list
    gives one seed per episode. With ``autoreset`` an episode that ends starts
    the next one at once, with its seed plus the number of episodes.
    """

    model_config = ConfigDict(extra="forbid")

    task_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    num_envs: int | None = Field(default=None, ge=1, le=MAX_EPISODES)
    task_ids: list[Annotated[str, _Identifier]] | None = Field(default=None, min_length=1, max_length=MAX_EPISODES)
    seed: _Seed | list[_Seed] = 0
    worker_count: _WorkerCount | None | list[_WorkerCount | None] = None
    autoreset: bool = True
    reward_mode: RewardModeName = "shaped"
    # The replies' observation form (server/http/batch.py): full dicts, none, or the Gymnasium encoding.
    observation: Literal["full", "none", "encoded"] = "full"


class BatchStepRequest(BaseModel):
    """One action per episode of the batch, in the order of the batch."""

    model_config = ConfigDict(extra="forbid")

    actions: list[WorkflowAction] = Field(min_length=1, max_length=MAX_EPISODES)


class BatchResetMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["batch_reset"]
    data: BatchResetRequest


class BatchStepMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["batch_step"]
    data: BatchStepRequest


IncomingMessage = Annotated[
    ResetMessage | StepMessage | StateMessage | CloseMessage | BatchResetMessage | BatchStepMessage,
    Field(discriminator="type"),
]
