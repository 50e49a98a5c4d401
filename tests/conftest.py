"""Shared fixtures: the tiny hand-made task, an environment on it, and the
live server (started once per run). The helpers they use live in
``tests/support``."""

from __future__ import annotations

import pytest

from tests.support.server_fixtures import http, live_server  # noqa: F401  (pytest fixtures)
from tests.support.tasks import registry_of, tiny_task
from workflow_orchestrator.server.core import TaskSpec
from workflow_orchestrator.server.inprocess import WorkflowEnv


@pytest.fixture
def tiny() -> TaskSpec:
    return tiny_task()


@pytest.fixture
def tiny_env(tiny: TaskSpec) -> WorkflowEnv:
    env = WorkflowEnv(registry=registry_of(tiny))
    env.reset("tiny")
    return env
