"""Stepping many episodes of the workflow families in one loop (the vector env's lean forms).

:func:`step_slots` is the inner loop of a batch step that builds no observation:
it steps each episode with its action and writes the slot's reward and error
codes, in slot order, and hands back to its caller at every episode that ends
(the caller grades it and, with autoreset, starts the next one) and when a time
budget is spent. It lives in the core so that the compiled build compiles it
with the episode: the loop then calls :meth:`Episode.step` directly, where the
interpreted loop paid a Python call into the compiled step for every slot.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .episode import Episode


def step_slots(
    episodes: list[Episode],
    actions: Sequence[Any],
    start: int,
    stop: float,
    rewards: list[float],
    errors: list[list[str]],
) -> int:
    """Step ``episodes[start:]`` in order, each with the action of its slot, writing its
    ``rewards`` and (for a step with errors) ``errors`` rows, and return the index after
    the last slot stepped: the loop ends after the last slot, after a slot whose episode
    ended, and after the slot that finds ``time.perf_counter()`` at or past ``stop``
    (``stop`` below 0: no time budget)."""
    count = len(episodes)
    timed = stop >= 0.0
    clock = time.perf_counter
    i = start
    while i < count:
        episode = episodes[i]
        episode.step(actions[i])
        rewards[i] = episode.last_reward
        failed = episode.last_errors
        if failed:
            errors[i] = [error["code"] for error in failed]
        i += 1
        if episode.terminated or episode.truncated:
            break
        if timed and clock() >= stop:
            break
    return i
