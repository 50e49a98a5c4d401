"""best-scores --write never makes the shipped data worse, replaces a shipped entry
that no longer earns its score, and a new scenario file gets best scores for its
canonical seed."""

from __future__ import annotations

from typing import Any

from tests.support.tasks import registry_of, tiny_task
from workflow_orchestrator.oracle.catalogue import default_targets, merge_entries
from workflow_orchestrator.server.tasks.best_scores import load_entries


def _entry(seed: int, status: str, score: float, bound: float, fingerprint: str = "f1") -> dict[str, Any]:
    return {
        "task_id": "hard",
        "seed": seed,
        "fingerprint": fingerprint,
        "best_score": score,
        "status": status,
        "upper_bound": bound,
    }


def test_a_proven_or_better_shipped_entry_is_kept_and_said() -> None:
    shipped = [
        _entry(1, "optimal", 0.95, 0.95),
        _entry(2, "best_found", 0.90, 0.99),
        _entry(3, "best_found", 0.90, 0.99),
        _entry(4, "optimal", 0.95, 0.95),
        _entry(5, "optimal", 0.80, 0.80),
    ]
    computed = [
        _entry(1, "best_found", 0.96, 0.99),  # a found score never replaces a proven one
        _entry(2, "best_found", 0.88, 0.99),  # a lower found score neither
        _entry(3, "optimal", 0.91, 0.91),  # proof replaces
        _entry(4, "optimal", 0.95, 0.95),  # the same result: the shipped entry stays, nothing to say
        _entry(5, "best_found", 0.70, 0.99, fingerprint="f2"),  # the task changed: the old entry is void
        _entry(6, "best_found", 0.50, 0.90),  # new
    ]
    merged, notes = merge_entries(shipped, computed, replays=lambda entry: True)
    by_seed = {e["seed"]: e for e in merged}
    assert sorted(by_seed) == [1, 2, 3, 4, 5, 6] and len(merged) == 6
    assert by_seed[1] is shipped[0] and by_seed[2] is shipped[1] and by_seed[4] is shipped[3]
    assert by_seed[3] is computed[2] and by_seed[5] is computed[4] and by_seed[6] is computed[5]
    assert len(notes) == 2 and "seed 1" in notes[0] and "optimal" in notes[0] and "seed 2" in notes[1]
    # Entries of tasks and seeds not computed are kept as they are.
    other = _entry(9, "optimal", 0.5, 0.5)
    merged, _ = merge_entries([*shipped, other], computed[:1], replays=lambda entry: True)
    assert other in merged and len(merged) == 6


def test_a_new_scenario_file_gets_its_canonical_seed() -> None:
    registry = registry_of(tiny_task(canonical_seed=777))
    seeds = {t.seed for t in default_targets(registry) if t.task_id == "tiny"}
    assert 777 in seeds and set(range(20)) <= seeds


def test_a_shipped_entry_that_no_longer_earns_its_score_is_replaced() -> None:
    # A rule change (the grade, the gate) can void a shipped plan: kept by its higher score, it would
    # stay forever. The default check replays it through a real episode.
    for task_id in ("hard", "canvas/qa"):
        (real,) = [e for e in load_entries() if e["task_id"] == task_id and e["seed"] == 0]
        stale = {**real, "status": "best_found", "best_score": round(real["best_score"] + 0.01, 6)}
        stale["upper_bound"] = max(stale["upper_bound"], stale["best_score"])
        computed = {**real, "status": "best_found"}
        merged, notes = merge_entries([stale], [computed])
        assert merged == [computed], task_id
        assert len(notes) == 1 and notes[0].startswith(f"replaced {task_id} seed 0"), notes
        # One that still earns its score is kept over a weaker result.
        weaker = {**real, "status": "best_found", "best_score": real["best_score"] - 0.01}
        merged, _ = merge_entries([real], [weaker])
        assert merged == [real]
