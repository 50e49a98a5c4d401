"""The Gymnasium interface: one ``gymnasium.Env`` per task, registered ids, action masks.

    >>> import gymnasium
    >>> import workflow_orchestrator.gym_env  # registers the ids
    >>> env = gymnasium.make("WorkflowOrchestrator/arena-hard-v0")
    >>> observation, info = env.reset(seed=7)
    >>> action = int(info["action_mask"].nonzero()[0][0])
    >>> observation, reward, terminated, truncated, info = env.step(action)

``gymnasium.make("workflow_orchestrator.gym_env:WorkflowOrchestrator/arena-hard-v0")``
imports this module by itself. Every task of a workflow of named agents (not the canvas
tasks, which have their own action space) has an id: ``WorkflowOrchestrator/<task>-v0``
with the task id's ``/`` written ``-`` (``easy-v0``, ``arena-medium-v0``,
``generated-hard-v0``, ...); :func:`env_ids` lists them.

**Seeding.** ``reset(seed=s)`` plays the task with seed ``s`` (the same episode as
``WorkflowEnv().reset(task, seed=s)``) and seeds the environment's generator;
``reset()`` without a seed plays a seed drawn from that generator, from the
training seeds, or from the held-out evaluation seeds when the environment was
made with ``seeds="evaluation"``. No other path seeds anything.

**Observation.** ``observation_mode="vector"`` (the default): a fixed-size
``float32`` vector, the same layout for every task of a family (padded to the
family's largest task; :class:`Layout`), all values in [-4, 4]:

* globals: time used, time remaining and the critical path left (as fractions of
  the episode's time scale: its time limit, else twice its initial critical
  path), whether a time limit exists, steps used of the step limit, free and
  busy capacity, budget used, completed fraction, all done, monitoring waits
  still wanted, usable workers;
* per subtask slot: present, status (one-hot: pending, ready, in progress,
  completed, failed), duration, priority, deadline, slack, time left,
  attempts, failures, last failure permanent, longest chain of work from it,
  subtasks downstream, type (one-hot);
* per agent slot: present, status (one-hot: idle, working, offline), speed,
  cost, reliability, time left, capabilities (multi-hot);
* scenario and generated families: per (subtask, agent) pair, whether that
  agent failed that subtask permanently.

Slots follow the order of ``observation["subtasks"]`` and ``observation["agents"]``.
``observation_mode="text"``: the text rendering an LLM reads (``render_text``).
The observation as the core gives it (a dict) is ``env.unwrapped.observation``.

**Action.** ``Discrete``: on the arena, ``dispatch`` of subtask slot ``i`` (``i``)
and ``wait`` (the last index); elsewhere, subtask slot ``i`` to agent slot ``j``
(``i * max_agents + j``: a ``retry`` when the subtask failed, else a
``delegate``), ``abort`` of slot ``i``, ``wait`` and ``synthesize``.
``info["action_mask"]`` (and ``action_masks()``, which sb3-contrib's MaskablePPO
calls) marks exactly the actions in ``legal_actions``; any other index is
played as what it names, and the core answers it as an invalid action (its
error code and penalty), as it would over the wire.

**Reward.** The core's reward of the step, by ``reward_mode`` (a constructor
argument, or ``reset(options={"reward_mode": ...})`` for one episode):
``shaped`` (default; unclamped), ``grade`` (the change of the grade, summing to
it over the episode) or ``sparse`` (the grade at the last step).

**Termination.** ``terminated`` when the workflow ended (synthesized, or all
done on the arena), ``truncated`` when the time or step limit ran out. The
last step's ``info["score"]`` is the grade's score, in [0, 1]; the whole grade
is ``env.unwrapped.observation["grade"]``.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium
import numpy as np
from gymnasium import spaces

from workflow_orchestrator import WorkflowEnv
from workflow_orchestrator.server.core import render_text
from workflow_orchestrator.server.core.rewards import check_reward_mode
from workflow_orchestrator.server.core.scenario import WorkflowFamily
from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS, MAX_WORKERS, PRESETS, TRAINING_SEEDS
from workflow_orchestrator.server.tasks.generated import LEVELS, TYPE_VOCABULARY

NAMESPACE = "WorkflowOrchestrator"
VERSION = 0
FEATURE_LIMIT = 4.0
TEXT_MAX_LENGTH = 65_536
SUBTASK_STATUS = ("pending", "ready", "in_progress", "completed", "failed")
AGENT_STATUS = ("idle", "working", "offline")
# A status's column in a subtask's or agent's features (after the "present" column).
SUBTASK_STATUS_INDEX = {status: 1 + k for k, status in enumerate(SUBTASK_STATUS)}
AGENT_STATUS_INDEX = {status: 1 + k for k, status in enumerate(AGENT_STATUS)}
GLOBAL_FEATURES = 13
SUBTASK_FEATURES = 1 + 5 + 11  # present, status one-hot, the scalars; the type one-hot follows
AGENT_FEATURES = 1 + 3 + 4  # present, status one-hot, the scalars; the capabilities follow


@dataclass(frozen=True, slots=True)
class Layout:
    """The padded sizes of a family's observation and action space."""

    max_subtasks: int
    max_agents: int
    types: tuple[str, ...]
    arena: bool

    @property
    def observation_size(self) -> int:
        t = len(self.types)
        size = GLOBAL_FEATURES + self.max_subtasks * (SUBTASK_FEATURES + t) + self.max_agents * (AGENT_FEATURES + t)
        if not self.arena:
            size += self.max_subtasks * self.max_agents
        return size

    @property
    def action_count(self) -> int:
        if self.arena:
            return self.max_subtasks + 1
        return self.max_subtasks * self.max_agents + self.max_subtasks + 2


