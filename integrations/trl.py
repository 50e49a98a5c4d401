"""Training with TRL's ``GRPOTrainer``: an ``environment_factory`` and its prompt dataset.

TRL's contract for ``GRPOTrainer(environment_factory=...)``: the factory is
called with no argument and returns an environment; before each rollout the
trainer calls ``reset(**row)`` with the dataset row's columns, and appends the
text it returns to the prompt; every other public method is a tool the model
may call (typed arguments, a Google-style docstring); ``get_reward()`` scores
the rollout once the model stops calling tools. Instances are pooled and
reused, one per rollout of a batch.

So here the tools are the actions (``delegate``, ``retry``, ``dispatch``,
``wait``, ``synthesize``, ``abort``), each returning the next observation as
text; a tool called after the episode ended raises, which TRL hands back to
the model as an error. The reward is the episode's grade (``reward="grade"``,
0 for an episode the model left unfinished) or the sum of its shaped rewards
(``reward="return"``)::

    from trl import GRPOConfig, GRPOTrainer
    from workflow_orchestrator.integrations.trl import WorkflowEnvFactory, prompt_dataset

    factory = WorkflowEnvFactory("http://127.0.0.1:8000")  # or a list of URLs, or None: in process
    trainer = GRPOTrainer(
        model="Qwen/Qwen3-0.6B",
        args=GRPOConfig(...),
        train_dataset=prompt_dataset(["easy", "medium"], range(0, 1000)),
        environment_factory=factory,
    )
    trainer.train()
    factory.close()

Over a server, each instance holds one WebSocket session for its lifetime:
the server's ``--max-sessions`` must cover the generation batch
(``per_device_train_batch_size x gradient_accumulation_steps`` rollouts per
process, and the evaluation batch when there is one).

This module needs no TRL itself; :func:`prompt_dataset` needs ``datasets``
(both come with the ``trl`` extra).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from workflow_orchestrator.server.core import render_text
from workflow_orchestrator.server.core.rewards import check_reward_mode
from workflow_orchestrator.server.inprocess import WorkflowEnv

if TYPE_CHECKING:
    from datasets import Dataset

RewardMode = Literal["grade", "return"]

SYSTEM_PROMPT = """\
You orchestrate a workflow: subtasks that form a dependency graph, run by simulated worker agents. \
Call the tools to act; each returns the new state.
- A subtask is ready when every subtask it depends on is completed. Start ready subtasks with delegate, \
several at once with dispatch; start failed ones again with retry.
- An agent takes a subtask only if its capabilities include the subtask's type, one at a time, and at most \
`capacity` subtasks run at once. Attempts may fail: after a permanent failure retry with another agent.
- wait lets time pass; synthesize ends the workflow once every subtask is completed.
- Invalid actions change nothing but cost time and are penalised. The state lists the legal actions.
Finish the workflow quickly, in parallel, within deadlines and budget: the final grade (0 to 1) is your score."""


class _Transport(Protocol):
    def reset(self, task_id: str, seed: int | None, worker_count: int | None, reward_mode: str) -> dict[str, Any]: ...

    def step(self, action: dict[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...


class _LocalTransport:
    """Episodes in this process, with the server's core."""

    def __init__(self) -> None:
        self._env = WorkflowEnv()

    def reset(self, task_id: str, seed: int | None, worker_count: int | None, reward_mode: str) -> dict[str, Any]:
        return self._env.reset(task_id, seed=seed, worker_count=worker_count, reward_mode=reward_mode)

    def step(self, action: dict[str, Any]) -> dict[str, Any]:
        return self._env.step(action)

    def close(self) -> None:
        pass


class _RemoteTransport:
    """Episodes on a server, over one WebSocket session (opened at the first reset)."""

    def __init__(self, base_url: str | list[str], token: str | None) -> None:
        from workflow_orchestrator.client import WorkflowClient

        # The factory already chose where this instance starts in a list of URLs.
        self._client = WorkflowClient(base_url, token=token, spread=False).sync()
        self._connected = False

    def reset(self, task_id: str, seed: int | None, worker_count: int | None, reward_mode: str) -> dict[str, Any]:
        if not self._connected:
            self._client.connect()
            self._connected = True
        result = self._client.reset(task_id=task_id, seed=seed, worker_count=worker_count, reward_mode=reward_mode)
        return _observation_dict(result)

    def step(self, action: dict[str, Any]) -> dict[str, Any]:
        return _observation_dict(self._client.step(action))

    def close(self) -> None:
        if self._connected:
            self._client.close()
            self._connected = False


def _observation_dict(result: Any) -> dict[str, Any]:
    observation: dict[str, Any] = result.observation.model_dump()
    if observation.get("grade") is not None:
        observation["grade"] = dict(observation["grade"])
    return observation


