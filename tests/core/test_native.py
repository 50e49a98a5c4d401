"""The compiled build (native.py) plays exactly as the pure one.

The build is made once per source digest into ``.cache/native`` under the
repository (a few minutes with a C compiler; a later run with the same sources
reuses it). Every task of the registry is then played, with legal and invalid
actions and in each reward mode, and the vector env is stepped in each
observation form, in a process of each build; the digests of every
observation, reward, grade, state and event log must be equal, and so must
the outcome rolls that the compiled build computes in 32-bit words.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from workflow_orchestrator import WorkflowEnv, native

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "native"


def _compiler() -> str | None:
    command = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(command)


needs_compiler = pytest.mark.skipif(
    _compiler() is None or not Path(sysconfig.get_paths()["include"], "Python.h").is_file(),
    reason="the compiled build needs a C compiler and the Python headers",
)


@pytest.fixture(scope="module")
def native_build() -> Path:
    return native.build(CACHE)


def _replay(pythonpath: Path | None) -> dict[str, object]:
    environment = dict(os.environ, PYTHONHASHSEED="0")
    environment.pop("PYTHONPATH", None)
    if pythonpath is not None:
        environment["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.native_replay", "2"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_module_list_names_modules_of_the_package() -> None:
    root = native.package_root()
    for module in native.COMPILED_MODULES:
        assert (root / module).is_file(), module
    assert len(set(native.COMPILED_MODULES)) == len(native.COMPILED_MODULES)


def test_the_compiled_modules_constants_are_final() -> None:
    # A module-level constant of a compiled module that is not Final is a plain global of the
    # compiled build: every read of it looks its name up in the module's dictionary (about a tenth
    # of the step's instructions, when the step loop's constants were plain). Final ones are read
    # in place.
    root = native.package_root()
    plain = []
    for module in native.COMPILED_MODULES:
        for node in ast.parse((root / module).read_text()).body:
            if isinstance(node, ast.Assign):
                names = [target.id for target in node.targets if isinstance(target, ast.Name)]
                names += [
                    element.id
                    for target in node.targets
                    if isinstance(target, ast.Tuple)
                    for element in target.elts
                    if isinstance(element, ast.Name)
                ]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                annotation = node.annotation
                final = isinstance(annotation, ast.Name) and annotation.id == "Final"
                final = final or (
                    isinstance(annotation, ast.Subscript)
                    and isinstance(annotation.value, ast.Name)
                    and annotation.value.id == "Final"
                )
                names = [] if final else [node.target.id]
            else:
                continue
            plain += [f"{module}: {name}" for name in names if re.fullmatch(r"_?[A-Z][A-Z0-9_]*", name)]
    assert plain == []


def test_this_process_runs_the_pure_build() -> None:
    assert native.compiled() is False


@needs_compiler
def test_compiled_build_plays_every_task_as_the_pure_build(native_build: Path) -> None:
    tree = native_build / "workflow_orchestrator"
    for module in native.COMPILED_MODULES:
        extensions = list((tree / module).parent.glob(Path(module).stem + ".*.so"))
        assert extensions, f"{module} was not compiled"
    pure = _replay(None)
    compiled = _replay(native_build)
    assert pure["compiled"] is False
    assert compiled["compiled"] is True
    assert isinstance(pure["plays"], dict) and isinstance(compiled["plays"], dict)
    assert len(pure["plays"]) == 2 * len(WorkflowEnv().registry.task_ids())  # every task, two seeds
    differing = sorted(key for key in pure["plays"] if compiled["plays"].get(key) != pure["plays"][key])
    assert differing == [], f"plays that differ between the builds: {differing[:10]}"
    assert compiled["plays"].keys() == pure["plays"].keys()
    assert isinstance(pure["vectors"], dict) and isinstance(compiled["vectors"], dict)
    differing = sorted(key for key in pure["vectors"] if compiled["vectors"].get(key) != pure["vectors"][key])
    assert differing == [], f"vector env batches that differ between the builds: {differing[:10]}"
    assert compiled["vectors"].keys() == pure["vectors"].keys()
    # The compiled build rolls outcomes in words (roll_words, equal to roll: test_core_determinism),
    # and its compiled roll_words gives the pure one's numbers.
    assert compiled["rolls_in_words"] is True and pure["rolls_in_words"] is False
    assert compiled["rolls"] == pure["rolls"]
