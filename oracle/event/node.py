"""An arena episode at a decision point, as the search copies and compares it.

Only what the relaxed model needs (every start succeeds): statuses, unmet
dependencies, finish times and the priority totals the score reads. It is
checked by replay like the rest of the model (see the package docstring).
"""

from __future__ import annotations


class ArenaNode:
    """An arena episode at a decision point (time ``t``, after the events at ``t``)."""

    __slots__ = (
        "t",
        "status",
        "unmet",
        "finish",
        "running",
        "done_count",
        "done_priority",
        "on_time_priority",
        "ended",
    )

    t: int
    status: list[int]
    unmet: list[int]
    finish: list[int]
    running: int
    done_count: int
    done_priority: int
    on_time_priority: int
    ended: bool

    def copy(self) -> ArenaNode:
        c = ArenaNode()
        c.t = self.t
        c.status = self.status[:]
        c.unmet = self.unmet[:]
        c.finish = self.finish[:]
        c.running = self.running
        c.done_count = self.done_count
        c.done_priority = self.done_priority
        c.on_time_priority = self.on_time_priority
        c.ended = self.ended
        return c
