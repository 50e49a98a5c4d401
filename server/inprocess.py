"""The in-process API: ``reset`` and ``step`` on plain data, no server needed.

    >>> from workflow_orchestrator import WorkflowEnv
    >>> env = WorkflowEnv()
    >>> obs = env.reset(task_id="easy")
    >>> obs = env.step({"action_type": "delegate", "subtask_id": "technical_design",
    ...                 "agent_name": "tech_lead"})
    >>> obs["reward"] > 0
    True

It sits above the task registry it resolves tasks with, and talks to each
task's family only through the seam (``core/families.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core.actions import Action
from .core.families import grade_episode, new_episode
from .core.outcomes import outcome_secret as outcome_secret_bytes
from .core.rewards import check_reward_mode
from .tasks import TaskRegistry, default_registry

# What a step, or a read of the episode, before the first reset raises.
NOT_STARTED = "call reset() before step()"


class WorkflowEnv:
    """One episode at a time of any task of a registry, as plain data.

    **Observation** (a dict, read-only: unchanged parts are shared between
    steps): ``task_id``, ``seed``, ``time_model``; ``step_count``,
    ``time_used``, ``time_limit``/``time_remaining``, ``step_limit``;
    ``capacity`` and ``active_count``; ``budget``, ``budget_used``,
    ``budget_remaining``; ``completed_count``/``subtask_count``; the
    ``subtasks`` and ``agents`` views (public facts only: no trap, no
    scheduled event, no seeded outcome); ``legal_actions`` (every single
    action accepted now); a ``hint`` (every situation that applies, most
    urgent first, ending with one legal action: ``Do: dispatch(a:x,b:y).``); ``reward`` and
    ``reward_breakdown``; ``errors`` of the last action; the remaining
    ``critical_path_length``; the task's ``rules``; ``terminated``,
    ``truncated``, ``done``; and, once done, the ``grade``. A family adds its
    own views under its key (the arena: ``arena``).

    **Actions**: an :class:`Action` or a mapping with ``action_type``
    (``delegate``, ``dispatch``, ``retry``, ``wait``, ``synthesize``,
    ``abort``) and its fields. A bad action never raises: it is recorded with
    a structured error code, takes its time, and is penalised.

    **Reward**, every step, with named channels in ``reward_breakdown``, by the
    ``reward_mode`` chosen at reset: ``shaped`` (default; the family's table,
    unclamped, which no detour can farm), ``grade`` (dense and potential-based:
    the change of the grade as if the episode ended now, so an episode's rewards
    sum to its final grade; channel ``grade``) or ``sparse`` (0, and the grade
    at the last step; channel ``grade``). The terminal grade, a score in [0, 1]
    read from the event log, is separate (:meth:`grade`).

    **Termination**: the workflow ended: ``synthesize`` once every subtask is
    completed (tick time model), or every subtask completed (event model).
    **Truncation**: the time limit or the step limit ran out. After either,
    ``step`` changes nothing and returns the ``episode_over`` error.

    **Seeding**: ``reset(seed=...)`` is the only source of randomness; the
    same task, seed and actions give the same observations, rewards and event
    log in any process. ``seed=None`` plays the task's canonical seed.

    **Sealing**: unsealed, the seed and this package predict every attempt's
    outcome and every hidden fact (fine for training, not for evaluation).
    With ``outcome_secret`` (str or bytes), attempt outcomes, scheduled
    surprises (arena outages, generated dropouts) and generated hidden facts
    (traps) are keyed by the secret as well as the seed: the same secret and
    seed give the same episode in any process, and without the secret nothing
    beyond the declared reliabilities can be predicted. The secret is never
    part of an observation, the state or the grade; a sealed grade claims no
    best score (``best_score`` and ``normalized_score`` are ``None``: the
    shipped best scores are proven on unsealed outcomes).
    """

    def __init__(self, registry: TaskRegistry | None = None, outcome_secret: bytes | str | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()
        self._secret = outcome_secret_bytes(outcome_secret)
        self.episode: Any = None
        # The current episode's family, which builds its observations (its ``observe``).
        self._family: Any = _NOT_STARTED
        self._observation: dict[str, Any] | None = None

    def reset(
        self,
        task_id: str = "easy",
        seed: int | None = None,
        worker_count: int | None = None,
        reward_mode: str = "shaped",
        executor: Any = "simulated",
    ) -> dict[str, Any]:
        """Start an episode; ``seed=None`` gives the task's canonical episode.
        ``reward_mode``: ``shaped``, ``grade`` or ``sparse`` (see the class docstring);
        an unknown mode is a ValueError. ``executor`` (canvas tasks): ``simulated``
        (default), ``openai`` (operators as prompts to the model of ``API_BASE_URL``,
        ``MODEL_NAME``, ``API_KEY``; the grade reads realised correctness), or a
        callable ``problem -> executor``."""
        episode = self.start(task_id, seed, worker_count, reward_mode, executor)
        self._observation = self._family.observe(episode)
        return self._observation

    def start(
        self,
        task_id: str = "easy",
        seed: int | None = None,
        worker_count: int | None = None,
        reward_mode: str = "shaped",
        executor: Any = "simulated",
    ) -> Any:
        """``reset`` without building the first observation (the same episode; :attr:`observation`
        builds it when read, as after :meth:`advance`). Returns the episode."""
        check_reward_mode(reward_mode)
        resolved = self.registry.resolve(task_id, seed=seed, worker_count=worker_count, secret=self._secret)
        family = resolved.compiled.family
        episode = new_episode(resolved.compiled, resolved.seed, reward_mode)
        if self._secret is not None:
            episode.seal(self._secret)
        if not (isinstance(executor, str) and executor == "simulated"):
            use_executor = getattr(episode, "use_executor", None)
            if use_executor is None:
                raise ValueError(f"task {task_id!r} has no executor to choose: executor applies to canvas tasks")
            if isinstance(executor, str):
                from ..executors import make_executor

                use_executor(make_executor(executor, episode.problem))
            else:
                use_executor(executor(episode.problem))
        self.episode = episode
        self._family = family
        self._observation = None
        return episode

    def step(self, action: Action | Mapping[str, Any]) -> dict[str, Any]:
        episode = self._require_episode()
        episode.step(action)
        observation: dict[str, Any] = self._family.observe(episode)
        if observation["done"]:
            observation["grade"] = grade_episode(episode)
        self._observation = observation
        return observation

    def advance(self, action: Action | Mapping[str, Any]) -> Any:
        """``step`` without building the observation (the episode moves exactly as by ``step``;
        :attr:`observation` builds it when read). Returns the episode, for its reward and flags."""
        episode = self.episode  # _require_episode, written out: the vector env calls this for every slot
        if episode is None:
            raise RuntimeError(NOT_STARTED)
        episode.step(action)
        self._observation = None
        return episode

    @property
    def sealed(self) -> bool:
        """Whether episodes are sealed by an outcome secret."""
        return self._secret is not None

    @property
    def observation(self) -> dict[str, Any]:
        episode = self._require_episode()
        observation = self._observation
        if observation is None:  # stepped by advance(): built now, as step() would have built it
            observation = self._observation = self._family.observe(episode)
            if observation["done"]:
                observation["grade"] = grade_episode(episode)
        return observation

    @property
    def done(self) -> bool:
        return bool(self._require_episode().done)

    def grade(self) -> dict[str, Any]:
        return grade_episode(self._require_episode())

    def state(self, history: bool = True) -> dict[str, Any]:
        """The episode's state; without ``history``, its ``events`` and ``trace`` are left out."""
        episode = self._require_episode()
        state = {
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
            "observation": self.observation,
        }
        if history:
            state["events"] = episode.log.records
            state["trace"] = episode.trace
        return state

    def _require_episode(self) -> Any:
        if self.episode is None:
            raise RuntimeError(NOT_STARTED)
        return self.episode


class _NotStarted:
    """The family of an environment that has no episode yet."""

    @staticmethod
    def observe(episode: Any) -> dict[str, Any]:
        raise RuntimeError(NOT_STARTED)


_NOT_STARTED = _NotStarted()
