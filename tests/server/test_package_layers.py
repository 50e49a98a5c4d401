"""Layers: the server serves, the offline tools (the oracle, the policy table) sit beside it and above it.

Read from the sources, so that an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.server_fixtures import REPO_ROOT

PACKAGE = "workflow_orchestrator"
# Offline tools, the evaluation runner and scripts: nothing that serves may depend on them.
OFFLINE = (f"{PACKAGE}.oracle", f"{PACKAGE}.evaluation", f"{PACKAGE}.inference", f"{PACKAGE}.runner", "bench")
# Scripts: a library module never depends on them.
SCRIPTS = (f"{PACKAGE}.inference", "bench")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, absolute, wherever in the file the import is."""
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield f"{base}.{node.module}" if node.module else base
            elif node.module:
                yield node.module
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                yield node.args[0].value


def _violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(REPO_ROOT)), name)
        for path in paths
        for name in _imports(path)
        if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    ]


def test_the_server_imports_no_offline_tool() -> None:
    sources = sorted((REPO_ROOT / "server").rglob("*.py"))
    assert sources
    assert _violations(sources, OFFLINE) == []


def test_the_server_imports_nothing_of_the_cluster_above_it() -> None:
    sources = sorted((REPO_ROOT / "server").rglob("*.py"))
    assert _violations(sources, (f"{PACKAGE}.cluster",)) == []


def test_the_cluster_imports_no_offline_tool_and_only_the_servers_entry_settings_and_protocols() -> None:
    sources = sorted((REPO_ROOT / "cluster").rglob("*.py"))
    assert sources
    assert _violations(sources, OFFLINE) == []
    server_imports = {name for path in sources for name in _imports(path) if name.startswith(f"{PACKAGE}.server")}
    assert server_imports <= {
        f"{PACKAGE}.server.app",
        f"{PACKAGE}.server.http.settings",
        f"{PACKAGE}.server.http.protocol",
    }


def test_the_offline_tools_import_no_script() -> None:
    sources = [*sorted((REPO_ROOT / "oracle").rglob("*.py")), REPO_ROOT / "evaluation.py"]
    assert _violations(sources, SCRIPTS) == []


def test_the_offline_tools_run_as_top_level_modules() -> None:
    for module in (f"{PACKAGE}.oracle", f"{PACKAGE}.evaluation"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
        )
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout
