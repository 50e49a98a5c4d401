"""Status codes of subtasks and agents (small ints in the step loop, names on the wire).

Like every module-level constant of the compiled modules (native.py), these are
``Final``: the compiled build then reads them in place, where a plain module
global is looked up in the module's dictionary at every read (a test checks).
"""

from typing import Final

PENDING: Final = 0
READY: Final = 1
RUNNING: Final = 2
COMPLETED: Final = 3
FAILED: Final = 4
SUBTASK_STATUS: Final = ("pending", "ready", "in_progress", "completed", "failed")
IDLE: Final = 0
WORKING: Final = 1
OFFLINE: Final = 2
AGENT_STATUS: Final = ("idle", "working", "offline")

# An episode's attempt records (Episode._attempt): ATTEMPT_FIELDS ints a subtask, at
# s * ATTEMPT_FIELDS + one of these. The agent of a running attempt (-1 when none), when it
# started, when it ends, how it ends (one of ENDS_*), and how many times the subtask started.
ATTEMPT_FIELDS: Final = 5
AGENT_OF: Final = 0
STARTED_AT: Final = 1
FINISH_AT: Final = 2
ENDS: Final = 3
STARTS: Final = 4
ENDS_COMPLETED: Final = 0
ENDS_TRANSIENT: Final = 1
ENDS_PERMANENT: Final = 2
# A new episode's record of one subtask.
NO_ATTEMPT: Final = (-1, 0, 0, ENDS_COMPLETED, 0)
