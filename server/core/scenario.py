"""The scenario rules: the family of the hand-written scenarios and of the
generated scenario-like tasks (``TaskSpec.family`` ``scenario`` and ``generated``).

:class:`WorkflowFamily` holds what every family of DAG-of-agents episodes
shares (the :class:`Episode`, its observation and its rendering);
:class:`ScenarioFamily` adds the scenario grade and reward table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .compiled import CompiledTask
from .dag import DagIndex
from .episode import Episode
from .grading import grade_scenario
from .model import TaskSpec
from .observation import render_workflow_text, workflow_observation
from .rewards import RewardModel, ScenarioRewards


class WorkflowFamily:
    """The rules shared by families whose episode is a workflow of named agents
    (:class:`Episode`); a subclass brings its grade and, if any, its own tables,
    rewards, views and text."""

    view_key: str | None = None
    oracle_problem: str | None = None

    def prepare(self, spec: TaskSpec, dag: DagIndex) -> tuple[Any, RewardModel]:
        return None, ScenarioRewards(spec.reward_table)

    def new_episode(self, compiled: CompiledTask, seed: int | None) -> Episode:
        return Episode(compiled, seed=seed)

    def observe(self, episode: Episode) -> dict[str, Any]:
        return workflow_observation(episode)

    def grade(self, episode: Episode) -> dict[str, Any]:
        raise NotImplementedError

    def render(self, observation: Mapping[str, Any]) -> str:
        return render_workflow_text(observation)

    def heuristic(self, observation: Mapping[str, Any]) -> dict[str, Any] | None:
        return None

    def heuristic_on_episode(self, episode: Episode) -> dict[str, Any] | None:
        return None

    def success_metrics(self, episode: Episode) -> dict[str, Any] | None:
        return None

    def dashboard_views(self, observation: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
        return ()


class ScenarioFamily(WorkflowFamily):
    """Scenario tasks: graded on the task's weighted dimensions (grading.py),
    rewarded by the per-step table (rewards.py)."""

    def grade(self, episode: Episode) -> dict[str, Any]:
        return grade_scenario(episode)


SCENARIO = ScenarioFamily()
