"""The ladder: mean grade of each built-in policy and of the oracle, per task,
raw and as a fraction of the best achievable score (``normalized_score``).

Expected order on every task: noop < random < greedy <= heuristic <= oracle; ``slack``
(the stronger built-in baseline) is shown beside the heuristic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..runner.reports import MeanCell, mean_table
from ..runner.run import play_policies
from ..server.tasks import TaskRegistry
from .catalogue import ARENA_SEEDS, ARENA_TASKS, GENERATED_TASKS, SCENARIO_SEEDS, SCENARIO_TASKS

LADDER = ("noop", "random", "greedy", "heuristic", "slack", "oracle")
DEFAULT_TASKS = SCENARIO_TASKS + ARENA_TASKS + GENERATED_TASKS


def default_seeds(task_id: str) -> list[int]:
    """The seeds whose best scores are shipped."""
    return list(ARENA_SEEDS if task_id.startswith("arena/") else SCENARIO_SEEDS)


def ladder_means(
    tasks: Sequence[str],
    seeds: Mapping[str, Sequence[int]],
    rungs: Sequence[str] = LADDER,
    seconds: float = 10.0,
    registry: TaskRegistry | None = None,
) -> dict[str, dict[str, MeanCell]]:
    """Per task and rung: the mean score and the mean normalised score (None
    unless the best achievable score is known for every seed), each rounded to 4
    places. The runner plays them; the oracle plays the shipped plan of a task
    and seed when it is current, else the best it finds in ``seconds``."""
    return mean_table(play_policies(rungs, tasks, seeds, registry=registry, oracle_seconds=seconds), 4)


def markdown_ladder(table: Mapping[str, Mapping[str, MeanCell]], seeds: Mapping[str, Sequence[int]]) -> str:
    rungs = list(next(iter(table.values())))
    lines = [
        "| task | seeds | " + " | ".join(rungs) + " |",
        "|---|---|" + "---:|" * len(rungs),
    ]
    for task_id, row in table.items():
        task_seeds = seeds[task_id]
        cells = []
        for rung in rungs:
            value = row[rung]
            normalized = "n/a" if value["normalized"] is None else f"{value['normalized']:.3f}"
            cells.append(f"{value['score']:.3f} ({normalized})")
        lines.append(f"| {task_id} | {task_seeds[0]}-{task_seeds[-1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
