"""The sandbox of generated code: endless loops, runaway allocation, sockets and
new processes are stopped with a clear verdict, output is bounded, and the
parent stays healthy."""

from __future__ import annotations

import os
import time

import pytest

from workflow_orchestrator.executors.sandbox import (
    CPU_LIMIT,
    ERROR,
    FORBIDDEN,
    MEMORY_LIMIT,
    OK,
    OUTPUT_LIMIT_EXCEEDED,
    TIMEOUT,
    Limits,
    run_program,
    run_tests,
)

# Wall time to spare: on a loaded machine a child gets a share of a core.
FAST = Limits(wall_seconds=20.0, cpu_seconds=1, memory_bytes=256 * 1024 * 1024, output_limit=4096)


def test_a_program_runs_and_its_output_is_captured() -> None:
    result = run_program("print(6 * 7)", FAST)
    assert result.status == OK and result.stdout == "42\n"


def test_tests_run_one_by_one_against_the_solution() -> None:
    result = run_tests("def f(x):\n    return x * 2", ["assert f(2) == 4", "assert f(3) == 7", "assert g(1)"], FAST)
    assert result.status == OK and result.passed == 1
    assert [i for i, _ in result.failures] == [1, 2]
    assert "NameError" in result.failures[1][1]


def test_errors_are_reported() -> None:
    assert run_program("raise ValueError('bad')", FAST).detail == "ValueError: bad"
    broken = run_program("def f(:", FAST)
    assert broken.status == ERROR and "SyntaxError" in broken.detail


def test_an_endless_loop_is_stopped_by_the_cpu_limit() -> None:
    # A wall timeout far above the CPU limit: on a loaded machine the loop gets a share of a
    # core, and its one CPU second takes several wall seconds; the CPU limit must stop it first.
    limits = Limits(wall_seconds=60.0, cpu_seconds=1, memory_bytes=FAST.memory_bytes, output_limit=FAST.output_limit)
    started = time.monotonic()
    result = run_program("while True:\n    pass", limits)
    assert result.status == CPU_LIMIT and "CPU" in result.detail
    assert time.monotonic() - started < limits.wall_seconds


def test_a_sleeping_program_is_stopped_by_the_wall_timeout() -> None:
    result = run_program("import time\ntime.sleep(60)", Limits(wall_seconds=1.0))
    assert result.status == TIMEOUT and "wall" in result.detail


def test_runaway_allocation_is_stopped_by_the_memory_limit() -> None:
    result = run_program("chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))", FAST)
    assert result.status == MEMORY_LIMIT


@pytest.mark.parametrize(
    ("code", "event"),
    [
        ("import socket\nsocket.socket().connect(('127.0.0.1', 9))", "socket."),
        ("import socket\nsocket.create_connection(('example.com', 80))", "socket."),
        ("import urllib.request\nurllib.request.urlopen('http://example.com')", "socket."),
        ("import subprocess\nsubprocess.run(['true'])", "subprocess.Popen"),
        ("import os\nos.system('true')", "os.system"),
        ("import os\nos.fork()", "os.fork"),
        ("open('/tmp/written-by-the-sandbox', 'w')", "writing"),
    ],
)
def test_network_processes_and_writes_outside_the_scratch_directory_are_refused(code: str, event: str) -> None:
    result = run_program(code, FAST)
    assert result.status == FORBIDDEN and event in result.detail
    assert not os.path.exists("/tmp/written-by-the-sandbox")


def test_a_refusal_in_a_test_stops_the_run() -> None:
    result = run_tests("def f():\n    return 1", ["import socket; socket.socket()"], FAST)
    assert result.status == FORBIDDEN


def test_the_scratch_directory_is_writable_and_output_is_bounded() -> None:
    result = run_program("open('notes.txt', 'w').write('x')\nprint(open('notes.txt').read())", FAST)
    assert result.status == OK and result.stdout == "x\n"
    flood = run_program("while True:\n    print('x' * 1000)", Limits(wall_seconds=3.0, output_limit=4096))
    assert flood.status == OUTPUT_LIMIT_EXCEEDED
    assert len(flood.stdout) <= 4096 + len("\n[output truncated]")


def test_the_parent_stays_healthy() -> None:
    children = set(os.listdir("/proc")) if os.path.isdir("/proc") else set()
    for code in ("while True:\n    pass", "import time\ntime.sleep(60)"):
        run_program(code, Limits(wall_seconds=1.0, cpu_seconds=1))
    assert run_program("print('still here')", FAST).stdout == "still here\n"
    if children:
        # No child of this process is left behind.
        mine = str(os.getpid())
        left = []
        for pid in set(os.listdir("/proc")) - children:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    if stat.read().split()[3] == mine:
                        left.append(pid)
            except OSError:
                continue
        assert left == []
