"""Many episodes in one call: :class:`WorkflowVectorEnv`.

    >>> from workflow_orchestrator.vector import WorkflowVectorEnv
    >>> vec = WorkflowVectorEnv(["arena/hard"] * 4 + ["generated/easy"] * 4)
    >>> first = vec.reset(seed=100)
    >>> batch = vec.step([obs["legal_actions"][0] for obs in first.observations])
    >>> len(batch.rewards)
    8

Every slot holds one episode, played by the public in-process API
(:class:`workflow_orchestrator.WorkflowEnv`), so each episode is exactly the
episode it would be alone: the same observations, rewards, grade and event
log for the same task, seed and actions. A batch only saves the caller the
loop (and, over the WebSocket, the messages).

Seeds: ``reset(seed=s)`` gives slot ``i`` the seed ``s + i`` (or ``reset(seed=[...])``
one seed per slot). With ``autoreset`` (the default), when an episode ends its
slot starts the next one at once, with the slot's seed plus ``num_envs``: slot
``i`` plays seeds ``s + i``, ``s + i + N``, ``s + i + 2N``, ... (modulo the
largest seed plus one), so no two slots of a batch share a seed. The step that
ended an episode reports that episode's reward, flags and grade, its last
observation in ``final_observations``, and the next episode's first
observation in ``observations``; the finished episode itself stays readable in
``last_finished`` (its state and event log) until the slot's next episode ends.
Without ``autoreset`` a finished slot stays finished until ``reset``, and a step
sent to it is answered as a single environment answers it (``episode_over``).

Observations: ``observation="full"`` (the default) gives every slot's
observation dict at every step. ``observation="none"`` gives none: a step
moves every episode and reports rewards, flags and grades only, and
:attr:`WorkflowVectorEnv.observations` (or ``observation(i)``) builds a slot's
observation when read, the same dict the full form would have given (for
policies that read few observations, replays and rollouts of recorded
actions). ``observation="encoded"`` gives the Gymnasium numeric encoding
(:mod:`workflow_orchestrator.gym_env`) as NumPy columns: ``encoded`` (N x
the family's observation size, float32) and ``action_masks`` (N x the
family's action count, bool, exactly the ``legal_actions``); every slot's
task must then be of one family. Episodes move the same way in every form.
In both lean forms ``final_observations`` holds ``None``: with autoreset the
finished episode is ``last_finished[i]`` (its ``observation`` and ``state()``).

The ``none`` form also starts episodes (at ``reset`` and autoreset) without
building their first observation (``WorkflowEnv.start``): it is built when read.

Results come as columns (:class:`VectorStep`, lists indexed by slot) or as
rows (``VectorStep.rows()``); ``errors`` gives, in every form, each slot's
error codes at this step (``[]`` for an accepted action). A batch of the wrong shape (not a list, more or
fewer actions than slots, more than :data:`MAX_EPISODES` slots) raises
``ValueError`` before any episode moves; a malformed single action is the
episode's own business, as it would be alone (an invalid action with its
error code and penalty).

A step can also be run in pieces: ``begin_step(actions)`` checks the batch and
gives a :class:`PendingStep`, whose ``run(budget)`` steps the slots in order
for at most ``budget`` seconds and goes on where it stopped at its next call
(the server runs a batch step on its event loop for 2 ms at most and the rest
on a worker thread); ``result()`` then gives what ``step`` would have.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from workflow_orchestrator import WorkflowEnv
from workflow_orchestrator.server.core.batch import step_slots
from workflow_orchestrator.server.core.episode import Episode
from workflow_orchestrator.server.core.families import grade_episode
from workflow_orchestrator.server.core.rewards import check_reward_mode
from workflow_orchestrator.server.tasks.registry import MAX_SEED

MAX_EPISODES = 256
OBSERVATION_FORMS = ("full", "none", "encoded")


@dataclass(slots=True)
class VectorStep:
    """The result of a batch reset or step, as columns indexed by slot.

    ``observations`` holds dicts in the ``full`` form and ``None`` in the others;
    ``encoded`` and ``action_masks`` are NumPy arrays in the ``encoded`` form, else ``None``."""

    observations: list[dict[str, Any] | None]
    rewards: list[float]
    terminated: list[bool]
    truncated: list[bool]
    # The grade of an episode that ended at this step, else None.
    grades: list[dict[str, Any] | None]
    # With autoreset: the last observation of an episode that ended at this step, else None.
    final_observations: list[dict[str, Any] | None]
    encoded: Any = None
    action_masks: Any = None
    # The error codes of each slot's action at this step (empty when it was accepted; empty at a reset).
    errors: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def done(self) -> list[bool]:
        return [a or b for a, b in zip(self.terminated, self.truncated, strict=True)]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per slot: observation, reward, terminated, truncated, done, grade, final_observation."""
        return [
            {
                "observation": observation,
                "reward": reward,
                "terminated": terminated,
                "truncated": truncated,
                "done": terminated or truncated,
                "grade": grade,
                "final_observation": final,
            }
            for observation, reward, terminated, truncated, grade, final in zip(
                self.observations,
                self.rewards,
                self.terminated,
                self.truncated,
                self.grades,
                self.final_observations,
                strict=True,
            )
        ]


