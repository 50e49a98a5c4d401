"""The package's build (the rest of its settings are in pyproject.toml).

Pure Python by default. With ``WORKFLOW_ORCHESTRATOR_COMPILE=1`` in the
environment, the step loop's modules (``native.py``'s ``COMPILED_MODULES``)
are also compiled by mypyc and installed beside their sources; that needs a C
compiler, the Python headers, and mypy where the build runs (it is asked for
then, see ``buildsys/backend.py``).
"""

import os
import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def compiled_extensions() -> list:
    settings = runpy.run_path(str(ROOT / "native.py"))
    if os.environ.get(settings["COMPILE_VARIABLE"]) != "1":
        return []
    from mypyc.build import mypycify

    # mypy names a module by the folders above it: the package's root is this folder,
    # so it reads the sources through a link named after the package (as .ci/typecheck).
    link = ROOT / ".typecheck" / "workflow_orchestrator"
    made = not link.is_symlink()
    if made:
        link.parent.mkdir(exist_ok=True)
        link.symlink_to("..")
    try:
        paths = [f".typecheck/workflow_orchestrator/{module}" for module in settings["COMPILED_MODULES"]]
        # mypyc writes the C sources now (build_ext compiles them later, without the link). The
        # settings are the type check's (pyproject.toml), whose sections for other modules go
        # unused; the modules the compiled ones import are read for their types, and their own
        # findings are the type check's business (an isolated build has none of the server's
        # dependencies, which the core never imports).
        options = ["--no-warn-unused-configs", "--follow-imports=silent"]
        return mypycify([*options, *paths], group_name=settings["GROUP_NAME"], opt_level="3")
    finally:
        if made:
            link.unlink()
            if not any(link.parent.iterdir()):
                link.parent.rmdir()


class BuildPy(build_py):
    """The package's modules, but for this file (the package's root is this folder)."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [entry for entry in modules if not (package == "workflow_orchestrator" and entry[1] == "setup")]


setup(ext_modules=compiled_extensions(), cmdclass={"build_py": BuildPy})
