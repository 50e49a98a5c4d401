"""Seeded, order-free attempt outcomes.

Whether attempt ``k`` of subtask ``s`` by agent ``a`` succeeds is a pure
function of (task, episode seed, s, a, k): the same seed and the same actions
give the same outcomes in any process and in any order of evaluation.

Each name is hashed once (BLAKE2b, cached) to a 64-bit key; an attempt's roll
mixes the keys of (task, seed), subtask and agent with the attempt number
through the SplitMix64 finaliser, which is cheap enough for the step loop.
The compiled build computes the same roll in 32-bit words (:func:`roll_words`):
its integers beyond 62 bits are Python objects, so the 64-bit arithmetic made
the roll about a quarter of a compiled step.

Sealed episodes: with an outcome secret, the episode's key is a keyed hash
(BLAKE2b with the secret as its key) of (task, seed) instead of a plain one,
and so is every other hidden draw made for the episode (:func:`sealed_seed`:
generated traps and dropouts, arena outages). Knowing the seed and this
package then predicts nothing beyond the declared reliabilities; the same
secret and seed still give the same episode in any process. Without a secret
every draw is the unsealed one, bit for bit.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Final, Protocol

from mypy_extensions import i64

from .model import AgentSpec, SubtaskSpec


class AttemptOutcomes(Protocol):
    """What decides the attempts of a (subtask, agent) pair: :class:`PairOutcomes`, or a
    stand-in with the same ``decide`` (the planner's samples, tasks/planner.py)."""

    def decide(self, seed_key: int, attempt: int, prior_failures: int, retry_cap: int | None) -> str | None: ...


PERMANENT: Final = "permanent"
TRANSIENT: Final = "transient"

_MASK: Final = (1 << 64) - 1
_SCALE: Final = float(1 << 64)
_WORD: Final = 0xFFFFFFFF
_HALF: Final = 0xFFFF


@lru_cache(maxsize=65536)
def name_key(*parts: str) -> int:
    """A 64-bit key for a name (or a tuple of names), stable across processes."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def outcome_secret(secret: bytes | str | None) -> bytes | None:
    """The secret as bytes (a string is UTF-8 encoded); None stays None, an empty secret is refused."""
    if secret is None:
        return None
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not raw:
        raise ValueError("an outcome secret must not be empty")
    return raw


def _hash_key(secret: bytes) -> bytes:
    # BLAKE2b takes a key of up to 64 bytes; a longer secret is hashed down to one.
    return secret if len(secret) <= 64 else hashlib.blake2b(secret, digest_size=64).digest()


def sealed_key(secret: bytes, *parts: str) -> int:
    """A 64-bit key for names under a secret: a keyed hash, unpredictable without the secret."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8, key=_hash_key(secret)).digest()
    return int.from_bytes(digest, "big")


def sealed_seed(secret: bytes, *parts: str) -> int:
    """A seed for ``random.Random`` of a hidden draw under a secret (256 bits of a keyed hash)."""
    digest = hashlib.blake2b("\x1f".join(("draw", *parts)).encode(), digest_size=32, key=_hash_key(secret)).digest()
    return int.from_bytes(digest, "big")


def episode_key(task_id: str, seed: int, secret: bytes | None = None) -> int:
    """The key of an episode's outcome rolls: of (task, seed), keyed by the secret when there is one."""
    if secret is None:
        return name_key(task_id, str(seed))
    return sealed_key(secret, "outcomes", task_id, str(seed))


def pair_key(subtask_key: int, agent_key: int) -> int:
    """The part of a roll's input fixed by the subtask and the agent."""
    return (subtask_key * 0x9E3779B97F4A7C15 + agent_key * 0xD6E8FEB86659FD93) & _MASK


def roll(seed_key: int, pair: int, attempt: int) -> float:
    """A uniform number in [0, 1) fixed by the episode key, the pair key and the attempt number."""
    x = (seed_key + pair + (attempt + 1) * 0xA0761D6478BD642F) & _MASK
    # SplitMix64's finaliser, applied twice (written out: this runs at every start).
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) / _SCALE


def _mul_low(u: i64, v: i64) -> i64:
    """``u * v`` modulo 2**32, for words ``u`` and ``v``; no product exceeds 48 bits."""
    return (u * (v & _HALF) + (((u * (v >> 16)) & _HALF) << 16)) & _WORD


def _mul(hi: i64, lo: i64, c_hi: i64, c_lo: i64) -> tuple[i64, i64]:
    """``(hi, lo) * (c_hi, c_lo)`` modulo 2**64, each number as its high and low words."""
    a1, a0 = lo >> 16, lo & _HALF
    b1, b0 = c_lo >> 16, c_lo & _HALF
    middle = a1 * b0 + a0 * b1
    low = a0 * b0 + ((middle & _HALF) << 16)
    carry = (low >> 32) + (middle >> 16) + a1 * b1  # lo * c_lo = low (32 bits) + carry * 2**32
    return (carry + _mul_low(hi, c_lo) + _mul_low(lo, c_hi)) & _WORD, low & _WORD


