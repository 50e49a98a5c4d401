"""Task registry: the scenario files and the generated families."""

from .registry import (
    MAX_SEED,
    ResolvedTask,
    TaskRegistry,
    UnknownTaskError,
    default_registry,
    load_scenario_file,
)

__all__ = [
    "MAX_SEED",
    "ResolvedTask",
    "TaskRegistry",
    "UnknownTaskError",
    "default_registry",
    "load_scenario_file",
]
