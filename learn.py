"""Training a masked PPO policy on one task, and grading it on held-out seeds.

Needs the ``learn`` extra (sb3-contrib, with torch)::

    from workflow_orchestrator.learn import train_and_evaluate
    result = train_and_evaluate("arena/medium", timesteps=50_000, minutes=10)
    result.curve          # [(timesteps, mean grade on the held-out seeds), ...]

The policy is sb3-contrib's ``MaskablePPO`` with an MLP over the fixed-size
observation of :class:`workflow_orchestrator.gym_env.WorkflowGymEnv`, reading
its action masks. Training draws its seeds from the training range; the curve
and the final figure are mean grade scores on seeds of the held-out
evaluation range, which training never sees, played with the deterministic
(most likely) legal action. The built-in policies (random, greedy, heuristic)
are graded on the same held-out seeds, through the same core.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workflow_orchestrator import WorkflowEnv
from workflow_orchestrator.gym_env import WorkflowGymEnv
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS

BASELINES = ("random", "greedy", "heuristic")


@dataclass(slots=True)
class LearningResult:
    task_id: str
    timesteps: int
    seconds: float
    # (timesteps trained, mean grade on the held-out seeds)
    curve: list[tuple[int, float]] = field(default_factory=list)
    final_score: float = 0.0
    baselines: dict[str, float] = field(default_factory=dict)
    evaluation_seeds: list[int] = field(default_factory=list)


def held_out_seeds(count: int) -> list[int]:
    return list(EVALUATION_SEEDS[:count])


def baseline_scores(task_id: str, seeds: Sequence[int], policies: Sequence[str] = BASELINES) -> dict[str, float]:
    """Mean grade of each built-in policy on ``seeds``."""
    env = WorkflowEnv()
    means: dict[str, float] = {}
    for name in policies:
        scores = []
        for seed in seeds:
            policy = make_policy(name, seed)
            observation = env.reset(task_id, seed=seed)
            while not observation["done"]:
                observation = env.step(policy.act(observation))
            scores.append(observation["grade"]["score"])
        means[name] = round(statistics.mean(scores), 4)
    return means


def evaluate_model(model: Any, task_id: str, seeds: Sequence[int]) -> float:
    """Mean grade of ``model`` (deterministic, masked) on ``seeds``."""
    env = WorkflowGymEnv(task_id, seeds="evaluation")
    scores: list[float] = []
    for seed in seeds:
        observation, info = env.reset(seed=seed)
        done = False
        while not done:
            action, _ = model.predict(observation, action_masks=info["action_mask"], deterministic=True)
            observation, _, terminated, truncated, info = env.step(int(action))
            done = terminated or truncated
        scores.append(float(info["score"]))
    return round(statistics.mean(scores), 4)


def train_and_evaluate(
    task_id: str,
    *,
    timesteps: int,
    minutes: float = 10.0,
    evaluations: int = 8,
    evaluation_seeds: int = 50,
    final_seeds: int = 200,
    envs: int = 4,
    seed: int = 0,
    baselines: Sequence[str] = BASELINES,
) -> LearningResult:
    """Train MaskablePPO on ``task_id`` for ``timesteps`` (or until ``minutes`` of
    wall time ran out), evaluating ``evaluations`` times along the way."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    curve_seeds = held_out_seeds(evaluation_seeds)
    vec = DummyVecEnv([lambda: WorkflowGymEnv(task_id) for _ in range(envs)])
    vec.seed(seed)
    n_steps = 256
    model = MaskablePPO(
        "MlpPolicy",
        vec,
        n_steps=n_steps,
        batch_size=256,
        n_epochs=6,
        learning_rate=3e-4,
        gamma=0.99,
        gae_lambda=0.95,
        ent_coef=0.01,
        policy_kwargs={"net_arch": [128, 128]},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    result = LearningResult(task_id=task_id, timesteps=0, seconds=0.0, evaluation_seeds=held_out_seeds(final_seeds))
    started = time.monotonic()
    deadline = started + minutes * 60
    every = max(n_steps * envs, timesteps // max(1, evaluations))
    result.curve.append((0, evaluate_model(model, task_id, curve_seeds)))

    class Checkpoints(BaseCallback):
        """Evaluates every ``every`` steps; stops when the time budget ran out."""

        def __init__(self) -> None:
            super().__init__()
            self.next_at = every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_at:
                self.next_at += every
                result.curve.append((self.num_timesteps, evaluate_model(self.model, task_id, curve_seeds)))
            return time.monotonic() < deadline

    model.learn(total_timesteps=timesteps, callback=Checkpoints())
    result.timesteps = int(model.num_timesteps)
    if result.curve[-1][0] != result.timesteps:
        result.curve.append((result.timesteps, evaluate_model(model, task_id, curve_seeds)))
    result.seconds = round(time.monotonic() - started, 1)
    result.final_score = evaluate_model(model, task_id, result.evaluation_seeds)
    result.baselines = baseline_scores(task_id, result.evaluation_seeds, baselines)
    vec.close()
    return result
