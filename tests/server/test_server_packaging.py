"""Packaging: openenv's own validator (local layout and the running server), the README's walkthrough."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.server_fixtures import REPO_ROOT, RunningServer
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.taskapi import TaskCatalogue
from workflow_orchestrator.server.tasks import default_registry

OPENENV = Path(sys.executable).with_name("openenv")
MANIFEST = yaml.safe_load((REPO_ROOT / "openenv.yaml").read_text())["validation"]


def run_openenv(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run([str(OPENENV), *args], capture_output=True, text=True, timeout=300, env=env)


def test_openenv_validate_local_package() -> None:
    # Without a container engine the strictest local level is the static one
    # (--skip-build): the manifest's validation block is schema-valid and
    # within openenv's policy; the build-dependent checks are skipped.
    result = run_openenv("validate", str(REPO_ROOT), "--skip-build", "--json")
    report = json.loads(result.stdout)
    results = {check["check_id"]: check for check in report["results"]}
    assert results["static.manifest"]["status"] == "pass", results["static.manifest"]
    assert not [check_id for check_id, check in results.items() if check["status"] == "fail"]
    assert report["verdict"] in {"pass", "warn"}, result.stdout + result.stderr


def test_the_manifest_declares_the_task_api_counts() -> None:
    catalogue = TaskCatalogue(default_registry())
    assert MANIFEST["capabilities"]["task_api"] is True
    declared = MANIFEST["capabilities"]["declared_task_count"]
    assert declared == {split: catalogue.size(split) for split in ("train", "test")}


def test_the_served_rewards_lie_in_the_declared_range() -> None:
    low, high = MANIFEST["reward"]["range"]
    registry = default_registry()
    env = WorkflowEnv(registry=registry)
    seen: list[float] = []
    for task_id in registry.task_ids():
        for name in ("random", "greedy", "heuristic"):
            for seed in range(5000, 5004):
                policy = make_policy(name, seed)
                observation = env.reset(task_id, seed=seed)
                while not observation["done"]:
                    observation = env.step(policy.act(observation))
                    seen.append(observation["reward"])
    assert low <= min(seen) and max(seen) <= high, (min(seen), max(seen))


def test_openenv_validate_running_server(live_server: RunningServer) -> None:
    result = run_openenv("validate", "--url", live_server.url, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["mode"] == "simulation"


def test_server_script_and_pinned_openenv() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["server"] == "workflow_orchestrator.server.app:main"
    # openenv-core stopped at 0.3.0; the project publishes as `openenv` since.
    assert "openenv==0.10.0" in project["dependencies"]
    assert not [dependency for dependency in project["dependencies"] if dependency.startswith("openenv-core")]


def test_server_help_lists_host_port_and_web_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workflow_orchestrator.server.app", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--no-web", "--max-sessions", "--session-idle-timeout"):
        assert option in result.stdout


def readme_walkthrough() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Try it with curl", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's curl walkthrough has no bash blocks"
    return "\n".join(blocks)


def test_the_readme_curl_walkthrough_works_when_pasted(live_server: RunningServer) -> None:
    script = readme_walkthrough().replace("http://localhost:8000", live_server.url)
    assert live_server.url in script
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_PROXY": "*"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"episode_id"' in result.stdout
    assert '"score"' in result.stdout  # the walkthrough ends by grading its episode
    assert '"error"' not in result.stdout


def test_ci_script_is_executable_and_runs_the_readme_test_command() -> None:
    ci = REPO_ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    assert "run pytest" in ci.read_text()
    assert "uv run pytest" in (REPO_ROOT / "README.md").read_text()


def test_the_readme_client_examples_run(live_server: RunningServer) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Training loop with the Python client", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        # Fewer episodes than the README's, to keep the suite quick.
        script = block.replace("http://localhost:8000", live_server.url).replace("range(100)", "range(5)")
        script = script.replace("range(32)", "range(8)")
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "NO_PROXY": "*"},
            cwd=REPO_ROOT,
        )
        assert result.returncode == 0, result.stderr
        # Every example says what it did.
        assert "mean grade" in result.stdout, result.stdout


def _assert_not_loaded(statement: str, modules: tuple[str, ...], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``statement`` in a fresh interpreter and check it loaded none of ``modules``.

    A ``SystemExit`` raised by the statement (``--help`` ends with one) is caught, so the check still runs.
    """
    probe = "\n".join(
        [
            "import sys",
            "try:",
            textwrap.indent(statement, "    "),
            "except SystemExit:",
            "    pass",
            f"loaded = [name for name in {modules!r} if name in sys.modules]",
            "print(loaded)",
            "sys.exit(1 if loaded else 0)",
        ]
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_importing_the_package_stays_light() -> None:
    _assert_not_loaded("import workflow_orchestrator", ("openenv", "pydantic", "fastapi", "gradio"), timeout=60)


def test_the_client_does_not_load_the_server_or_gradio() -> None:
    _assert_not_loaded(
        "from workflow_orchestrator import WorkflowClient",
        ("gradio", "workflow_orchestrator.server.app", "workflow_orchestrator.server.core"),
        timeout=120,
    )


def test_server_help_answers_before_openenv_or_the_web_framework_is_loaded() -> None:
    result = _assert_not_loaded(
        "from workflow_orchestrator.server.app import main\nmain(['--help'])",
        ("openenv", "fastapi", "starlette", "uvicorn", "pydantic", "gradio"),
        timeout=60,
    )
    assert "--host" in result.stdout and "--no-web" in result.stdout


def test_the_server_says_what_it_loads_and_where_it_starts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    from workflow_orchestrator.server import app as app_module

    runs: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: runs.append(options))
    monkeypatch.setattr(app_module, "tune_garbage_collector", lambda: None)
    caplog.set_level(logging.INFO, logger="workflow_orchestrator.server")
    app_module.main(["--no-web", "--no-archive", "--host", "127.0.0.1", "--port", "8123"])
    assert len(runs) == 1 and runs[0]["port"] == 8123
    messages = [record.getMessage() for record in caplog.records if record.name == "workflow_orchestrator.server"]
    assert messages[0].startswith("loading the server")
    assert messages[-1] == "starting uvicorn on http://127.0.0.1:8123"
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_the_server_warns_at_start_when_it_listens_beyond_loopback_without_a_token(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    from workflow_orchestrator.server import app as app_module

    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)
    monkeypatch.setattr(app_module, "tune_garbage_collector", lambda: None)
    monkeypatch.delenv("WORKFLOW_ORCHESTRATOR_TOKEN", raising=False)
    caplog.set_level(logging.INFO, logger="workflow_orchestrator.server")
    app_module.main(["--no-web", "--no-archive", "--host", "0.0.0.0", "--port", "8124"])
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "0.0.0.0 without a token" in warnings[0]
    assert "WORKFLOW_ORCHESTRATOR_TOKEN" in warnings[0]