class WorkflowToolEnv:
    """One episode at a time, its actions as tools: what ``GRPOTrainer`` calls.

    Made by :class:`WorkflowEnvFactory` (TRL calls the factory with no
    argument). Only ``reset``, ``get_reward`` and the six action tools are
    public: TRL would offer any other public method to the model as a tool.

    ``reward_mode`` is the environment's per-step reward (``shaped``, ``grade``
    or ``sparse``; a dataset column ``reward_mode`` overrides it per row): what
    ``reward="return"`` sums and each tool's answer reports.
    """

    def __init__(self, transport: _Transport, reward: RewardMode = "grade", reward_mode: str = "shaped") -> None:
        if reward not in ("grade", "return"):
            raise ValueError(f"reward must be 'grade' or 'return', not {reward!r}")
        self._transport = transport
        self._reward_mode = reward
        self._step_rewards = check_reward_mode(reward_mode)
        self._observation: dict[str, Any] | None = None
        self._return = 0.0

    # ------------------------------------------------------------ TRL's hooks

    def reset(
        self,
        task_id: str = "easy",
        seed: int | None = None,
        worker_count: int | None = None,
        reward_mode: str | None = None,
        **row: Any,
    ) -> str:
        """Start the episode a dataset row names (``task_id``, ``seed``, ``worker_count``,
        and ``reward_mode`` when the row has it).

        The row's other columns (``prompt`` and any of the user's) are
        ignored. Returns the initial state as text, which TRL appends to the
        prompt.
        """
        mode = self._step_rewards if reward_mode is None else check_reward_mode(reward_mode)
        self._observation = self._transport.reset(task_id, _optional_int(seed), _optional_int(worker_count), mode)
        self._return = 0.0
        return "\n\n" + render_text(self._observation)

    def get_reward(self) -> float:
        """The rollout's reward: the grade of the finished episode (0 if unfinished), or its return."""
        if self._observation is None:
            return 0.0
        if self._reward_mode == "return":
            return self._return
        grade = self._observation.get("grade")
        return float(grade["score"]) if self._observation.get("done") and grade else 0.0

    # ------------------------------------------------------------ tools

    def delegate(self, subtask_id: str, agent_name: str) -> str:
        """Start a ready subtask on an idle agent whose capabilities include the subtask's type.

        Args:
            subtask_id: The id of a ready subtask.
            agent_name: The name of an idle agent that can do the subtask's type.

        Returns:
            The state after the action.
        """
        return self._act({"action_type": "delegate", "subtask_id": subtask_id, "agent_name": agent_name})

    def retry(self, subtask_id: str, agent_name: str | None = None) -> str:
        """Start a failed subtask again (after a permanent failure, on a different agent).

        Args:
            subtask_id: The id of a failed subtask.
            agent_name: An idle capable agent; left out, the environment picks one.

        Returns:
            The state after the action.
        """
        action: dict[str, Any] = {"action_type": "retry", "subtask_id": subtask_id}
        if agent_name:
            action["agent_name"] = agent_name
        return self._act(action)

    def dispatch(self, subtask_ids: list[str], agent_names: list[str] | None = None) -> str:
        """Start several ready or failed subtasks at once, each on a different agent; all start or none does.

        Args:
            subtask_ids: The subtasks to start.
            agent_names: The agent for each subtask, in the same order; left out, each subtask goes to an idle
                capable agent.

        Returns:
            The state after the action.
        """
        if agent_names is None:
            return self._act({"action_type": "dispatch", "task_ids": list(subtask_ids)})
        if len(agent_names) != len(subtask_ids):
            raise ValueError("agent_names must name one agent for each of subtask_ids")
        assignments = [{"subtask_id": s, "agent_name": a} for s, a in zip(subtask_ids, agent_names, strict=True)]
        return self._act({"action_type": "dispatch", "assignments": assignments})

    def wait(self) -> str:
        """Let time pass (in event time, until the next event).

        Returns:
            The state after the action.
        """
        return self._act({"action_type": "wait"})

    def synthesize(self) -> str:
        """End the workflow; valid only when every subtask is completed.

        Returns:
            The final state and the episode's grade.
        """
        return self._act({"action_type": "synthesize"})

    def abort(self, subtask_id: str) -> str:
        """Stop a running subtask and free its agent; the subtask becomes failed and may be retried.

        Args:
            subtask_id: The id of a running subtask.

        Returns:
            The state after the action.
        """
        return self._act({"action_type": "abort", "subtask_id": subtask_id})

    # ------------------------------------------------------------ internals

    def _act(self, action: dict[str, Any]) -> str:
        if self._observation is None:
            raise RuntimeError("no episode: reset() starts one")
        if self._observation.get("done"):
            raise RuntimeError("the episode is over: no more actions")
        observation = self._transport.step(action)
        self._observation = observation
        reward = float(observation.get("reward") or 0.0)
        self._return += reward
        lines = [f"Reward {reward:+.3f}."]
        if observation.get("done"):
            grade = observation.get("grade") or {}
            lines.append(f"The episode is over. Grade: {float(grade.get('score', 0.0)):.3f}.")
        lines.append(render_text(observation))
        return "\n".join(lines)

    def _close(self) -> None:
        self._transport.close()


