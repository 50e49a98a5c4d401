"""A task family plugs in through the seam alone: registered under the name its
task specs give, its rules are used without the core knowing its name."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.tasks import tiny_task
from workflow_orchestrator.server.core import FAMILIES, CompiledTask, build_observation, compile_task, render_text
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.core.scenario import ScenarioFamily
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import TaskRegistry

REPO_ROOT = Path(__file__).resolve().parents[2]


class CountingEpisode:
    """Not a workflow of agents: the policy says ``wait`` three times and is done."""

    def __init__(self, compiled: CompiledTask, seed: int | None) -> None:
        self.compiled = compiled
        self.task = compiled.spec
        self.seed = compiled.spec.canonical_seed if seed is None else seed
        self.count = 0
        self.step_count = 0

    def step(self, action: Mapping[str, Any]) -> None:
        self.step_count += 1
        if action.get("action_type") == "wait":
            self.count += 1

    @property
    def done(self) -> bool:
        return self.count >= 3


class CountingFamily(ScenarioFamily):
    """A family with its own episode, observation, legal actions, grade, text and heuristic."""

    view_key: str | None = "counting"

    def new_episode(self, compiled: CompiledTask, seed: int | None) -> Any:
        return CountingEpisode(compiled, seed)

    def observe(self, episode: Any) -> dict[str, Any]:
        return {"counting": {"count": episode.count}, "legal_actions": [{"action_type": "wait"}], "done": episode.done}

    def grade(self, episode: Any) -> dict[str, Any]:
        return {"score": episode.count / 3, "breakdown": {"count": episode.count / 3}}

    def render(self, observation: Mapping[str, Any]) -> str:
        return f"Counted {observation['counting']['count']} of 3."

    def heuristic(self, observation: Mapping[str, Any]) -> dict[str, Any] | None:
        return {"action_type": "wait"}


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> TaskRegistry:
    monkeypatch.setitem(FAMILIES, "counting", CountingFamily())
    registry = TaskRegistry()
    registry.add_scenario(tiny_task(task_id="count", family="counting"))
    return registry


def test_a_registered_family_brings_its_own_rules(counting: TaskRegistry) -> None:
    env = WorkflowEnv(counting)
    observation = env.reset("count")
    assert observation == {"counting": {"count": 0}, "legal_actions": [{"action_type": "wait"}], "done": False}
    assert isinstance(env.episode, CountingEpisode)
    assert render_text(observation) == "Counted 0 of 3."
    policy = make_policy("heuristic")
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    assert observation["grade"]["score"] == 1.0 and observation["grade"]["normalized_score"] is None
    assert env.grade()["breakdown"] == {"count": 1.0}


def test_the_scenario_rules_are_the_default_of_scenario_and_generated_tasks() -> None:
    for name in ("scenario", "generated"):
        compiled = compile_task(tiny_task(family=name))
        # The generated family's rules are the scenario rules, with a view only where a task hides its
        # reliabilities (generated/expert).
        assert isinstance(compiled.family, ScenarioFamily) and compiled.tables is None
        observation = build_observation(compiled.family.new_episode(compiled, 0))
        assert "arena" not in observation and "generated" not in observation


def test_the_core_asks_no_family_by_name() -> None:
    """Outside a family's own modules, nothing tests for the arena or a family name,
    and an Episode is made only by the families' factory."""
    found = subprocess.run(
        [
            "grep",
            "-rn",
            "--include=*.py",
            "--exclude-dir=.venv",
            "--exclude-dir=.cache",  # the compiled build's copy of the sources (tests/core/test_native.py)
            "--exclude-dir=tests",
            r'"arena" in\|\.arena is not None\|family ==\|\bEpisode(',
            ".",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    # The arena's own module may name itself; the scenario rules' factory makes the Episode.
    left = [line for line in found if not line.startswith("./server/core/arena.py:")]
    assert [line.split(":")[0] for line in left] == ["./server/core/scenario.py"], left


def test_the_core_imports_nothing_above_it() -> None:
    """The core plays an episode with no task registry, pydantic or server loaded."""
    probe = (
        "import sys\n"
        "from workflow_orchestrator.server.core import AgentSpec, SubtaskSpec, TaskSpec, TimeModel\n"
        "from workflow_orchestrator.server.core import build_observation, compile_task, grade_episode, new_episode\n"
        "spec = TaskSpec('t', 't', '', 'scenario', 'easy', TimeModel.TICK, 5, 1, None,\n"
        "                (SubtaskSpec('a', 'x'),), (AgentSpec('solo', frozenset({'x'})),))\n"
        "episode = new_episode(compile_task(spec), 0)\n"
        "episode.step({'action_type': 'wait'})\n"
        "assert build_observation(episode)['step_count'] == 1 and 'score' in grade_episode(episode)\n"
        "names = ('pydantic', 'fastapi', 'networkx', 'workflow_orchestrator.server.tasks',\n"
        "         'workflow_orchestrator.server.inprocess', 'workflow_orchestrator.models')\n"
        "print([name for name in names if name in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