def _shift_xor(hi: i64, lo: i64, k: i64) -> tuple[i64, i64]:
    """``x ^ (x >> k)`` for ``x = (hi, lo)`` and ``0 < k < 32``."""
    return hi ^ (hi >> k), lo ^ (((lo >> k) | (hi << (32 - k))) & _WORD)


def roll_words(seed_hi: i64, seed_lo: i64, pair_hi: i64, pair_lo: i64, attempt: i64) -> float:
    """:func:`roll` of the keys given as words (``key = hi * 2**32 + lo``), for an ``attempt``
    below 2**32 - 1: the same number, computed without any integer beyond 49 bits."""
    step_hi, step_lo = _mul(0, attempt + 1, 0xA0761D64, 0x78BD642F)
    lo = seed_lo + pair_lo + step_lo
    hi = (seed_hi + pair_hi + step_hi + (lo >> 32)) & _WORD
    lo &= _WORD
    for _ in range(2):
        hi, lo = _shift_xor(hi, lo, 30)
        hi, lo = _mul(hi, lo, 0xBF58476D, 0x1CE4E5B9)
        hi, lo = _shift_xor(hi, lo, 27)
        hi, lo = _mul(hi, lo, 0x94D049BB, 0x133111EB)
        hi, lo = _shift_xor(hi, lo, 31)
    # float(hi * 2**32 + lo), rounded once as int-to-float rounds, then scaled exactly.
    return (float(hi) * 4294967296.0 + float(lo)) / _SCALE


def _compiled() -> bool:
    return not hasattr(_compiled, "__code__")  # a compiled function has no Python code


# Whether this module runs compiled: PairOutcomes.decide then rolls in words.
_NATIVE: Final = _compiled()


def roll_from_keys(seed_key: int, subtask_key: int, agent_key: int, attempt: int) -> float:
    """A uniform number in [0, 1) fixed by the keys and the attempt number."""
    return roll(seed_key, pair_key(subtask_key, agent_key), attempt)


def attempt_roll(task_id: str, seed: int, subtask_id: str, agent_name: str, attempt: int) -> float:
    """The roll of attempt ``attempt`` of a subtask by an agent (by names)."""
    return roll_from_keys(episode_key(task_id, seed), name_key(subtask_id), name_key(agent_name), attempt)


class PairOutcomes:
    """What decides the attempts of one subtask by one agent, besides the episode
    and the attempt number (prepared once per task for the step loop)."""

    __slots__ = ("permanent", "fails_first", "reliability", "key", "key_hi", "key_lo")

    def __init__(self, subtask: SubtaskSpec, agent: AgentSpec) -> None:
        self.permanent = subtask.type in agent.never_succeeds
        self.fails_first = agent.fails_first.get(subtask.type, 0)
        self.reliability = agent.reliability
        self.key = pair_key(name_key(subtask.id), name_key(agent.name))
        self.key_hi: i64 = self.key >> 32
        self.key_lo: i64 = self.key & _WORD

    def with_reliability(self, reliability: float) -> PairOutcomes:
        """The same pair with another reliability (the same draws decide its attempts)."""
        other = PairOutcomes.__new__(PairOutcomes)
        other.permanent = self.permanent
        other.fails_first = self.fails_first
        other.reliability = reliability
        other.key = self.key
        other.key_hi = self.key_hi
        other.key_lo = self.key_lo
        return other

    def decide(self, seed_key: int, attempt: int, prior_failures: int, retry_cap: int | None) -> str | None:
        """Return None when the attempt succeeds, else the failure kind.

        ``attempt`` counts this agent's earlier attempts at this subtask. A failure
        is permanent only when the agent can never complete this subtask type.
        """
        if self.permanent:
            return PERMANENT
        if attempt < self.fails_first:
            return TRANSIENT
        if retry_cap is not None and prior_failures >= retry_cap:
            return None
        if self.reliability >= 1.0:
            return None
        if _NATIVE and attempt < _WORD - 1:
            value = roll_words(seed_key >> 32, seed_key & _WORD, self.key_hi, self.key_lo, attempt)
        else:
            value = roll(seed_key, self.key, attempt)
        return None if value < self.reliability else TRANSIENT


def decide_attempt(
    seed_key: int,
    subtask: SubtaskSpec,
    agent: AgentSpec,
    attempt: int,
    prior_failures: int,
    retry_cap: int | None,
) -> str | None:
    """:meth:`PairOutcomes.decide` for a subtask and an agent given by their specs."""
    return PairOutcomes(subtask, agent).decide(seed_key, attempt, prior_failures, retry_cap)
