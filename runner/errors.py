"""The runner's exceptions, and the exit codes of ``inference.py``."""

from __future__ import annotations

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A setting the user has to fix; exit code 2 with a one-line message."""


class FatalError(Exception):
    """Nothing more can be evaluated (unreachable environment, refused key); exit code 1."""


class ModelCallFailed(Exception):
    """One model call gave no answer after its retries; the step plays a fallback."""


class EpisodeFailure(Exception):
    """One episode could not go on (the environment failed, or a player cannot play its task)."""


class ActionRejected(Exception):
    """The environment refused the shape of an action (a 4xx on /step)."""
