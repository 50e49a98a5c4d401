"""Plays of every task, as digests, for comparing the pure and the compiled builds
(tests/core/test_native.py runs this module in a process of each).

``python -m tests.support.native_replay SEEDS`` prints one JSON object: whether the
process runs the compiled build, and per play (task, seed, reward mode) a digest of
every observation, reward and error of its steps, its grade, its state and its
event log; then the same for batches of the vector env in each observation form;
then a digest of outcome rolls computed in words (``outcomes.roll_words``, which the
compiled build's outcomes use), and whether this build's outcomes use it.
The plays mix legal actions (a seeded choice among ``legal_actions``) with
invalid ones (every seventh step), so that the error paths are compared too.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from typing import Any

from workflow_orchestrator import WorkflowEnv
from workflow_orchestrator.native import compiled
from workflow_orchestrator.server.core import outcomes
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.vector import WorkflowVectorEnv

REWARD_MODES = ("shaped", "grade", "sparse")
INVALID = (
    {"action_type": "delegate", "subtask_id": "no_such_subtask", "agent_name": "nobody"},
    {"action_type": "launch"},
    {"action_type": "retry"},
    "not an action",
    {"action_type": "dispatch", "task_ids": ["no_such_subtask", 3]},
)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()[:20]


def _action(observation: dict[str, Any], rng: random.Random, step: int) -> Any:
    legal = observation.get("legal_actions") or []
    if step % 7 == 6 or not legal:
        return INVALID[step % len(INVALID)]
    return legal[rng.randrange(len(legal))]


def play(env: WorkflowEnv, task_id: str, seed: int, mode: str) -> str:
    rng = random.Random(f"{task_id}/{seed}/{mode}")
    observation = env.reset(task_id, seed=seed, reward_mode=mode)
    parts = [_digest(observation)]
    step = 0
    while not observation["done"] and step < 400:
        observation = env.step(_action(observation, rng, step))
        parts.append(_digest(observation))
        step += 1
    parts.append(_digest(env.state()))
    parts.append(env.episode.log.digest())
    return _digest(parts)


def batches(task_id: str, seed: int) -> dict[str, str]:
    """Eight episodes of ``task_id`` in one vector env per observation form, stepped by the
    heuristic (read through ``observations``), with autoreset, for 40 rounds."""
    out = {}
    for form in ("full", "none", "encoded"):
        if form == "encoded" and task_id.startswith("canvas/"):
            continue
        vec = WorkflowVectorEnv(task_id, 8, observation=form)
        try:
            result = vec.reset(seed=seed)
        except ValueError as exc:  # a task larger than the family's encoding
            out[f"{task_id} {form}"] = str(exc)
            continue
        policies = [make_policy("heuristic", seed + i) for i in range(8)]
        parts = []
        for _ in range(40):
            actions = [policy.act(observation) for policy, observation in zip(policies, vec.observations, strict=True)]
            result = vec.step(actions)
            encoded = None if result.encoded is None else [result.encoded.tolist(), result.action_masks.tolist()]
            parts.append(
                _digest([result.rewards, result.terminated, result.truncated, result.grades, result.errors, encoded])
            )
            if form == "full":
                parts.append(_digest(result.observations))
        parts.append(_digest([env.episode.log.digest() for env in vec.envs]))
        out[f"{task_id} {form}"] = _digest(parts)
    return out


def rolls(count: int) -> str:
    """A digest of ``count`` rolls in words, of seeded random keys and attempts."""
    rng = random.Random(19)
    values = []
    for _ in range(count):
        seed_key, pair = rng.getrandbits(64), rng.getrandbits(64)
        attempt = rng.choice((0, 1, 2, 3, rng.randrange(1 << 31)))
        values.append(
            outcomes.roll_words(seed_key >> 32, seed_key & 0xFFFFFFFF, pair >> 32, pair & 0xFFFFFFFF, attempt)
        )
    return _digest([value.hex() for value in values])


def main(seeds: int) -> None:
    env = WorkflowEnv()
    plays: dict[str, str] = {}
    vectors: dict[str, str] = {}
    for number, task_id in enumerate(env.registry.task_ids()):
        for seed in range(seeds):
            mode = REWARD_MODES[(number + seed) % len(REWARD_MODES)]
            plays[f"{task_id} {seed} {mode}"] = play(env, task_id, seed, mode)
        vectors.update(batches(task_id, 100 + number))
    print(
        json.dumps(
            {
                "compiled": compiled(),
                "plays": plays,
                "vectors": vectors,
                "rolls": rolls(20_000),
                "rolls_in_words": outcomes._NATIVE,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
