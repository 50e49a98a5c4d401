"""The core's two enums, :class:`ActionType` and :class:`ErrorCode`, one member
per word of the vocabulary (``vocabulary.py``, shared with the wire models).

They are made when this module is imported; the type checker sees the members
the code names. This module is never compiled (see ``native.py``): the compiled
modules import the enums from it.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from ...vocabulary import ACTION_TYPES, ERROR_CODES

if TYPE_CHECKING:
    # What the type checker sees: the members the code names (the words are in vocabulary.py).
    class ActionType(str, Enum):
        DELEGATE: ActionType
        DISPATCH: ActionType
        RETRY: ActionType
        WAIT: ActionType
        SYNTHESIZE: ActionType
        ABORT: ActionType

    class ErrorCode(str, Enum):
        UNKNOWN_ACTION: ErrorCode
        MISSING_FIELD: ErrorCode
        UNKNOWN_SUBTASK: ErrorCode
        UNKNOWN_AGENT: ErrorCode
        NOT_READY: ErrorCode
        ALREADY_RUNNING: ErrorCode
        ALREADY_COMPLETED: ErrorCode
        NOT_FAILED: ErrorCode
        IS_FAILED: ErrorCode
        NOT_RUNNING: ErrorCode
        AGENT_BUSY: ErrorCode
        AGENT_OFFLINE: ErrorCode
        CAPABILITY_MISMATCH: ErrorCode
        CAPACITY_EXCEEDED: ErrorCode
        DUPLICATE_SUBTASK: ErrorCode
        DUPLICATE_AGENT: ErrorCode
        NO_FREE_AGENT: ErrorCode
        EMPTY_DISPATCH: ErrorCode
        WORK_REMAINING: ErrorCode
        NOTHING_TO_WAIT_FOR: ErrorCode
        EPISODE_OVER: ErrorCode

else:
    # One member per word of the vocabulary, named by the word in capitals
    # (``ActionType.DELEGATE == "delegate"``, ``ErrorCode.NOT_READY == "not_ready"``).
    ActionType = Enum("ActionType", [(word.upper(), word) for word in ACTION_TYPES], type=str, module=__name__)
    ErrorCode = Enum("ErrorCode", [(word.upper(), word) for word in ERROR_CODES], type=str, module=__name__)
