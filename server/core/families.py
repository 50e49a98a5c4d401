"""The registry of task families, keyed by ``TaskSpec.family``, and the seam's
entry points: compile a task, start an episode, build its observation, grade
it, render an observation as text.

Nothing outside a family's own module asks which family a task belongs to:
it asks the task's :class:`~.family.Family` (``compiled.family``), or, given
only an observation, :func:`family_of_observation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .arena import ARENA
from .canvas import CANVAS
from .compiled import CompiledTask
from .dag import DagIndex
from .family import Family
from .grading import with_normalized_score
from .model import TaskSpec
from .rewards import check_reward_mode, grade_reward_model
from .scenario import GENERATED, SCENARIO

# One line per family: the name a task spec gives -> the family's rules.
FAMILIES: Final[dict[str, Family]] = {
    "scenario": SCENARIO,
    "generated": GENERATED,
    "arena": ARENA,
    "canvas": CANVAS,
}


def register_family(name: str, family: Family) -> None:
    """Add a family under the name its task specs give (``TaskSpec.family``)."""
    FAMILIES[name] = family


def family_named(name: str) -> Family:
    family = FAMILIES.get(name)
    if family is None:
        raise ValueError(f"unknown task family {name!r}; known: {', '.join(FAMILIES)}")
    return family


def compile_task(spec: TaskSpec, dag: DagIndex | None = None) -> CompiledTask:
    """Prepare a task for many episodes, with the rules of its family."""
    return CompiledTask.build(spec, family_named(spec.family), dag)


def new_episode(compiled: CompiledTask, seed: int | None = None, reward_mode: str = "shaped") -> Any:
    """A fresh episode of a compiled task (``seed=None``: its canonical seed).

    ``reward_mode``: ``shaped`` (the family's per-step table), ``grade`` (each step
    pays the change of the grade as if the episode ended then, so the rewards sum
    to the final grade), ``sparse`` (the grade, at the last step); see rewards.py;
    or a mode of the family's own (its ``reward_model(mode)``, when it has one:
    the canvas family's ``published``).
    """
    mode = check_reward_mode(reward_mode)
    family = compiled.family
    own = getattr(family, "reward_model", None)
    model = own(mode) if own is not None and mode != "shaped" else None
    if model is None and mode not in ("shaped", "grade", "sparse"):
        raise ValueError(f"the {compiled.spec.family!r} family has no {mode!r} reward mode")
    episode = family.new_episode(compiled, seed)
    if mode != "shaped":
        use = getattr(episode, "use_reward_model", None)
        if use is None:
            raise ValueError(f"the {compiled.spec.family!r} family has only the shaped reward mode")
        use(model if model is not None else grade_reward_model(mode, family.grade))
    return episode


def build_observation(episode: Any) -> dict[str, Any]:
    """The observation after the episode's latest step, as its family builds it."""
    observation: dict[str, Any] = episode.compiled.family.observe(episode)
    return observation


def grade_episode(episode: Any) -> dict[str, Any]:
    """The episode's grade (finished or not) by its family's rules, with what is
    known of the best achievable score (see grading.with_normalized_score)."""
    return with_normalized_score(episode.compiled.family.grade(episode), episode)


def family_of_observation(observation: Mapping[str, Any]) -> Family:
    """The family whose views the observation carries (the scenario rules when none)."""
    for family in FAMILIES.values():
        if family.view_key is not None and family.view_key in observation:
            return family
    return SCENARIO


def render_text(observation: Mapping[str, Any]) -> str:
    """A compact text rendering of an observation for LLM prompts, by its family."""
    return family_of_observation(observation).render(observation)
