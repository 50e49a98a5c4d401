"""Real servers for the server and client tests.

Each server is the ``server`` entry point (uvicorn) in a child process on
127.0.0.1 and a free port, so tests talk real HTTP and WebSocket to it.
``live_server`` and ``http`` are registered once, in tests/conftest.py, so the
session shares one server; ``start_server`` gives a test its own, with
other settings.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_mb(self) -> float:
        """Resident memory of the server process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc status")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(log_dir: Path, *options: str, env: dict[str, str] | None = None) -> RunningServer:
    """Start ``server --no-web`` with extra options; returns once /health answers."""
    port = free_port()
    # Each server archives into its own directory unless the test says otherwise.
    chosen = any(option in ("--archive-path", "--no-archive") for option in options)
    archive_options = [] if chosen else ["--archive-path", str(log_dir / f"archive-{port}.sqlite3")]
    command = ["-m", "workflow_orchestrator.server.app", "--host", "127.0.0.1", "--port", str(port), "--no-web"]
    return _launch(log_dir, port, [*command, "--log-level", "warning", *archive_options, *options], env or {})


def start_uvicorn(log_dir: Path, *options: str, env: dict[str, str] | None = None) -> RunningServer:
    """Start ``uvicorn workflow_orchestrator.server.app:app`` (the app's own entry, settings from the
    environment, web UI off) with extra uvicorn options; returns once /health answers."""
    port = free_port()
    child_env = {
        "ENABLE_WEB_INTERFACE": "false",
        "WORKFLOW_ORCHESTRATOR_ARCHIVE_PATH": str(log_dir / f"archive-{port}.sqlite3"),
        **(env or {}),
    }
    command = ["-m", "uvicorn", "workflow_orchestrator.server.app:app", "--host", "127.0.0.1", "--port", str(port)]
    return _launch(log_dir, port, [*command, *options], child_env)


def _launch(log_dir: Path, port: int, arguments: list[str], env: dict[str, str]) -> RunningServer:
    log_path = log_dir / f"server-{port}.log"
    child_env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOW_ORCHESTRATOR_")}
    child_env.pop("ENABLE_WEB_INTERFACE", None)
    child_env.update(env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, *arguments], stdout=log, stderr=subprocess.STDOUT, env=child_env, cwd=REPO_ROOT
        )
    server = RunningServer(process, port, log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start within {STARTUP_TIMEOUT_S} s:\n{server.log()}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server with its default settings (web UI off), shared by the session."""
    server = start_server(tmp_path_factory.mktemp("live_server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http(live_server: RunningServer) -> Iterator[httpx.Client]:
    """An HTTP client for ``live_server`` (no proxies: loopback only)."""
    with httpx.Client(base_url=live_server.url, timeout=30.0, trust_env=False) as client:
        yield client
