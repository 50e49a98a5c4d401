"""Task families as plug-ins: one object per family owns its rules.

A family is what ``TaskSpec.family`` names: the scenario rules (hand-written
scenarios and the generated scenario-like tasks) and the arena rules are two
implementations of :class:`Family`; the registry of families is
``families.py``. The in-process API, the server and the runner only talk to
this seam, so a family may bring its own episode type, observation, legal
actions, grade and rendering.

Adding a family is one generator in ``server/tasks/`` (a ``TaskFamily`` of the
task registry), one module with its :class:`Family`, and one line in each
registry (``families.FAMILIES`` here, the task registry's families, and the
oracle's when it has a search problem for it).

The contract of a family (everything the seam calls):

``prepare(spec, dag)``
    The family's static tables of one task (kept in ``CompiledTask.tables``)
    and its per-step reward model, computed once per task.
``new_episode(compiled, seed)``
    A fresh episode of the task. The episode has ``step(action)`` (never raises
    on a bad action), ``done``, ``terminated``, ``truncated``, ``step_count``,
    ``seed``, ``rewards``, ``budget_used``, ``now``, ``log`` (``records``) and
    ``trace``, ``task`` (the spec) and ``compiled``.
``observe(episode)``
    The observation after the latest step, as plain JSON data, with its legal
    actions (the family's action space) and the family's own views.
``grade(episode)``
    The terminal grade: ``score`` in [0, 1], ``breakdown`` by dimension,
    ``weights``, ``counts`` (the normalised score is added by the seam).
``render(observation)``
    The observation as text for a language model's prompt.
``view_key``
    The key of the family's own views in its observations (``None``: none);
    an observation that carries it belongs to the family
    (:func:`families.family_of_observation`), so renderings and policies that
    only see observations find the family's rules.
``heuristic(observation)``
    The family's own choice for the built-in ``heuristic`` policy, or ``None``
    to let the policy choose as it does for workflows of named agents.
``heuristic_on_episode(episode)``
    The built-in ``heuristic`` policy's move on the episode's current
    observation, read from the episode's state without building the
    observation (the planner's rollouts call it at every step), or ``None``
    when the family has no such shortcut.
``success_metrics(episode)``
    Schedule metrics of the family (shown in its views and counts), or ``None``.
``oracle_problem``
    The name under which the oracle knows this family's search problem
    (``None``: the oracle searches by the task's time model).
``dashboard_views(observation)``
    Extra panels for the dashboard, as ``(title, html)`` pairs (none: empty).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .compiled import CompiledTask
    from .dag import DagIndex
    from .model import TaskSpec
    from .rewards import RewardModel


class Family(Protocol):
    """The rules of one task family (see the module docstring)."""

    view_key: str | None
    oracle_problem: str | None

    def prepare(self, spec: TaskSpec, dag: DagIndex) -> tuple[Any, RewardModel]: ...

    def new_episode(self, compiled: CompiledTask, seed: int | None) -> Any: ...

    def observe(self, episode: Any) -> dict[str, Any]: ...

    def grade(self, episode: Any) -> dict[str, Any]: ...

    def render(self, observation: Mapping[str, Any]) -> str: ...

    def heuristic(self, observation: Mapping[str, Any]) -> dict[str, Any] | None: ...

    def heuristic_on_episode(self, episode: Any) -> dict[str, Any] | None: ...

    def slack_on_episode(self, episode: Any) -> dict[str, Any] | None: ...

    def success_metrics(self, episode: Any) -> dict[str, Any] | None: ...

    def dashboard_views(self, observation: Mapping[str, Any]) -> Sequence[tuple[str, str]]: ...