_T = TypeVar("_T")


class _CollectorPause:
    """The cyclic garbage collector held off while batches run (nested and across threads: it
    runs again when the last batch running ends, if it ran before the first began).

    A batch step allocates a few objects per episode that it keeps (log rows, trace
    entries, scheduled completions); over 256 episodes that is enough to start a young
    collection at every batch, and every tenth an older one, each walking objects spread
    over all the episodes' memory. Held off for the batch, the collector sees the same
    objects at its next turn, right after the batch (garbage of a batch waits at most
    for the batch's end).

    A large batch reset also runs the collector's two young generations at its end
    (``run(..., collect=True)``; see :data:`COLLECT_AFTER_RESET`), when the collector was
    on. The reset makes about twenty containers an episode, which the collector would
    otherwise walk twice a few steps later, cold, from all over the batch's memory:
    first in a young collection, then in the next middle one. Walked while the reset
    has just made them, they cost a fraction of that, and they move straight to the
    oldest generation. The collector does nothing it would not have done; it does it
    sooner, in the reset that made the work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._resume = False

    def run(self, work: Callable[[], _T], collect: bool = False) -> _T:
        with self._lock:
            if self._depth == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._depth += 1
        try:
            return work()
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._resume:
                    if collect:
                        gc.collect(1)
                    gc.enable()


_PAUSE = _CollectorPause()

# The fewest slots a batch reset collects after (see _CollectorPause): from here on its
# containers alone (about twenty an episode of hard) pass the young generation's threshold
# (700), so a young collection would walk them within the next batch or two anyway.
COLLECT_AFTER_RESET: Final = 32


class PendingStep:
    """One batch step in progress (:meth:`WorkflowVectorEnv.begin_step`): the slots are stepped in
    slot order by :meth:`run`, which may stop after a time budget and go on at its next call (on
    another thread, say: the server steps a batch on its event loop for 2 ms at most and finishes a
    longer one on a worker thread). However its runs are cut, the result is the one ``step`` gives:
    the episodes are independent, and each is stepped once, in the same order."""

    __slots__ = ("_vector", "_actions", "_next", "_count", "_full", "_errors", "columns")

    def __init__(self, vector: WorkflowVectorEnv, actions: Sequence[Any]) -> None:
        count = vector.num_envs
        self._vector = vector
        self._actions = actions
        self._next = 0
        self._count = count
        self._full = vector.observation_form == "full"
        # In the lean forms, accepted actions share one empty list (a result is read, not changed).
        # Kept typed here as well: VectorStep.errors may be None, these never are.
        errors: list[list[str]] = [[] for _ in range(count)] if self._full else [[]] * count
        self._errors = errors
        self.columns = VectorStep(
            [None] * count,
            [0.0] * count,
            [False] * count,
            [False] * count,
            [None] * count,
            [None] * count,
            errors=errors,
        )

    @property
    def done(self) -> bool:
        return self._next >= self._count

    def run(self, budget: float | None = None) -> bool:
        """Step the slots not yet stepped, in order; with ``budget`` (seconds), stop once it is spent
        (after at least one slot). True when every slot has been stepped (at once, when they all
        were already). The cyclic collector is held off while it runs (see ``_CollectorPause``)."""
        if self.done:
            return True
        return _PAUSE.run(lambda: self._run(budget))

    def _run(self, budget: float | None) -> bool:
        stop = None if budget is None else time.perf_counter() + budget
        run = self._vector._run_full if self._full else self._vector._run_lean
        self._next = run(self._actions, self._next, stop, self.columns, self._errors)
        return self.done

    def result(self) -> VectorStep:
        """The step's columns (every slot stepped); the encoded form's arrays are read now."""
        if not self.done:
            raise RuntimeError("the batch step has not run to its end")
        encoding = self._vector._encoding
        if encoding is not None:
            self.columns.encoded, self.columns.action_masks = encoding.columns()
        return self.columns


def check_batch_size(count: int) -> None:
    if not 1 <= count <= MAX_EPISODES:
        raise ValueError(f"a batch holds 1 to {MAX_EPISODES} episodes, got {count}")


def _per_slot(name: str, value: Any, count: int) -> list[Any]:
    """A value for every slot: one value repeated, or a list of exactly ``count``."""
    if isinstance(value, (str, int)) or value is None:
        return [value] * count
    if not isinstance(value, Sequence):
        raise ValueError(f"{name} must be one value or a list of {count}, got {type(value).__name__}")
    if len(value) != count:
        raise ValueError(f"{name} must list one value per episode: {count}, got {len(value)}")
    return list(value)


class WorkflowVectorEnv:
    """``num_envs`` episodes (1 to 256), reset and stepped in one call.

    ``task_ids``: one task id for every slot (then ``num_envs`` says how many),
    or a list with one task id per slot (tasks may be mixed). ``worker_count``:
    one value or one per slot (generated tasks only, as for ``WorkflowEnv``).
    ``reward_mode``: ``shaped`` (default), ``grade`` or ``sparse``, for every
    episode (see ``WorkflowEnv``). ``outcome_secret`` seals every episode (see
    ``WorkflowEnv``). ``observation``: ``full`` (default), ``none`` or
    ``encoded`` (see the module docstring).
    """

    def __init__(
        self,
        task_ids: str | Sequence[str],
        num_envs: int | None = None,
        *,
        worker_count: int | None | Sequence[int | None] = None,
        autoreset: bool = True,
        registry: Any = None,
        reward_mode: str = "shaped",
        outcome_secret: bytes | str | None = None,
        observation: str = "full",
    ) -> None:
        self.reward_mode = check_reward_mode(reward_mode)
        if observation not in OBSERVATION_FORMS:
            raise ValueError(f"observation must be one of {', '.join(OBSERVATION_FORMS)}, got {observation!r}")
        self.observation_form = observation
        if isinstance(task_ids, str):
            count = 1 if num_envs is None else num_envs
            check_batch_size(count)
            tasks = [task_ids] * count
        else:
            tasks = list(task_ids)
            check_batch_size(len(tasks))
            if num_envs is not None and num_envs != len(tasks):
                raise ValueError(f"num_envs is {num_envs} but {len(tasks)} task ids were given")
        self.num_envs = len(tasks)
        self.task_ids: list[str] = tasks
        self.worker_counts: list[int | None] = _per_slot("worker_count", worker_count, self.num_envs)
        self.autoreset = autoreset
        self._secret = outcome_secret
        first = WorkflowEnv(registry, outcome_secret)
        self.registry = first.registry
        # Unknown tasks and parameters a task does not take fail here, not in the middle of a batch.
        for task_id, workers in set(zip(self.task_ids, self.worker_counts, strict=True)):
            self.registry.resolve(task_id, seed=None, worker_count=workers)
        self.envs: list[Any] = [first] + [WorkflowEnv(self.registry, outcome_secret) for _ in range(self.num_envs - 1)]
        self.seeds: list[int] = [0] * self.num_envs
        # The episode that ended last in each slot (autoreset replaces the slot's environment).
        self.last_finished: list[Any] = [None] * self.num_envs
        self._started = False
        self._workflow_only = False
        self._encoding: Any = None
        if observation == "encoded":
            from workflow_orchestrator.gym_env import BatchEncoding

            self._encoding = BatchEncoding(self.task_ids, self.registry)

    def reset(self, seed: int | Sequence[int] = 0) -> VectorStep:
        """Start an episode in every slot: slot ``i`` gets ``seed + i``, or ``seed[i]`` for a list."""
        return _PAUSE.run(lambda: self._reset(seed), collect=self.num_envs >= COLLECT_AFTER_RESET)

    def _reset(self, seed: int | Sequence[int]) -> VectorStep:
        count = self.num_envs
        if isinstance(seed, int) and not isinstance(seed, bool):
            seeds = [(seed + i) % (MAX_SEED + 1) for i in range(count)]
        elif isinstance(seed, Sequence) and not isinstance(seed, str):
            if len(seed) != count:
                raise ValueError(f"reset needs one seed per episode: {count}, got {len(seed)}")
            seeds = list(seed)
        else:
            raise ValueError(f"seed must be an int or a list of {count} ints, got {type(seed).__name__}")
        for value in seeds:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
                raise ValueError(f"seeds must be ints between 0 and {MAX_SEED}, got {value!r}")
        for env, task_id, value, workers in zip(self.envs, self.task_ids, seeds, self.worker_counts, strict=True):
            env.start(task_id, seed=value, worker_count=workers, reward_mode=self.reward_mode)
        # Without observations, an episode's first one is not built (it is built when read).
        observations = [] if self.observation_form == "none" else [env.observation for env in self.envs]
        self.seeds = seeds
        self.last_finished = [None] * count
        self._started = True
        # Every slot a workflow episode (no canvas): the none form steps them with step_slots.
        self._workflow_only = all(isinstance(env.episode, Episode) for env in self.envs)
        result = VectorStep(
            observations=observations if self.observation_form == "full" else [None] * count,
            rewards=[0.0] * count,
            terminated=[False] * count,
            truncated=[False] * count,
            grades=[None] * count,
            final_observations=[None] * count,
            errors=[[] for _ in range(count)],
        )
        if self._encoding is not None:
            self._encoding.start_all(observations)
            result.encoded, result.action_masks = self._encoding.columns()
        return result

    def step(self, actions: Sequence[Any]) -> VectorStep:
        """One action per slot, in slot order; each is what ``WorkflowEnv.step`` takes."""
        pending = self.begin_step(actions)
        pending.run()
        return pending.result()

    def begin_step(self, actions: Sequence[Any]) -> PendingStep:
        """A step of every slot, checked (``ValueError`` for a batch of the wrong shape, before any
        episode moves) but not yet run: :meth:`PendingStep.run` steps the slots in order, all at once
        or a time budget at a time, and :meth:`PendingStep.result` gives what ``step`` returns. Until
        it has run to the end, the environment must not be stepped or reset otherwise."""
        self.check_actions(actions)
        return PendingStep(self, actions)

    # The two loops of a step, one per kind of form: each steps the slots from ``start`` on, in
    # order, writes their rows of ``out``, and stops after the slot that reaches ``stop`` (a
    # perf_counter time; None: at the last slot). They return the next slot to step.

    def _run_full(
        self, actions: Sequence[Any], start: int, stop: float | None, out: VectorStep, errors: list[list[str]]
    ) -> int:
        envs = self.envs
        observations, finals = out.observations, out.final_observations
        rewards, terminated, truncated, grades = out.rewards, out.terminated, out.truncated, out.grades
        autoreset = self.autoreset
        clock = time.perf_counter
        count = len(envs)
        i = start
        while i < count:
            observation = envs[i].step(actions[i])
            failed = observation["errors"]
            if failed:
                errors[i] = [error["code"] for error in failed]
            rewards[i] = observation["reward"]
            terminated[i] = observation["terminated"]
            truncated[i] = observation["truncated"]
            if observation["done"]:
                grades[i] = observation.get("grade")
                if autoreset:
                    finals[i] = observation
                    observation = self._next_episode(i).observation
            observations[i] = observation
            i += 1
            if stop is not None and clock() >= stop:
                break
        return i

    def _run_lean(
        self, actions: Sequence[Any], start: int, stop: float | None, out: VectorStep, errors: list[list[str]]
    ) -> int:
        """Without observation dicts; the encoded form reads each slot's observation once to encode it."""
        if self._encoding is None and self._workflow_only:
            return self._run_workflow(actions, start, stop, out, errors)
        envs = self.envs
        rewards = out.rewards
        encoding = self._encoding
        clock = time.perf_counter
        count = len(envs)
        i = start
        while i < count:
            env = envs[i]
            episode = env.advance(actions[i])
            rewards[i] = episode.last_reward
            # The errors the observation shows (a workflow episode's last_errors, a canvas episode's errors).
            failed = getattr(episode, "last_errors", None)
            if failed is None:
                failed = episode.errors
            if failed:
                errors[i] = [error["code"] for error in failed]
            following = self._ended(i, episode, out) if episode.terminated or episode.truncated else None
            if following is not None:
                if encoding is not None:
                    encoding.start(i, following.observation)
            elif encoding is not None:
                encoding.encode(i, env.observation)
            i += 1
            if stop is not None and clock() >= stop:
                break
        return i

    def _run_workflow(
        self, actions: Sequence[Any], start: int, stop: float | None, out: VectorStep, errors: list[list[str]]
    ) -> int:
        """The ``none`` form when every slot plays a workflow episode: the core's ``step_slots``
        steps the slots (compiled with the episode in the compiled build) and hands back at every
        episode that ends, which is graded (and replaced, with autoreset) here."""
        envs = self.envs
        episodes = [env.episode for env in envs]
        rewards = out.rewards
        budget = -1.0 if stop is None else stop
        count = len(envs)
        i = start
        while i < count:
            stepped = step_slots(episodes, actions, i, budget, rewards, errors)
            # What WorkflowEnv.advance does beside the step: the observation is built when read.
            for env in envs[i:stepped]:
                env._observation = None
            i = stepped
            last = i - 1
            episode = episodes[last]
            if episode.terminated or episode.truncated:
                following = self._ended(last, episode, out)
                if following is not None:
                    episodes[last] = following.episode
            if stop is not None and time.perf_counter() >= stop:
                break
        return i

    def _ended(self, i: int, episode: Any, out: VectorStep) -> WorkflowEnv | None:
        """Slot ``i``'s episode ended at this step (the lean forms): its flags and grade go to ``out``;
        with autoreset the slot's next episode starts, and is returned (else None)."""
        out.terminated[i] = episode.terminated
        out.truncated[i] = episode.truncated
        out.grades[i] = grade_episode(episode)
        return self._next_episode(i) if self.autoreset else None

    def observation(self, i: int) -> dict[str, Any]:
        """Slot ``i``'s current observation (built now if the step did not build it)."""
        observation: dict[str, Any] = self.envs[i].observation
        return observation

    def check_actions(self, actions: Any) -> None:
        """Raise ``ValueError`` unless ``actions`` is a batch this environment can step."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if isinstance(actions, (str, bytes, Mapping)) or not isinstance(actions, Sequence):
            raise ValueError(f"actions must be a list with one action per episode, got {type(actions).__name__}")
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions (one per episode), got {len(actions)}")

    def _next_episode(self, i: int) -> WorkflowEnv:
        """Slot ``i``'s next episode, started without its first observation (built when read)."""
        self.last_finished[i] = self.envs[i]
        env = self.envs[i] = WorkflowEnv(self.registry, self._secret)
        seed = self.seeds[i] = (self.seeds[i] + self.num_envs) % (MAX_SEED + 1)
        env.start(self.task_ids[i], seed=seed, worker_count=self.worker_counts[i], reward_mode=self.reward_mode)
        return env

    @property
    def observations(self) -> list[dict[str, Any]]:
        """The current observation of every slot."""
        return [env.observation for env in self.envs]
