"""The scenario rules: the family of the hand-written scenarios and of the
generated scenario-like tasks (``TaskSpec.family`` ``scenario`` and ``generated``).

:class:`WorkflowFamily` holds what every family of DAG-of-agents episodes
shares (the :class:`Episode`, its observation and its rendering);
:class:`ScenarioFamily` adds the scenario grade and reward table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mypy_extensions import mypyc_attr

from .compiled import CompiledTask
from .dag import DagIndex
from .episode import Episode
from .grading import grade_scenario
from .model import TaskSpec
from .observation import render_workflow_text, workflow_observation
from .rewards import RewardModel, ScenarioRewards


# Open to subclasses in the compiled build too (native.py).
@mypyc_attr(allow_interpreted_subclasses=True)
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
        # A subclass with a heuristic of its own overrides this too (the arena does).
        from .policies import heuristic_on_state  # policies reads the families, which read this module

        return heuristic_on_state(episode)

    def slack_on_episode(self, episode: Episode) -> dict[str, Any] | None:
        # Where the slack policy's move can be read from the state (the expert presets' families override this).
        return None

    def success_metrics(self, episode: Episode) -> dict[str, Any] | None:
        return None

    def dashboard_views(self, observation: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
        return ()


# Open to subclasses in the compiled build too (native.py).
@mypyc_attr(allow_interpreted_subclasses=True)
class ScenarioFamily(WorkflowFamily):
    """Scenario tasks: graded on the task's weighted dimensions (grading.py),
    rewarded by the per-step table (rewards.py)."""

    def grade(self, episode: Episode) -> dict[str, Any]:
        return grade_scenario(episode)


SCENARIO: Final = ScenarioFamily()


@dataclass(frozen=True, slots=True)
class HiddenReliabilityTables:
    """A generated task whose reliabilities are not declared (``generated/expert``):
    the prior every agent is shown with, and the agent outages announced ahead."""

    reliability_prior: float
    # Per agent with announced outages, its windows [from, until) of time offline.
    agent_outages: tuple[dict[str, Any], ...]


# Open to subclasses in the compiled build too (native.py).
@mypyc_attr(allow_interpreted_subclasses=True)
class GeneratedRules(ScenarioFamily):
    """The generated scenarios (``TaskSpec.family`` ``generated``): the scenario rules,
    and where a task does not declare its agents' reliabilities (its parameters name
    a ``reliability_prior``), the ``generated`` view: the prior, each agent's record of
    finished attempts and failures (the arena's ``worker_record``), and the agent
    outages announced ahead (``agent_outages``: ``{"agent", "from", "until"}``, offline
    for ``from <= time < until``). Every agent is shown with the prior as its reliability."""

    view_key: str | None = "generated"

    def prepare(self, spec: TaskSpec, dag: DagIndex) -> tuple[Any, RewardModel]:
        prior = spec.parameters.get("reliability_prior")
        if not isinstance(prior, (int, float)):
            return super().prepare(spec, dag)
        windows = spec.parameters.get("agent_outages")
        announced = tuple(
            {"agent": str(name), "from": int(w[0]), "until": int(w[1])}
            for name, spans in (windows.items() if isinstance(windows, Mapping) else ())
            for w in spans
        )
        tables = HiddenReliabilityTables(reliability_prior=float(prior), agent_outages=announced)
        return tables, ScenarioRewards(spec.reward_table)

    def observe(self, episode: Episode) -> dict[str, Any]:
        observation = workflow_observation(episode)
        tables = episode.compiled.tables
        if isinstance(tables, HiddenReliabilityTables):
            from .arena import worker_record  # the arena's record, the same fields (arena imports this module)

            prior = tables.reliability_prior
            observation["agents"] = [{**view, "reliability": prior} for view in observation["agents"]]
            observation["generated"] = {
                "reliability_prior": prior,
                "worker_record": worker_record(episode),
                "agent_outages": [dict(w) for w in tables.agent_outages if w["until"] > episode.now],
            }
            if not episode.done:
                # The hint's action is the built-in heuristic's move, after the situations it lists.
                from .policies import heuristic_on_state  # policies reads the families, which read this module

                head = observation["hint"].rsplit(" Do: ", 1)[0]
                observation["hint"] = head + " Do: " + action_label(heuristic_on_state(episode))
        return observation

    def slack_on_episode(self, episode: Episode) -> dict[str, Any] | None:
        tables = episode.compiled.tables
        if not isinstance(tables, HiddenReliabilityTables):
            return None
        from .policies import named_agents_slack_on_state  # policies reads the families, which read this module

        return named_agents_slack_on_state(episode, tables.reliability_prior, tables.agent_outages)

    def render(self, observation: Mapping[str, Any]) -> str:
        view = observation.get("generated")
        if view is None:
            return render_workflow_text(observation)
        lines = [
            f"Reliabilities are not declared: every agent is shown with the prior {view['reliability_prior']}.",
            "Agent record: "
            + ", ".join(
                f"{w['worker']} {w['failures']} failed of {w['finished_attempts']}" for w in view["worker_record"]
            )
            + ".",
            "Announced outages: "
            + (", ".join(f"{w['agent']} offline t={w['from']}..{w['until']}" for w in view["agent_outages"]) or "none")
            + ".",
        ]
        return render_workflow_text(observation, lines)


def action_label(action: Mapping[str, Any]) -> str:
    """An action as the hint writes it: ``delegate(id,agent).``, ``dispatch(id:agent,...).``, ``wait().``"""
    kind = action["action_type"]
    if kind == "dispatch":
        return "dispatch(" + ",".join(f"{a['subtask_id']}:{a['agent_name']}" for a in action["assignments"]) + ")."
    if kind in ("delegate", "retry"):
        return f"{kind}({action['subtask_id']},{action['agent_name']})."
    return f"{kind}()."


GENERATED: Final = GeneratedRules()
