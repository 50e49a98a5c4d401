"""The in-process API: ``reset`` and ``step`` on plain data, no server needed.

    >>> from workflow_orchestrator import WorkflowEnv
    >>> env = WorkflowEnv()
    >>> obs = env.reset(task_id="easy")
    >>> obs = env.step({"action_type": "delegate", "subtask_id": "technical_design",
    ...                 "agent_name": "tech_lead"})
    >>> obs["reward"] > 0
    True

Observation: the dict of :func:`build_observation` (subtasks, agents, time,
capacity, budget, legal actions, hint, reward and its breakdown, errors,
critical path, terminated/truncated). Action: an :class:`Action` or a mapping
with ``action_type`` and its fields. Reward: shaped, unclamped, per step.
Termination: ``synthesize`` when all work is done (tick model) or all subtasks
completed (event model). Truncation: the time limit or step limit ran out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .actions import Action
from .episode import Episode
from .grading import grade_episode
from .observation import build_observation


class WorkflowEnv:
    def __init__(self, registry: Any = None) -> None:
        if registry is None:
            from ..tasks import default_registry  # the core itself knows no files

            registry = default_registry()
        self.registry = registry
        self.episode: Episode | None = None
        self._observation: dict[str, Any] | None = None

    def reset(self, task_id: str = "easy", seed: int | None = None, worker_count: int | None = None) -> dict[str, Any]:
        """Start an episode; ``seed=None`` gives the task's canonical episode."""
        resolved = self.registry.resolve(task_id, seed=seed, worker_count=worker_count)
        self.episode = Episode(resolved.compiled, seed=resolved.seed)
        self._observation = build_observation(self.episode)
        return self._observation

    def step(self, action: Action | Mapping[str, Any]) -> dict[str, Any]:
        episode = self._require_episode()
        episode.step(action)
        observation = build_observation(episode)
        if observation["done"]:
            observation["grade"] = grade_episode(episode)
        self._observation = observation
        return observation

    @property
    def observation(self) -> dict[str, Any]:
        self._require_episode()
        assert self._observation is not None
        return self._observation

    @property
    def done(self) -> bool:
        return self._require_episode().done

    def grade(self) -> dict[str, Any]:
        return grade_episode(self._require_episode())

    def state(self) -> dict[str, Any]:
        episode = self._require_episode()
        return {
            "task_id": episode.task.task_id,
            "seed": episode.seed,
            "step_count": episode.step_count,
            "time": episode.now,
            "done": episode.done,
            "terminated": episode.terminated,
            "truncated": episode.truncated,
            "budget_used": round(episode.budget_used, 6),
            "cumulative_reward": round(sum(episode.rewards), 6),
            "rewards": list(episode.rewards),
            "observation": self._observation,
            "events": episode.log.records,
            "trace": list(episode.trace),
        }

    def _require_episode(self) -> Episode:
        if self.episode is None:
            raise RuntimeError("call reset() before step()")
        return self.episode