def family_layout(task_id: str, registry: Any) -> Layout:
    """The layout shared by every task of ``task_id``'s family."""
    prefix = task_id.partition("/")[0] if "/" in task_id else ""
    if prefix == "arena":
        return Layout(max(p.subtask_range[1] for p in PRESETS.values()), MAX_WORKERS, ("work",), True)
    if prefix == "generated":
        return Layout(
            max(level.subtask_range[1] for level in LEVELS.values()),
            max(level.agent_count for level in LEVELS.values()),
            tuple(TYPE_VOCABULARY),
            False,
        )
    # The hand-written scenarios: sized to the largest of them.
    scenarios = [registry.resolve(t).spec for t in registry.task_ids() if "/" not in t]
    types = sorted({s.type for spec in scenarios for s in spec.subtasks})
    return Layout(
        max(len(spec.subtasks) for spec in scenarios),
        max(len(spec.agents) for spec in scenarios),
        tuple(types),
        False,
    )


def env_id(task_id: str) -> str:
    return f"{NAMESPACE}/{task_id.replace('/', '-')}-v{VERSION}"


# Tasks whose spaces no family layout holds: arena/expert (up to 120 subtasks, and its
# choice of worker is no part of the arena's dispatch space) and generated/expert (up to
# 120 subtasks and 8 agents, against the generated layout's 14 and 6).
NOT_GYM_TASKS = ("arena/expert", "generated/expert")


def gym_task_ids(registry: Any = None) -> list[str]:
    """The tasks this interface plays: those whose episode is a workflow of named
    agents (the scenario and arena rules), but :data:`NOT_GYM_TASKS`; a family with
    its own episode type (the canvas) has its own action space."""
    from workflow_orchestrator.server.tasks import default_registry

    registry = registry if registry is not None else default_registry()
    return [
        t
        for t in registry.task_ids()
        if t not in NOT_GYM_TASKS and isinstance(registry.resolve(t).compiled.family, WorkflowFamily)
    ]


def env_ids() -> list[str]:
    return [env_id(t) for t in gym_task_ids()]


def register_envs() -> None:
    """Register ``WorkflowOrchestrator/<task>-v0`` for every task of :func:`gym_task_ids` (done on import)."""
    for task_id in gym_task_ids():
        name = env_id(task_id)
        if name not in gymnasium.registry:
            gymnasium.register(id=name, entry_point=f"{__name__}:WorkflowGymEnv", kwargs={"task_id": task_id})


