"""The event log: an append-only list of plain records that the graders read.

Every record has ``kind``, ``t`` (simulation time) and ``step`` (the action
count when it happened); the other fields depend on the kind:

=================  =======================================================
kind               fields
=================  =======================================================
delegated          subtask, agent, attempt, retry, duration
completed          subtask, agent, cost
failed             subtask, agent, failure ("permanent"|"transient"), cause ("outcome"|"dropout"), cost
aborted            subtask, agent, cost
deadline_missed    subtask, deadline
invalid_action     code, message, action
waited             active
agent_offline      agent
agent_online       agent
speed_changed      agent, speed
capacity_changed   capacity
synthesized        (none)
episode_end        reason ("terminated"|"truncated"), completed, total
=================  =======================================================
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


class EventLog:
    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, kind: str, t: int, step: int, **fields: Any) -> None:
        self.records.append({"kind": kind, "t": t, "step": step, **fields})

    def digest(self) -> str:
        """A stable hash of the whole log: equal logs give equal digests in any process."""
        payload = json.dumps(self.records, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.records)
