"""The package's build backend: setuptools', asking for mypy (the compiler of
the compiled build, see setup.py) only when ``WORKFLOW_ORCHESTRATOR_COMPILE=1``."""

import os

from setuptools.build_meta import *  # noqa: F403 (the backend's hooks, unchanged but for the two below)

# The mypy of the dev group (pyproject.toml), which compiles what it type-checks.
COMPILER = "mypy==2.4.1"


def _compiler() -> list[str]:
    return [COMPILER] if os.environ.get("WORKFLOW_ORCHESTRATOR_COMPILE") == "1" else []


# setuptools' own hooks would run setup.py to find what it asks for, which imports the
# compiler before it is installed; setup.py asks for nothing beyond build-system.requires.
def get_requires_for_build_wheel(config_settings=None):
    return _compiler()


def get_requires_for_build_editable(config_settings=None):
    return _compiler()
