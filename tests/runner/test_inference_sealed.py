"""inference.py --sealed: a fresh secret per run, recorded in the results file,
that replays the run with --outcome-secret; refused where it cannot apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workflow_orchestrator import inference

ARGS = ["--policy", "heuristic", "--tasks", "hard,generated/hard", "--seeds", "5000-5003", "--no-progress"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = inference.main(list(argv))
    return code, capsys.readouterr().err


def _scores(path: Path) -> list[tuple[str, int, float, float]]:
    document: dict[str, Any] = json.loads(path.read_text())
    return [(e["task_id"], e["seed"], e["score"], e["total_reward"]) for e in document["episodes"]]


def test_a_sealed_run_records_its_secret_and_the_secret_replays_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, replay, plain = (tmp_path / f"{name}.json" for name in ("first", "second", "replay", "plain"))
    assert _run(capsys, *ARGS, "--sealed", "--output", str(first))[0] == 0
    assert _run(capsys, *ARGS, "--sealed", "--output", str(second))[0] == 0
    assert _run(capsys, *ARGS, "--output", str(plain))[0] == 0
    document = json.loads(first.read_text())
    secret = document["outcome_secret"]
    assert document["settings"]["sealed"] is True and secret not in json.dumps(document["settings"])
    assert secret != json.loads(second.read_text())["outcome_secret"]  # fresh per run
    assert "outcome_secret" not in json.loads(plain.read_text())
    assert _run(capsys, *ARGS, "--outcome-secret", secret, "--output", str(replay))[0] == 0
    assert _scores(replay) == _scores(first)
    assert _scores(first) != _scores(plain)
    assert json.loads(replay.read_text())["settings"]["command"].count("REDACTED") == 1


def test_without_a_results_file_the_secret_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "--policy", "noop", "--tasks", "easy", "--no-progress", "--sealed")
    assert code == 0 and "--outcome-secret " in err


@pytest.mark.parametrize(
    "extra",
    [["--env-url", "http://127.0.0.1:9"], ["--policy", "oracle"]],
)
def test_sealing_is_refused_where_it_cannot_apply(capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    argv = ["--policy", "heuristic", "--tasks", "easy", "--no-progress", "--sealed", *extra]
    code, err = _run(capsys, *argv)
    assert code != 0 and ("own" in err or "oracle" in err)
