"""best-scores --write never makes the shipped data worse, and a new scenario
file gets best scores for its canonical seed."""

from __future__ import annotations

from typing import Any

from tests.support.tasks import registry_of, tiny_task
from workflow_orchestrator.oracle.catalogue import default_targets, merge_entries


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
    merged, notes = merge_entries(shipped, computed)
    by_seed = {e["seed"]: e for e in merged}
    assert sorted(by_seed) == [1, 2, 3, 4, 5, 6] and len(merged) == 6
    assert by_seed[1] is shipped[0] and by_seed[2] is shipped[1] and by_seed[4] is shipped[3]
    assert by_seed[3] is computed[2] and by_seed[5] is computed[4] and by_seed[6] is computed[5]
    assert len(notes) == 2 and "seed 1" in notes[0] and "optimal" in notes[0] and "seed 2" in notes[1]
    # Entries of tasks and seeds not computed are kept as they are.
    other = _entry(9, "optimal", 0.5, 0.5)
    merged, _ = merge_entries([*shipped, other], computed[:1])
    assert other in merged and len(merged) == 6


def test_a_new_scenario_file_gets_its_canonical_seed() -> None:
    registry = registry_of(tiny_task(canonical_seed=777))
    seeds = {t.seed for t in default_targets(registry) if t.task_id == "tiny"}
    assert 777 in seeds and set(range(20)) <= seeds
