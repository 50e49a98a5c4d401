"""Running generated code in a child process, with limits.

:func:`run_program` runs a program and captures what it prints;
:func:`run_tests` defines a solution and runs assertions against it, one by
one. Each run is a fresh ``python -I`` child in its own session and scratch
directory, with:

* a wall timeout (the child's whole process group is killed when it is up);
* ``resource.setrlimit`` in the child: CPU seconds, address space (memory),
  size of the files it writes, no core dumps, no new processes;
* an audit hook installed before the code runs that refuses sockets, new
  processes (``subprocess``, ``os.system``, ``os.exec*``, ``os.fork``,
  ``os.posix_spawn``, ``os.spawn*``), ``ctypes`` and writes to files outside
  the scratch directory;
* output to files in the scratch directory, bounded by the file size limit,
  of which at most ``output_limit`` bytes are read back.

What it does not protect against: the audit hook runs inside the child's
interpreter, so code that reaches the interpreter's internals (``gc``,
frame objects, already imported C modules) may remove or evade it; it reads
files the user running it can read; it shares the machine's kernel, disk and
network namespace. It keeps honest mistakes (endless loops, runaway
allocation, a stray request) from harming the caller, and is no defence
against code written to escape. Run untrusted code in a container or VM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WALL_SECONDS = 10.0
CPU_SECONDS = 5
MEMORY_BYTES = 512 * 1024 * 1024
OUTPUT_LIMIT = 64 * 1024
FILE_LIMIT = 1024 * 1024

# Verdicts.
OK = "ok"
ERROR = "error"  # the code raised (or exited non-zero)
TIMEOUT = "timeout"  # the wall timeout
CPU_LIMIT = "cpu_limit"
MEMORY_LIMIT = "memory_limit"
FORBIDDEN = "forbidden"  # the audit hook refused an operation
OUTPUT_LIMIT_EXCEEDED = "output_limit"  # the output went over the file size limit

# The child's bootstrap: limits, the audit hook, then the code. Reads its job
# (JSON) from the file named by argv[1].
_BOOTSTRAP = r"""
import errno, json, os, resource, signal, sys, traceback
job = json.load(open(sys.argv[1], encoding="utf-8"))
scratch = os.path.realpath(job["scratch"])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
for name, value in (("RLIMIT_CPU", job["cpu"]), ("RLIMIT_AS", job["memory"]), ("RLIMIT_FSIZE", job["files"]),
                    ("RLIMIT_CORE", 0), ("RLIMIT_NPROC", 0)):
    limit = getattr(resource, name, None)
    if limit is not None:
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
REFUSED_PREFIXES = ("socket.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "ctypes.", "_posixsubprocess")
REFUSED = {"os.system", "os.fork", "os.forkpty", "pty.spawn", "os.startfile", "webbrowser.open"}

class Refused(BaseException):
    pass

def audit(event, args):
    if event in REFUSED or event.startswith(REFUSED_PREFIXES):
        raise Refused("sandbox: " + event + " is not allowed")
    if event == "open" and args and isinstance(args[0], (str, bytes)) and len(args) > 1:
        mode = args[1] if isinstance(args[1], str) else ""
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        writes = any(c in mode for c in "wax+") or (flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writes:
            path = os.fsdecode(args[0])
            full = os.path.realpath(os.path.join(scratch, path))
            if full != scratch and not full.startswith(scratch + os.sep):
                raise Refused("sandbox: writing " + path + " is not allowed")

results = open(job["result"], "w", encoding="utf-8")
dump = json.dumps

def report(result):
    results.write(dump(result))
    results.close()

namespace = {"__name__": "__main__"}
os.chdir(scratch)
sys.addaudithook(audit)
status, detail, passed, failures = "ok", "", 0, []
try:
    code = compile(job["code"], "<solution>", "exec")
    tests = [compile(t, "<test %d>" % i, "exec") for i, t in enumerate(job["tests"])]
    exec(code, namespace)
    for i, test in enumerate(tests):
        try:
            exec(test, namespace)
            passed += 1
        except Refused:
            raise
        except MemoryError:
            raise
        except BaseException as exc:
            failures.append([i, type(exc).__name__ + ": " + str(exc)[:200]])
except Refused as exc:
    status, detail = "forbidden", str(exc)
except MemoryError:
    status, detail = "memory_limit", "MemoryError"
except RecursionError as exc:
    status, detail = "error", "RecursionError: " + str(exc)[:200]
except SystemExit as exc:
    if exc.code not in (None, 0):
        status, detail = "error", "SystemExit: " + str(exc.code)[:200]
except OSError as exc:
    status = "output_limit" if exc.errno == errno.EFBIG else "error"
    detail = type(exc).__name__ + ": " + str(exc)[:200]
except BaseException as exc:
    status, detail = "error", "".join(traceback.format_exception_only(type(exc), exc)).strip()[-500:]
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except OSError:
        status, detail = "output_limit", "the output exceeded the file size limit"
report({"status": status, "detail": detail, "passed": passed, "failures": failures[:20]})
"""


@dataclass(frozen=True, slots=True)
class SandboxResult:
    status: str  # OK, ERROR, TIMEOUT, CPU_LIMIT, MEMORY_LIMIT, FORBIDDEN or OUTPUT_LIMIT_EXCEEDED
    detail: str
    stdout: str
    stderr: str
    passed: int = 0  # tests that passed
    failures: tuple[tuple[int, str], ...] = ()  # (test index, error)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True, slots=True)
class Limits:
    wall_seconds: float = WALL_SECONDS
    cpu_seconds: int = CPU_SECONDS
    memory_bytes: int = MEMORY_BYTES
    output_limit: int = OUTPUT_LIMIT
    file_limit: int = FILE_LIMIT


DEFAULT_LIMITS = Limits()


def _read(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return ""
    text = data[:limit].decode("utf-8", "replace")
    return text + "\n[output truncated]" if len(data) > limit else text


def run_program(code: str, limits: Limits = DEFAULT_LIMITS) -> SandboxResult:
    """Run ``code`` as a program; its verdict and what it printed."""
    return _run(code, (), limits)


def run_tests(code: str, tests: tuple[str, ...] | list[str], limits: Limits = DEFAULT_LIMITS) -> SandboxResult:
    """Define ``code``, then run each assertion of ``tests`` against it (``passed``, ``failures``)."""
    return _run(code, tuple(tests), limits)


def _run(code: str, tests: tuple[str, ...], limits: Limits) -> SandboxResult:
    with tempfile.TemporaryDirectory(prefix="wo-sandbox-") as scratch_name:
        scratch = Path(scratch_name)
        work = scratch / "work"
        work.mkdir()
        job = {
            "code": code,
            "tests": list(tests),
            "scratch": str(work),
            "result": str(scratch / "result.json"),
            "cpu": int(limits.cpu_seconds),
            "memory": int(limits.memory_bytes),
            "files": int(limits.file_limit),
        }
        job_path = scratch / "job.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        out_path, err_path = scratch / "stdout", scratch / "stderr"
        started = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            try:
                child = subprocess.Popen(
                    [sys.executable, "-I", "-c", _BOOTSTRAP, str(job_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=work,
                    env={"PATH": os.defpath, "PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8"},
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                return SandboxResult(ERROR, f"cannot start the sandbox: {exc}", "", "")
            timed_out = False
            try:
                child.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                child.wait()
        wall = time.monotonic() - started
        stdout = _read(out_path, limits.output_limit)
        stderr = _read(err_path, limits.output_limit)
        if timed_out:
            detail = f"stopped after {limits.wall_seconds:g} s (wall)"
            return SandboxResult(TIMEOUT, detail, stdout, stderr, wall_s=wall)
        try:
            report = json.loads((scratch / "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report = None
        code_ = child.returncode
        if report is None:
            if code_ in (-signal.SIGXCPU, -signal.SIGKILL):
                detail = f"stopped after {limits.cpu_seconds} s of CPU"
                return SandboxResult(CPU_LIMIT, detail, stdout, stderr, wall_s=wall)
            if "MemoryError" in stderr:
                return SandboxResult(MEMORY_LIMIT, "MemoryError", stdout, stderr, wall_s=wall)
            return SandboxResult(ERROR, f"the child exited with status {code_}", stdout, stderr, wall_s=wall)
        failures = tuple((int(i), str(message)) for i, message in report.get("failures", ()))
        return SandboxResult(
            str(report["status"]),
            str(report.get("detail", "")),
            stdout,
            stderr,
            passed=int(report.get("passed", 0)),
            failures=failures,
            wall_s=wall,
        )
