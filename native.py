"""The compiled build of the step loop: the same source, compiled by mypyc.

The package is pure Python and always runs as such. Built with
``WORKFLOW_ORCHESTRATOR_COMPILE=1`` (``pip install .``, ``uv build``; see
``setup.py``), the modules of :data:`COMPILED_MODULES` are compiled to C
extensions by mypyc (mypy's compiler, which compiles type-annotated Python
as it is written) and installed beside their sources, which Python then no
longer runs. The episode and its step, the families' rules, rewards, grades
and observations then run about 1.4 to 2 times as fast, and so do the
in-process API, the vector env and the server above them, which stay
interpreted, as does every other module (the tasks, the oracle, the runner,
the canvas family, the policies).

Behaviour is the same in both builds: the compiled modules are the sources
of this package, type-checked by the same mypy settings, and a test replays
every family's tasks in both and compares their observations, rewards,
grades and event logs (``tests/core/test_native.py``).

``python -m workflow_orchestrator.native build DIR``, in a checkout of the
repository, writes a copy of the package with its compiled modules to
``DIR/workflow_orchestrator`` (importable with ``PYTHONPATH=DIR``), which is
what the bench (``python -m bench vector --build native``) and that test use;
it needs a C compiler, the Python headers, mypy and setuptools (the dev group
has the last two). :func:`compiled` tells whether this process runs the compiled build.

This module imports nothing of the package at its top: ``setup.py`` reads
:data:`COMPILED_MODULES` from it before the package is built.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Set to 1 when building the package (setup.py) to compile the modules below.
COMPILE_VARIABLE = "WORKFLOW_ORCHESTRATOR_COMPILE"

# The compiled modules, as paths from the package's root: the core's step loop
# and everything it calls at every step (the core but for the canvas family and
# the policies). They are compiled together (calls between them are direct C
# calls). The enums (server/core/enums.py) are made at import from the
# vocabulary and stay interpreted. The public API above the core (WorkflowEnv,
# the vector env, the Gymnasium env) stays interpreted: it takes whatever a
# caller sends and answers a wrong value with the errors it documents, where a
# compiled function would refuse a value of the wrong type at its door.
COMPILED_MODULES: tuple[str, ...] = (
    "server/core/actions.py",
    "server/core/arena.py",
    "server/core/batch.py",
    "server/core/compiled.py",
    "server/core/dag.py",
    "server/core/dimensions.py",
    "server/core/episode.py",
    "server/core/eventlog.py",
    "server/core/families.py",
    "server/core/family.py",
    "server/core/formulas.py",
    "server/core/grading.py",
    "server/core/model.py",
    "server/core/observation.py",
    "server/core/outcomes.py",
    "server/core/rewards.py",
    "server/core/scenario.py",
    "server/core/states.py",
)

# The name of the compiled modules' shared library, a module of the package.
GROUP_NAME = "workflow_orchestrator._native"

# The folders of a checkout that are not the package: a compiled copy leaves them
# out, and the digest of the sources it is built from does not read them.
_NOT_PACKAGE = frozenset(
    {".cache", ".git", ".venv", ".typecheck", "__pycache__", "build", "tests", "bench", "examples", "artifacts"}
    | {".pytest_cache", ".hypothesis", ".ruff_cache", ".mypy_cache"}
)
_NOT_COPIED = shutil.ignore_patterns(*_NOT_PACKAGE, "*.egg-info", "*.so", "*.sqlite3*")


def package_root() -> Path:
    """The folder of the package (this file's)."""
    return Path(__file__).resolve().parent


def _python_files(root: Path) -> list[Path]:
    """The package's Python files (what a compiled copy holds), in a stable order."""
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        kept = (name for name in subfolders if name not in _NOT_PACKAGE and not name.endswith(".egg-info"))
        subfolders[:] = sorted(kept)
        found.extend(Path(folder) / name for name in sorted(files) if name.endswith(".py"))
    return found


def sources_digest(root: Path | None = None) -> str:
    """A digest of the package's sources and the compiler's version: a build made
    from the same digest is the same build."""
    import mypy.version

    root = root or package_root()
    digest = hashlib.sha256(f"{mypy.version.__version__} {sys.version} {COMPILED_MODULES}".encode())
    for path in _python_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build(directory: str | Path) -> Path:
    """A copy of the package with its compiled modules, at ``directory/workflow_orchestrator``;
    returns ``directory``. A copy already built from the same sources is kept as it is."""
    if not (package_root() / "setup.py").is_file():
        raise RuntimeError(
            "a compiled copy is built from a checkout of the repository (its setup.py); an installed package "
            f"is compiled when it is built: {COMPILE_VARIABLE}=1 pip install <checkout>"
        )
    directory = Path(directory).resolve()
    tree = directory / "workflow_orchestrator"
    stamp = directory / "native-build.txt"
    digest = sources_digest()
    if stamp.is_file() and stamp.read_text().strip() == digest and tree.is_dir():
        return directory
    if tree.exists():
        shutil.rmtree(tree)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(package_root(), tree, ignore=_NOT_COPIED)
    environment = dict(os.environ)
    environment[COMPILE_VARIABLE] = "1"
    command = [sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"]
    done = subprocess.run(command, cwd=tree, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"the compiled build failed ({' '.join(command)}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        )
    shutil.rmtree(tree / "build", ignore_errors=True)
    stamp.write_text(digest + "\n")
    return directory


def compiled() -> bool:
    """Whether this process runs the compiled build (its episode module is an extension)."""
    from .server.core import episode

    return not str(episode.__file__).endswith(".py")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m workflow_orchestrator.native", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="write a copy of the package with its compiled modules to DIR")
    make.add_argument("directory", metavar="DIR")
    commands.add_parser("status", help="say whether this process imports the compiled build")
    args = parser.parse_args(argv)
    if args.command == "build":
        where = build(args.directory)
        print(f"compiled build in {where / 'workflow_orchestrator'}; use it with PYTHONPATH={where}")
    else:
        print("compiled" if compiled() else "pure Python")


if __name__ == "__main__":
    main()
