"""The run's report: the mean with its 95% bootstrap interval, both normalised scores
(null with the reason when an episode lacks the reference), token totals, pass^k."""

from __future__ import annotations

import random
import statistics
from typing import Any

from workflow_orchestrator.runner.reports import bootstrap_interval, pass_hat_k, summarize, summary_table, token_totals


def episode(
    task_id: str,
    seed: int,
    score: float | None,
    *,
    repeat: int = 0,
    normalized: float | None = 0.5,
    to_planner: float | None = 0.9,
    prompt: int = 0,
    completion: int = 0,
) -> dict[str, Any]:
    return {
        "model": "m",
        "task_id": task_id,
        "seed": seed,
        "repeat": repeat,
        "score": score,
        "normalized_score": normalized if score is not None else None,
        "normalized_to_planner": to_planner if score is not None else None,
        "success": score is not None,
        "steps": 10,
        "tokens": prompt + completion,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "wall_s": 1.0,
        "error": None if score is not None else "boom",
        "grade": None
        if score is None
        else {
            "hindsight_best_status": "optimal" if normalized is not None else "best_found",
            "planner_score_status": "known" if to_planner is not None else "pending",
        },
    }


def test_bootstrap_interval_is_the_percentile_interval_of_resampled_means_and_reproducible() -> None:
    values = [0.1, 0.4, 0.35, 0.8, 0.9, 0.2, 0.65]
    low, high = bootstrap_interval(values) or (0.0, 0.0)
    rng = random.Random(0)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(2000))
    assert (low, high) == (means[50], means[1950])
    assert low < statistics.fmean(values) < high
    assert bootstrap_interval(values) == (low, high)  # a fixed seed: the same report every time
    assert bootstrap_interval([0.3]) == (0.3, 0.3) and bootstrap_interval([]) is None


def test_summary_has_interval_both_normalised_scores_and_token_totals() -> None:
    episodes = [
        episode("easy", 0, 0.5, normalized=0.6, to_planner=1.1, prompt=100, completion=10),
        episode("easy", 1, 0.7, normalized=0.8, to_planner=0.9, prompt=200, completion=20),
        episode("hard", 0, 0.2, normalized=None, prompt=5, completion=1),
        episode("hard", 1, 0.4, to_planner=None),
        episode("hard", 2, None),
    ]
    easy, hard = summarize(episodes)
    low, high = bootstrap_interval([0.5, 0.7]) or (0.0, 0.0)
    assert easy["mean_score"] == 0.6 and easy["score_ci95"] == [round(low, 6), round(high, 6)]
    assert easy["mean_normalized_score"] == 0.7 and easy["normalized_score_missing"] is None
    assert easy["mean_normalized_to_planner"] == 1.0 and easy["normalized_to_planner_missing"] is None
    assert (easy["prompt_tokens"], easy["completion_tokens"]) == (300, 30)
    assert hard["episodes"] == 5 - 2 and hard["errors"] == 1
    assert hard["mean_normalized_score"] is None
    assert hard["normalized_score_missing"] == (
        "1 of 2 graded episodes have no proven hindsight best (hindsight_best_status: best_found)"
    )
    assert hard["mean_normalized_to_planner"] is None
    assert hard["normalized_to_planner_missing"] == (
        "1 of 2 graded episodes have no planner score (planner_score_status: pending)"
    )
    assert "pass_hat_k" not in easy
    assert token_totals(episodes) == {"prompt_tokens": 305, "completion_tokens": 31, "tokens": 336}
    table = summary_table([easy, hard], token_totals(episodes))
    assert f"| m | easy | 2 | 0.600 | [{low:.3f}, {high:.3f}] | 0.700 | 1.000 |" in table
    assert "| 305 |" not in table and "| 300 | 30 |" in table
    assert table.endswith("tokens in total: 305 prompt, 31 completion")


def test_pass_hat_k_counts_seeds_whose_every_repeat_reaches_the_threshold() -> None:
    episodes = [
        episode("easy", 0, 0.9, repeat=0),
        episode("easy", 0, 0.85, repeat=1),  # seed 0: both at least 0.8
        episode("easy", 1, 0.95, repeat=0),
        episode("easy", 1, 0.7, repeat=1),  # seed 1: one below
        episode("easy", 2, 0.8, repeat=0),
        episode("easy", 2, None, repeat=1),  # seed 2: one failed
        episode("easy", 3, 0.8, repeat=0),
        episode("easy", 3, 0.8, repeat=1),  # seed 3: exactly at the threshold
    ]
    assert pass_hat_k(episodes, 0.8) == 0.5
    assert pass_hat_k(episodes, 0.6) == 0.75
    assert pass_hat_k([], 0.8) is None
    (row,) = summarize(episodes, repeats=2, pass_threshold=0.8)
    assert (row["pass_hat_k"], row["repeats"], row["pass_threshold"]) == (0.5, 2, 0.8)
    assert "0.500 (k=2, ≥ 0.8)" in summary_table([row])


def test_the_reasons_say_when_nothing_was_graded() -> None:
    (row,) = summarize([episode("easy", 0, None)])
    assert row["mean_score"] is None and row["score_ci95"] is None
    assert row["normalized_score_missing"] == row["normalized_to_planner_missing"] == "no graded episode"
    assert "| - | - | - | - |" in summary_table([row])
