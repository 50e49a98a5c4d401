"""The one reading of seed lists (``--seeds`` of every tool): lists and ranges, and clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workflow_orchestrator.runner import errors, settings
from workflow_orchestrator.server.tasks import MAX_SEED


@pytest.mark.parametrize(
    ("text", "seeds"),
    [
        ("0-19,25", (*range(20), 25)),
        ("3, 1 ,3", (3, 1)),
        ("0-2,,1-4,", (0, 1, 2, 3, 4)),
        (f"{MAX_SEED}", (MAX_SEED,)),
    ],
)
def test_parse_seeds_reads_lists_and_ranges(text: str, seeds: tuple[int, ...]) -> None:
    assert settings.parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("+3", "'+3' is not a seed or a range"),
        ("1_000", "'1_000' is not a seed or a range"),
        ("\u0663", "is not a seed or a range"),
        ("2-x", "'2-x' is not a seed or a range"),
        ("1-2-3", "'1-2-3' is not a seed or a range"),
        ("9-3", "the range '9-3' is empty"),
        (f"0-{MAX_SEED + 1}", f"seeds go from 0 to {MAX_SEED}"),
        ("0-100000", "has more than 100000 seeds"),
        (" , ", "give seeds such as 0-19"),
    ],
)
def test_parse_seeds_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(errors.UsageError, match="^--seeds: .*" + message.replace("+", r"\+")):
        settings.parse_seeds(text)


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "workflow_orchestrator.evaluation", "--seeds", "3-x"],
        ["-m", "workflow_orchestrator.oracle", "ladder", "--seeds", "3-x"],
    ],
)
def test_the_offline_tools_read_seeds_by_the_same_rule(command: list[str]) -> None:
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].endswith("error: --seeds: '3-x' is not a seed or a range such as 100-199")
