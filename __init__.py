"""workflow_orchestrator: an OpenEnv environment for orchestrating DAG workflows over simulated agents.

    from workflow_orchestrator import WorkflowClient, WorkflowAction   # the client (WebSocket)
    from workflow_orchestrator import WorkflowEnv                      # the in-process core

Names are imported on first use, so ``import workflow_orchestrator`` stays
light: the client does not load the server, and the core loads neither.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

# openenv.core's package __init__ imports openenv's own Gradio web interface
# eagerly: about 90 MB of resident memory and seconds of start-up in every
# process that imports openenv.core, client or server, whether or not a UI is
# served. Neither the client nor the server uses that interface (the
# dashboard is this package's own module), so before openenv.core is first
# imported the module is recorded as absent; openenv.core expects that case
# and sets create_web_interface_app to None. Nothing changes when openenv.core
# was imported before this package.
sys.modules.setdefault("openenv.core.env_server.web_interface", cast(ModuleType, None))

if TYPE_CHECKING:
    from workflow_orchestrator.client import WorkflowClient
    from workflow_orchestrator.models import (
        Assignment,
        GradeResponse,
        GradeResult,
        WorkflowAction,
        WorkflowObservation,
        WorkflowState,
    )
    from workflow_orchestrator.server.inprocess import WorkflowEnv

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "WorkflowClient": "workflow_orchestrator.client",
    "WorkflowAction": "workflow_orchestrator.models",
    "WorkflowObservation": "workflow_orchestrator.models",
    "WorkflowState": "workflow_orchestrator.models",
    "Assignment": "workflow_orchestrator.models",
    "GradeResult": "workflow_orchestrator.models",
    "GradeResponse": "workflow_orchestrator.models",
    "WorkflowEnv": "workflow_orchestrator.server.inprocess",
}

__all__ = [
    "Assignment",
    "GradeResponse",
    "GradeResult",
    "WorkflowAction",
    "WorkflowClient",
    "WorkflowEnv",
    "WorkflowObservation",
    "WorkflowState",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
