"""Seeded, order-free attempt outcomes.

Whether attempt ``k`` of subtask ``s`` by agent ``a`` succeeds is a pure
function of (task, episode seed, s, a, k): the same seed and the same actions
give the same outcomes in any process and in any order of evaluation.
"""

from __future__ import annotations

import hashlib

from .model import AgentSpec, SubtaskSpec

PERMANENT = "permanent"
TRANSIENT = "transient"

_SCALE = float(2**64)


def attempt_roll(task_id: str, seed: int, subtask_id: str, agent_name: str, attempt: int) -> float:
    """A uniform number in [0, 1) fixed by its arguments."""
    key = f"{task_id}\x1f{seed}\x1f{subtask_id}\x1f{agent_name}\x1f{attempt}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / _SCALE


def decide_attempt(
    task_id: str,
    seed: int,
    subtask: SubtaskSpec,
    agent: AgentSpec,
    attempt: int,
    prior_failures: int,
    retry_cap: int | None,
) -> str | None:
    """Return None when the attempt succeeds, else the failure kind.

    ``attempt`` counts this agent's earlier attempts at this subtask. A failure
    is permanent only when the agent can never complete this subtask type.
    """
    if subtask.type in agent.never_succeeds:
        return PERMANENT
    if attempt < agent.fails_first.get(subtask.type, 0):
        return TRANSIENT
    if retry_cap is not None and prior_failures >= retry_cap:
        return None
    if agent.reliability >= 1.0:
        return None
    roll = attempt_roll(task_id, seed, subtask.id, agent.name, attempt)
    return None if roll < agent.reliability else TRANSIENT
