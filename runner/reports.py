"""What a run reports: progress on stderr, the summary per model and task and
its table, the results file, the trajectories file, and the baseline file
(``baseline_scores.json``) with its table."""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypedDict

from .episodes import EpisodeResult
from .settings import BASELINE_COMMAND, ENV_NAME, RunSettings


class Progress:
    """Progress on stderr: a bar redrawn in place on a terminal, one line per episode otherwise."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self.done = 0
        self.scores: list[float] = []
        self.started = time.monotonic()
        self.tty = enabled and stream.isatty()

    def advance(self, result: EpisodeResult) -> None:
        self.done += 1
        if result.score is not None:
            self.scores.append(result.score)
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        mean = f"{statistics.fmean(self.scores):.3f}" if self.scores else "-"
        if self.tty:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} mean score {mean} {elapsed:.0f}s"
            )
            if self.done == self.total:
                self.stream.write("\n")
        elif self.total <= 100 or self.done % math.ceil(self.total / 20) == 0 or self.done == self.total:
            # Without a terminal, a line per episode; in long runs about twenty lines in all.
            outcome = f"score {result.score:.3f}" if result.score is not None else f"error: {result.error}"
            self.stream.write(
                f"[{self.done}/{self.total}] {result.model} {result.task_id} seed {result.seed}: "
                f"{outcome}, {len(result.steps)} steps, {result.wall_s:.1f}s\n"
            )
        self.stream.flush()


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 6) if values else None


def summarize(results: Sequence[EpisodeResult]) -> list[dict[str, Any]]:
    """Means per model and task, in the order the episodes were asked for."""
    groups: dict[tuple[str, str], list[EpisodeResult]] = {}
    for result in results:
        groups.setdefault((result.model, result.task_id), []).append(result)
    rows = []
    for (model, task_id), group in groups.items():
        graded = [r for r in group if r.score is not None]
        scores = [r.score for r in graded if r.score is not None]
        normalized = [r.normalized_score for r in graded if r.normalized_score is not None]
        rows.append(
            {
                "model": model,
                "task_id": task_id,
                "episodes": len(group),
                "errors": len(group) - len(graded),
                "mean_score": _mean(scores),
                "std_score": round(statistics.pstdev(scores), 6) if scores else None,
                # Only when every graded episode has one: a mean over some of them would mislead.
                "mean_normalized_score": _mean(normalized) if graded and len(normalized) == len(graded) else None,
                "success_rate": _mean([1.0 if r.success else 0.0 for r in group]),
                "mean_steps": _mean([float(len(r.steps)) for r in group]),
                "mean_tokens": _mean([float(r.prompt_tokens + r.completion_tokens) for r in group]),
                "mean_wall_s": _mean([r.wall_s for r in group]),
            }
        )
    return rows


class MeanCell(TypedDict):
    """One cell of a mean table: the mean score, and the mean normalised score or None."""

    score: float
    normalized: float | None


def mean_table(results: Sequence[EpisodeResult], digits: int) -> dict[str, dict[str, MeanCell]]:
    """Per task and player (model or policy), in the order first seen: the mean
    score and the mean normalised score (None unless every episode has one),
    each rounded to ``digits``; the tables of the built-in policies and the ladder."""
    scores: dict[str, dict[str, list[float]]] = {}
    normalized: dict[str, dict[str, list[float | None]]] = {}
    for result in results:
        if result.score is None:
            raise ValueError(f"{result.model} on {result.task_id} seed {result.seed} has no grade")
        scores.setdefault(result.task_id, {}).setdefault(result.model, []).append(result.score)
        normalized.setdefault(result.task_id, {}).setdefault(result.model, []).append(result.normalized_score)
    table: dict[str, dict[str, MeanCell]] = {}
    for task_id, row in scores.items():
        table[task_id] = {}
        for model, values in row.items():
            fractions = [value for value in normalized[task_id][model] if value is not None]
            table[task_id][model] = {
                "score": round(statistics.mean(values), digits),
                "normalized": (round(statistics.mean(fractions), digits) if len(fractions) == len(values) else None),
            }
    return table


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    header = "| model | task | episodes | mean score | normalized | success | steps | tokens |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        score = "-" if row["mean_score"] is None else f"{row['mean_score']:.3f}"
        norm = "-" if row["mean_normalized_score"] is None else f"{row['mean_normalized_score']:.3f}"
        lines.append(
            f"| {row['model']} | {row['task_id']} | {row['episodes']} | {score} | {norm} | "
            f"{row['success_rate']:.2f} | {row['mean_steps']:.1f} | {row['mean_tokens']:.0f} |"
        )
    return "\n".join(lines)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomically(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def results_document(settings: RunSettings, results: Sequence[EpisodeResult], started_at: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        "env": ENV_NAME,
        "models": list(dict.fromkeys(r.model for r in results)),
        "started_at": started_at,
        "finished_at": now_iso(),
        "settings": settings.public(),
        "episodes": [r.summary() for r in results],
        "summary": summarize(results),
    }
    if settings.outcome_secret is not None:
        # Whoever holds this file can replay the run: inference.py --outcome-secret SECRET.
        document["outcome_secret"] = settings.outcome_secret
    return document


def write_trajectories(path: Path, results: Sequence[EpisodeResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for result in results:
            handle.write(json.dumps(result.trajectory()) + "\n")


def update_baseline(path: Path, settings: RunSettings, results: Sequence[EpisodeResult]) -> dict[str, Any]:
    """Replace the rows of the models and policies just run; keep every other row."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        previous = {}
    date = now_iso()
    document: dict[str, Any] = {
        "description": (
            "Mean grade per task of the built-in policies and of models run with inference.py; "
            "each row records how it was produced."
        ),
        "command": BASELINE_COMMAND,
        "updated_at": date,
        "rows": previous.get("rows") if isinstance(previous.get("rows"), dict) else {},
    }
    for model in dict.fromkeys(r.model for r in results):
        rows = [row for row in summarize(results) if row["model"] == model]
        document["rows"][model] = {
            "kind": "model" if settings.uses_model else "policy",
            "model": model,
            "date": date,
            "settings": settings.public(),
            "scores": {row["task_id"]: row["mean_score"] for row in rows},
            "normalized_scores": {row["task_id"]: row["mean_normalized_score"] for row in rows},
            "episodes": {row["task_id"]: row["episodes"] for row in rows},
        }
    write_json_atomically(path, document)
    return document


def baseline_table(document: Mapping[str, Any]) -> str:
    """The baseline file as a Markdown table: one row per policy or model, one column per task."""
    rows = document.get("rows") or {}
    tasks: list[str] = []
    for row in rows.values():
        tasks.extend(t for t in row.get("scores", {}) if t not in tasks)
    lines = ["| policy or model | " + " | ".join(tasks) + " | seeds |", "|---" * (len(tasks) + 2) + "|"]
    for name, row in rows.items():
        cells = []
        for task_id in tasks:
            score = row.get("scores", {}).get(task_id)
            cells.append("-" if score is None else f"{score:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row.get('settings', {}).get('seeds', '-')} |")
    return "\n".join(lines)