class WorkflowEnvFactory:
    """The ``environment_factory`` for ``GRPOTrainer``: each call makes one :class:`WorkflowToolEnv`.

    ``base_url`` is a server's URL (or a ``server-router``'s), or a list of
    replicas' URLs (instances start on them in turn, and one whose replica is
    full at its first reset moves to the next), or None for episodes in this process. ``token`` is the servers'
    bearer token, when they have one. ``reward`` is ``"grade"`` or
    ``"return"``; ``reward_mode`` the environment's per-step reward (``shaped``,
    ``grade`` or ``sparse``). :meth:`close` closes every instance made (their
    WebSocket sessions).
    """

    def __init__(
        self,
        base_url: str | Sequence[str] | None = None,
        token: str | None = None,
        reward: RewardMode = "grade",
        reward_mode: str = "shaped",
    ) -> None:
        self._step_rewards = check_reward_mode(reward_mode)
        urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
        if base_url is not None and not urls:
            raise ValueError("base_url: give at least one URL, or None for episodes in this process")
        self._urls = urls or None
        self._turn = itertools.count()
        self._token = token
        self._reward: RewardMode = reward
        self._made: list[WorkflowToolEnv] = []
        self._lock = threading.Lock()

    def __call__(self) -> WorkflowToolEnv:
        with self._lock:
            transport: _Transport = (
                _LocalTransport() if self._urls is None else _RemoteTransport(self._rotated(self._urls), self._token)
            )
            env = WorkflowToolEnv(transport, reward=self._reward, reward_mode=self._step_rewards)
            self._made.append(env)
        return env

    def _rotated(self, urls: list[str]) -> list[str]:
        start = next(self._turn) % len(urls)
        return urls[start:] + urls[:start]

    @property
    def instances(self) -> list[WorkflowToolEnv]:
        """Every environment this factory made, in order."""
        return list(self._made)

    def close(self) -> None:
        """Close every environment made (their server sessions); they still answer ``get_reward``."""
        with self._lock:
            made = list(self._made)
        for env in made:
            env._close()


def prompt_dataset(
    task_ids: Iterable[str],
    seeds: Iterable[int],
    *,
    worker_count: int | None = None,
    system_prompt: str = SYSTEM_PROMPT,
    instruction: str = "Run this workflow to the end.",
) -> Dataset:
    """The prompt dataset for ``GRPOTrainer``: one row per task and seed.

    Columns: ``prompt`` (a system and a user message; the environment's
    ``reset`` appends the initial state), ``task_id``, ``seed`` and, when
    given, ``worker_count`` (the arena's). Train on one range of seeds and
    evaluate on another: for the arena, ``tasks.arena.TRAINING_SEEDS`` and
    ``EVALUATION_SEEDS`` are the split (see :func:`evaluation_seeds`).
    """
    from datasets import Dataset

    rows = _rows(task_ids, seeds, worker_count, system_prompt, instruction)
    if not rows:
        raise ValueError("no rows: give at least one task id and one seed")
    return Dataset.from_list(rows)


def evaluation_seeds(count: int, start: int | None = None) -> range:
    """``count`` seeds of the held-out evaluation range (never in a training range below it)."""
    from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS

    first = EVALUATION_SEEDS.start if start is None else start
    if not (EVALUATION_SEEDS.start <= first and first + count <= EVALUATION_SEEDS.stop):
        raise ValueError(f"evaluation seeds lie in {EVALUATION_SEEDS.start}..{EVALUATION_SEEDS.stop - 1}")
    return range(first, first + count)


def _rows(
    task_ids: Iterable[str],
    seeds: Iterable[int],
    worker_count: int | None,
    system_prompt: str,
    instruction: str,
) -> list[dict[str, Any]]:
    seed_list = [int(seed) for seed in seeds]
    rows: list[dict[str, Any]] = []
    for task_id in task_ids:
        for seed in seed_list:
            row: dict[str, Any] = {
                "prompt": [
                    {"role": "system", "content": system_prompt},
                    {"role": "user", "content": f"{instruction} Task {task_id}, seed {seed}."},
                ],
                "task_id": task_id,
                "seed": seed,
            }
            if worker_count is not None:
                row["worker_count"] = worker_count
            rows.append(row)
    return rows


def _optional_int(value: Any) -> int | None:
    # Dataset columns may arrive as numpy integers, or None where a row has no value.
    return None if value is None else int(value)