class WorkflowGymEnv(gymnasium.Env[Any, np.int64]):
    """One task as a ``gymnasium.Env`` (see the module docstring for the spaces)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        task_id: str = "arena/medium",
        *,
        worker_count: int | None = None,
        observation_mode: str = "vector",
        seeds: str = "training",
        render_mode: str | None = None,
        registry: Any = None,
        reward_mode: str = "shaped",
    ) -> None:
        self.reward_mode = check_reward_mode(reward_mode)
        if observation_mode not in ("vector", "text"):
            raise ValueError(f"observation_mode must be 'vector' or 'text', got {observation_mode!r}")
        if seeds not in ("training", "evaluation"):
            raise ValueError(f"seeds must be 'training' or 'evaluation', got {seeds!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.core = WorkflowEnv(registry)
        # Fails early on a bad task.
        resolved = self.core.registry.resolve(task_id, seed=None, worker_count=worker_count)
        if not isinstance(resolved.compiled.family, WorkflowFamily):
            family = resolved.spec.family
            raise ValueError(f"task {task_id!r} ({family}) has no workflow of named agents to play as a gymnasium.Env")
        self.task_id = task_id
        self.worker_count = worker_count
        self.observation_mode = observation_mode
        self.seed_range = TRAINING_SEEDS if seeds == "training" else EVALUATION_SEEDS
        self.render_mode = render_mode
        self.layout = family_layout(task_id, self.core.registry)
        self.action_space = spaces.Discrete(self.layout.action_count)
        if observation_mode == "vector":
            self.observation_space: spaces.Space[Any] = spaces.Box(
                -FEATURE_LIMIT, FEATURE_LIMIT, shape=(self.layout.observation_size,), dtype=np.float32
            )
        else:
            self.observation_space = spaces.Text(TEXT_MAX_LENGTH, charset=string.printable)
        self.observation: dict[str, Any] = {}
        self.task_seed: int | None = None
        self._encoder: _Encoder | None = None
        self._mask = np.zeros(self.layout.action_count, dtype=bool)

    # ------------------------------------------------------------------ API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(self.seed_range.start, self.seed_range.stop))
        reward_mode = check_reward_mode((options or {}).get("reward_mode", self.reward_mode))
        observation = self.core.reset(self.task_id, seed=seed, worker_count=self.worker_count, reward_mode=reward_mode)
        self.task_seed = seed
        self._encoder = _Encoder(self.layout, observation)
        return self._answer(observation), self._info(observation)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        encoder = self._require_encoder()
        observation = self.core.step(encoder.decode(int(action), self.observation))
        answer = self._answer(observation)
        info = self._info(observation)
        if observation["done"]:
            # The score alone: a nested grade would not stack in gymnasium's vector envs.
            info["score"] = observation["grade"]["score"]
        return (
            answer,
            float(observation["reward"]),
            bool(observation["terminated"]),
            bool(observation["truncated"]),
            info,
        )

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return render_text(self.observation)
        return None

    def action_masks(self) -> np.ndarray:
        """The legal actions now, as sb3-contrib's MaskablePPO reads them."""
        return self._mask.copy()

    def decode_action(self, index: int) -> dict[str, Any]:
        """The core action that index ``index`` plays now."""
        return self._require_encoder().decode(index, self.observation)

    def action_index(self, action: dict[str, Any]) -> int:
        """The index of a core action (one listed in ``legal_actions``)."""
        return self._require_encoder().index(action)

    # ------------------------------------------------------------- helpers

    def _answer(self, observation: dict[str, Any]) -> Any:
        self.observation = observation
        encoder = self._require_encoder()
        self._mask = encoder.mask(observation)
        if self.observation_mode == "text":
            return render_text(observation)
        return encoder.encode(observation)

    def _info(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {"action_mask": self._mask.copy(), "task_seed": self.task_seed, "errors": observation["errors"]}

    def _require_encoder(self) -> _Encoder:
        if self._encoder is None:
            raise RuntimeError("call reset() before step()")
        return self._encoder


class _Encoder:
    """One episode's slots (fixed at reset: the subtasks and agents never change)
    and its static per-subtask facts."""

    def __init__(self, layout: Layout, first: dict[str, Any]) -> None:
        subtasks = first["subtasks"]
        agents = first["agents"]
        if len(subtasks) > layout.max_subtasks or len(agents) > layout.max_agents:
            raise ValueError(
                f"task {first['task_id']!r} has {len(subtasks)} subtasks and {len(agents)} agents; "
                f"this layout holds {layout.max_subtasks} and {layout.max_agents}"
            )
        self.layout = layout
        self.subtask_slot = {s["id"]: i for i, s in enumerate(subtasks)}
        self.agent_slot = {a["name"]: j for j, a in enumerate(agents)}
        self.subtask_ids = [s["id"] for s in subtasks]
        self.agent_names = [a["name"] for a in agents]
        self.type_slot = {t: k for k, t in enumerate(layout.types)}
        # Durations at the fastest capable agent's speed, and the longest chain of them from each subtask.
        fastest: list[int] = []
        for s in subtasks:
            speeds = [a["speed"] for a in agents if s["type"] in a["capabilities"]]
            fastest.append(min(speeds, default=1) * s["work"])
        successors: list[list[int]] = [[] for _ in subtasks]
        for i, s in enumerate(subtasks):
            for dep in s["depends_on"]:
                successors[self.subtask_slot[dep]].append(i)
        tails = [0] * len(subtasks)
        downstream = [0] * len(subtasks)
        reach: list[set[int]] = [set() for _ in subtasks]
        for i in _reverse_topological(successors):
            tails[i] = fastest[i] + max((tails[k] for k in successors[i]), default=0)
            for k in successors[i]:
                reach[i].add(k)
                reach[i] |= reach[k]
            downstream[i] = len(reach[i])
        self.duration = fastest
        self.tail = tails
        self.downstream = downstream
        limit = first["time_limit"]
        self.scale = float(limit) if limit else float(2 * max(1, first["critical_path_length"]))
        self.step_limit = first["step_limit"]
        self.budget = first["budget"]
        patience = (first.get("rules") or {}).get("patience")
        self.patience_waits = patience["waits"] if patience else 0
        self.subtask_width = SUBTASK_FEATURES + len(layout.types)
        self.agent_width = AGENT_FEATURES + len(layout.types)
        self.agents_at = GLOBAL_FEATURES + layout.max_subtasks * self.subtask_width
        self.pairs_at = self.agents_at + layout.max_agents * self.agent_width
        count = layout.action_count
        self.wait_index = count - 1 if layout.arena else count - 2
        self.synthesize_index = None if layout.arena else count - 1
        self.abort_at = layout.max_subtasks * layout.max_agents
        # The column-wise encoding: static columns, then the indices the changing ones need.
        deadlines = [(i, s["deadline"]) for i, s in enumerate(subtasks) if s["deadline"] is not None]
        self.with_deadline = np.array([i for i, _ in deadlines], dtype=np.intp)
        self.deadlines = np.array([d for _, d in deadlines], dtype=np.int64)
        self.deadline_tails = np.array([tails[i] for i, _ in deadlines], dtype=np.int64)
        self.deadline_columns = GLOBAL_FEATURES + self.with_deadline * self.subtask_width + 9
        # The row of the last observation encoded (float64), and the views it shows.
        self.row = self._static_row(first)
        self.seen_subtasks: list[Any] = [None] * len(subtasks)
        self.seen_agents: list[Any] = [None] * len(agents)
        # Legal action objects are shared between observations: their indices, kept with the object.
        self._indices: dict[int, tuple[dict[str, Any], int]] = {}

    # -------------------------------------------------------------- actions

    def index(self, action: dict[str, Any]) -> int:
        kind = action["action_type"]
        if kind == "wait":
            return self.wait_index
        if kind == "synthesize" and self.synthesize_index is not None:
            return self.synthesize_index
        if self.layout.arena and kind == "dispatch" and len(action.get("task_ids") or ()) == 1:
            return self.subtask_slot[action["task_ids"][0]]
        if not self.layout.arena:
            if kind in ("delegate", "retry"):
                return (
                    self.subtask_slot[action["subtask_id"]] * self.layout.max_agents
                    + self.agent_slot[action["agent_name"]]
                )
            if kind == "abort":
                return self.abort_at + self.subtask_slot[action["subtask_id"]]
        raise ValueError(f"action {action!r} has no index in this action space")

    def decode(self, index: int, observation: dict[str, Any]) -> dict[str, Any]:
        layout = self.layout
        if not 0 <= index < layout.action_count:
            raise ValueError(f"action index must be in [0, {layout.action_count}), got {index}")
        if index == self.wait_index:
            return {"action_type": "wait"}
        if index == self.synthesize_index:
            return {"action_type": "synthesize"}
        if layout.arena:
            return {"action_type": "dispatch", "task_ids": [self._subtask_id(index)]}
        if index >= self.abort_at:
            return {"action_type": "abort", "subtask_id": self._subtask_id(index - self.abort_at)}
        i, j = divmod(index, layout.max_agents)
        subtask_id = self._subtask_id(i)
        agent_name = self.agent_names[j] if j < len(self.agent_names) else f"agent_slot_{j}"
        kind = "delegate"
        if i < len(self.subtask_ids) and observation["subtasks"][i]["status"] == "failed":
            kind = "retry"
        return {"action_type": kind, "subtask_id": subtask_id, "agent_name": agent_name}

    def _subtask_id(self, i: int) -> str:
        # A padding slot names no subtask: the core answers unknown_subtask.
        return self.subtask_ids[i] if i < len(self.subtask_ids) else f"subtask_slot_{i}"

    def mask(self, observation: dict[str, Any]) -> np.ndarray:
        mask = np.zeros(self.layout.action_count, dtype=bool)
        known = self._indices
        if len(known) > 8 * self.layout.action_count:  # objects made afresh each step: keep few
            known.clear()
        at = []
        for action in observation["legal_actions"]:
            entry = known.get(id(action))
            if entry is None or entry[0] is not action:
                entry = known[id(action)] = (action, self.index(action))
            at.append(entry[1])
        mask[at] = True
        return mask

    # ---------------------------------------------------------- observation

    def encode(self, observation: dict[str, Any]) -> np.ndarray:
        """The observation as the layout's vector.

        Subtask and agent views are shared between observations while they do not change, so
        the row kept from the last call is rewritten only where a view is another object; the
        globals and the deadline columns (which move with time) are written every time. Values
        are computed in float64 one by one, as they always were, then stored as float32."""
        scale = self.scale
        row = self.row
        now = observation["time_used"]
        capacity = observation["capacity"]
        active = observation["active_count"]
        arena = observation.get("arena")
        row[0] = now / scale
        remaining = observation["time_remaining"]
        row[1] = remaining / scale if remaining is not None else 1.0
        row[3] = observation["step_count"] / self.step_limit if self.step_limit else 0.0
        if arena is not None:
            total = max(1, arena["total_workers"])
            row[4] = arena["free_workers"] / total
            row[12] = arena["effective_workers"] / total
        else:
            row[4] = max(0, capacity - active) / max(1, capacity)
        row[5] = active / max(1, capacity)
        if self.budget:
            row[6] = observation["budget_used"] / self.budget
        count = observation["subtask_count"]
        row[8] = observation["completed_count"] / max(1, count)
        row[9] = observation["critical_path_length"] / scale
        row[10] = 1.0 if observation["completed_count"] == count else 0.0
        if self.patience_waits:
            row[11] = max(0, self.patience_waits - observation["patience_waits"]) / self.patience_waits
        # Subtasks whose view changed.
        seen = self.seen_subtasks
        width = self.subtask_width
        for i, s in enumerate(observation["subtasks"]):
            if s is not seen[i]:
                seen[i] = s
                self._write_subtask(i, GLOBAL_FEATURES + i * width, s)
        # The deadline columns, every time.
        with_deadline = self.with_deadline
        if len(with_deadline):
            until = self.deadlines - now
            columns = self.deadline_columns
            row[columns] = until / scale
            if arena is not None:
                views = arena["subtask_views"]
                row[columns + 1] = np.array([views[i]["slack"] for i in with_deadline], dtype=np.float64) / scale
            else:
                row[columns + 1] = (until - self.deadline_tails) / scale
        # Agents whose view changed.
        seen = self.seen_agents
        width = self.agent_width
        for j, a in enumerate(observation["agents"]):
            if a is not seen[j]:
                seen[j] = a
                at = self.agents_at + j * width
                row[at + 1 : at + 4] = 0.0
                row[at + AGENT_STATUS_INDEX[a["status"]]] = 1.0
                row[at + 4] = a["speed"] / 4.0
                left = a["time_left"]
                row[at + 7] = left / scale if left is not None else 0.0
        vector = row.astype(np.float32)
        np.clip(vector, -FEATURE_LIMIT, FEATURE_LIMIT, out=vector)
        return vector

    def _write_subtask(self, i: int, at: int, s: dict[str, Any]) -> None:
        row = self.row
        row[at + 1 : at + 6] = 0.0
        row[at + SUBTASK_STATUS_INDEX[s["status"]]] = 1.0
        left = s["time_left"]
        row[at + 11] = left / self.scale if left is not None else 0.0
        row[at + 12] = min(s["attempts"], 4) / 4.0
        failures = s["failures"]
        if failures:
            row[at + 13] = min(len(failures), 4) / 4.0
            row[at + 14] = 1.0 if failures[-1]["kind"] == "permanent" else 0.0
        else:
            row[at + 13] = row[at + 14] = 0.0
        if not self.layout.arena:
            pairs = self.pairs_at + i * self.layout.max_agents
            row[pairs : pairs + self.layout.max_agents] = 0.0
            for failure in failures:
                if failure["kind"] == "permanent":
                    failed_on = self.agent_slot.get(failure["agent"])
                    if failed_on is not None:
                        row[pairs + failed_on] = 1.0

    def _static_row(self, first: dict[str, Any]) -> np.ndarray:
        """What every observation of this episode encodes alike (float64)."""
        layout = self.layout
        scale = self.scale
        row = np.zeros(layout.observation_size, dtype=np.float64)
        row[2] = 1.0 if first["time_limit"] is not None else 0.0
        row[12] = 1.0
        if self.budget:
            row[7] = 1.0
        width = self.subtask_width
        for i, s in enumerate(first["subtasks"]):
            at = GLOBAL_FEATURES + i * width
            row[at] = 1.0
            row[at + 6] = self.duration[i] / scale
            row[at + 7] = s["priority"] / 5.0
            if s["deadline"] is not None:
                row[at + 8] = 1.0
            row[at + 15] = self.tail[i] / scale
            row[at + 16] = self.downstream[i] / layout.max_subtasks
            slot = self.type_slot.get(s["type"])
            if slot is not None:
                row[at + SUBTASK_FEATURES + slot] = 1.0
        width = self.agent_width
        for j, a in enumerate(first["agents"]):
            at = self.agents_at + j * width
            row[at] = 1.0
            row[at + 5] = a["cost"] / 5.0
            row[at + 6] = a["reliability"]
            for capability in a["capabilities"]:
                slot = self.type_slot.get(capability)
                if slot is not None:
                    row[at + AGENT_FEATURES + slot] = 1.0
        return row


class BatchEncoding:
    """The encoded form of a batch (``WorkflowVectorEnv(observation="encoded")``): every
    slot's observation vector and action mask as rows of two arrays, in one layout (so every
    slot's task must be of one family)."""

    def __init__(self, task_ids: Sequence[str], registry: Any) -> None:
        layouts = {family_layout(task_id, registry) for task_id in set(task_ids)}
        if len(layouts) != 1:
            raise ValueError("the encoded observation needs every task of one family (one layout)")
        self.layout = layouts.pop()
        count = len(task_ids)
        self.encoded = np.zeros((count, self.layout.observation_size), dtype=np.float32)
        self.masks = np.zeros((count, self.layout.action_count), dtype=bool)
        self.encoders: list[_Encoder | None] = [None] * count

    def start_all(self, observations: Sequence[dict[str, Any]]) -> None:
        for i, observation in enumerate(observations):
            self.start(i, observation)

    def start(self, i: int, observation: dict[str, Any]) -> None:
        """Slot ``i`` began an episode: its slots and static facts, then its first row."""
        self.encoders[i] = _Encoder(self.layout, observation)
        self.encode(i, observation)

    def encode(self, i: int, observation: dict[str, Any]) -> None:
        encoder = self.encoders[i]
        assert encoder is not None
        self.encoded[i] = encoder.encode(observation)
        self.masks[i] = encoder.mask(observation)

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of both arrays (a result keeps its rows when the batch steps again)."""
        return self.encoded.copy(), self.masks.copy()


def _reverse_topological(successors: Sequence[Sequence[int]]) -> list[int]:
    """Every node after all of its successors."""
    order: list[int] = []
    state = [0] * len(successors)  # 0 new, 1 on the stack, 2 done
    for root in range(len(successors)):
        if state[root]:
            continue
        stack = [(root, iter(successors[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if not state[child]:
                    state[child] = 1
                    stack.append((child, iter(successors[child])))
                    break
            else:
                stack.pop()
                state[node] = 2
                order.append(node)
    return order


register_envs()
