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
