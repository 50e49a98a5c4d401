"""Status codes of subtasks and agents (small ints in the step loop, names on the wire)."""

PENDING, READY, RUNNING, COMPLETED, FAILED = range(5)
SUBTASK_STATUS = ("pending", "ready", "in_progress", "completed", "failed")
IDLE, WORKING, OFFLINE = range(3)
AGENT_STATUS = ("idle", "working", "offline")
