"""Executors of the canvas family that do I/O, outside the pure core: ``model``
(operators as chat completions to an OpenAI-compatible model, with a response
cache on disk, ``cache``) and ``sandbox`` (generated code and tests in a child
process with limits). The core sees them through its ``Executor`` protocol;
:func:`make_executor` builds one by name for ``WorkflowEnv.reset(executor=...)``."""

from __future__ import annotations

from typing import Any

from ..server.core.canvas.problem import Problem

EXECUTOR_NAMES: tuple[str, ...] = ("simulated", "openai")


def make_executor(name: str, problem: Problem, **settings: Any) -> Any:
    """The executor called ``name`` for one episode's problem (``openai``: settings from
    the environment variables of ``inference.py``, overridden by ``settings``)."""
    if name == "openai":
        from .model import ModelExecutor, settings_from_environ

        return ModelExecutor(problem, settings_from_environ(**settings))
    raise ValueError(f"unknown executor {name!r}; choose from: {', '.join(EXECUTOR_NAMES)}")
