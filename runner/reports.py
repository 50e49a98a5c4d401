"""What a run reports: progress on stderr, the summary per model and task and
its table, the results file, the trajectories file, and the baseline file
(``baseline_scores.json``) with its table."""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypedDict

from .episodes import EpisodeResult
from .settings import BASELINE_COMMAND, DEFAULT_PASS_THRESHOLD, ENV_NAME, RunSettings


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


# The percentile bootstrap of a mean: this many resamples, from this seed, so that a report is reproducible.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_interval(
    values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    """The 95% percentile bootstrap interval of the mean of ``values`` (None without values):
    the 2.5th and 97.5th percentiles of the means of ``resamples`` resamples with replacement."""
    if not values:
        return None
    if len(values) == 1:
        return values[0], values[0]
    rng = random.Random(seed)
    n = len(values)
    means = sorted(statistics.fmean(rng.choices(values, k=n)) for _ in range(resamples))
    return means[int(0.025 * resamples)], means[min(resamples - 1, int(0.975 * resamples))]


def _reference_missing(graded: Sequence[Mapping[str, Any]], field: str, status_field: str, name: str) -> str | None:
    """Why a mean normalised score is null: how many graded episodes lack the reference, and its statuses."""
    if not graded:
        return "no graded episode"
    lacking = [e for e in graded if e.get(field) is None]
    if not lacking:
        return None
    statuses = sorted({str((e.get("grade") or {}).get(status_field)) for e in lacking})
    return f"{len(lacking)} of {len(graded)} graded episodes have no {name} ({status_field}: {', '.join(statuses)})"


def pass_hat_k(episodes: Sequence[Mapping[str, Any]], threshold: float) -> float | None:
    """The fraction of seeds whose repeats all scored at least ``threshold`` (an episode that
    failed counts as below it); None without episodes."""
    by_seed: dict[Any, list[float | None]] = {}
    for episode in episodes:
        by_seed.setdefault(episode["seed"], []).append(episode["score"])
    if not by_seed:
        return None
    solved = sum(1 for scores in by_seed.values() if all(s is not None and s >= threshold for s in scores))
    return round(solved / len(by_seed), 6)


def summarize(
    episodes: Sequence[Mapping[str, Any]], repeats: int = 1, pass_threshold: float = DEFAULT_PASS_THRESHOLD
) -> list[dict[str, Any]]:
    """Per model and task, in the order the episodes were asked for (``episodes`` are
    ``EpisodeResult.summary()`` records): the mean score with its 95% bootstrap interval,
    the mean normalised scores against both references (null, with the reason, unless every
    graded episode has the reference), token totals, and pass^k when ``repeats`` > 1."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for episode in episodes:
        groups.setdefault((episode["model"], episode["task_id"]), []).append(episode)
    rows = []
    for (model, task_id), group in groups.items():
        graded = [e for e in group if e["score"] is not None]
        scores = [float(e["score"]) for e in graded]
        interval = bootstrap_interval(scores)
        missing_best = _reference_missing(graded, "normalized_score", "hindsight_best_status", "proven hindsight best")
        missing_planner = _reference_missing(graded, "normalized_to_planner", "planner_score_status", "planner score")
        row: dict[str, Any] = {
            "model": model,
            "task_id": task_id,
            "episodes": len(group),
            "errors": len(group) - len(graded),
            "mean_score": _mean(scores),
            "score_ci95": None if interval is None else [round(interval[0], 6), round(interval[1], 6)],
            "std_score": round(statistics.pstdev(scores), 6) if scores else None,
            # Only when every graded episode has the reference: a mean over some of them would mislead.
            "mean_normalized_score": None if missing_best else _mean([float(e["normalized_score"]) for e in graded]),
            "normalized_score_missing": missing_best,
            "mean_normalized_to_planner": None
            if missing_planner
            else _mean([float(e["normalized_to_planner"]) for e in graded]),
            "normalized_to_planner_missing": missing_planner,
            "success_rate": _mean([1.0 if e["success"] else 0.0 for e in group]),
            "mean_steps": _mean([float(e["steps"]) for e in group]),
            "mean_tokens": _mean([float(e["tokens"]) for e in group]),
            "prompt_tokens": sum(int(e["prompt_tokens"]) for e in group),
            "completion_tokens": sum(int(e["completion_tokens"]) for e in group),
            "mean_wall_s": _mean([float(e["wall_s"]) for e in group]),
        }
        if repeats > 1:
            row["repeats"] = repeats
            row["pass_threshold"] = pass_threshold
            row["pass_hat_k"] = pass_hat_k(group, pass_threshold)
        rows.append(row)
    return rows


def token_totals(episodes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    prompt = sum(int(e["prompt_tokens"]) for e in episodes)
    completion = sum(int(e["completion_tokens"]) for e in episodes)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "tokens": prompt + completion}


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


def summary_table(rows: Sequence[dict[str, Any]], totals: Mapping[str, int] | None = None) -> str:
    """The summary as a Markdown table, then the token totals of the run."""
    with_pass = any("pass_hat_k" in row for row in rows)
    columns = ["model", "task", "episodes", "mean score", "95% CI", "normalized", "vs planner", "success", "steps"]
    columns += ["prompt tokens", "completion tokens"] + (["pass^k (k, ≥ threshold)"] if with_pass else [])
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for row in rows:
        interval = row["score_ci95"]
        cells = [
            row["model"],
            row["task_id"],
            str(row["episodes"]),
            number(row["mean_score"]),
            "-" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]",
            number(row["mean_normalized_score"]),
            number(row["mean_normalized_to_planner"]),
            f"{row['success_rate']:.2f}",
            f"{row['mean_steps']:.1f}",
            str(row["prompt_tokens"]),
            str(row["completion_tokens"]),
        ]
        if with_pass:
            cells.append(
                f"{number(row['pass_hat_k'])} (k={row['repeats']}, ≥ {row['pass_threshold']:g})"
                if "pass_hat_k" in row
                else "-"
            )
        lines.append("| " + " | ".join(cells) + " |")
    if totals is not None:
        lines.append(f"\ntokens in total: {totals['prompt_tokens']} prompt, {totals['completion_tokens']} completion")
    return "\n".join(lines)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomically(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def results_document(
    settings: RunSettings,
    episodes: Sequence[Mapping[str, Any]],
    started_at: str,
    *,
    complete: bool = True,
) -> dict[str, Any]:
    """The results file: the settings, every episode's record and the summary; ``complete`` is
    false while the run still plays (``--resume`` continues such a file)."""
    document: dict[str, Any] = {
        "env": ENV_NAME,
        "models": list(dict.fromkeys(e["model"] for e in episodes)),
        "started_at": started_at,
        "finished_at": now_iso(),
        "complete": complete,
        "settings": settings.public(),
        "episodes": list(episodes),
        "summary": summarize(episodes, settings.repeats, settings.pass_threshold),
        "totals": token_totals(episodes),
    }
    if settings.outcome_secret is not None:
        # Whoever holds this file can replay the run: inference.py --outcome-secret SECRET.
        document["outcome_secret"] = settings.outcome_secret
    return document


def write_trajectories(path: Path, trajectories: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for trajectory in trajectories:
            handle.write(json.dumps(trajectory) + "\n")
    os.replace(temporary, path)


def update_baseline(path: Path, settings: RunSettings, episodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
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
    summary = summarize(episodes)
    for model in dict.fromkeys(e["model"] for e in episodes):
        rows = [row for row in summary if row["model"] == model]
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
