"""Benchmarks: ``python -m bench NAME [ARGS...]`` runs ``main(ARGS)`` of ``bench/NAME.py``.

Each benchmark prints figures, and one JSON object as its last line.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    modules = pkgutil.iter_modules([str(Path(__file__).parent)])
    return sorted(info.name for info in modules if not info.name.startswith("_"))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    names = available()
    if not args or args[0] not in names:
        print(f"usage: python -m bench {{{','.join(names)}}} [options]", file=sys.stderr)
        raise SystemExit(2)
    importlib.import_module(f"bench.{args[0]}").main(args[1:])


if __name__ == "__main__":
    main()
