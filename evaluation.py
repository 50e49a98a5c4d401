"""Grades of the built-in policies, per task, as a table.

    uv run python -m workflow_orchestrator.evaluation --seeds 0-99

Prints a Markdown table of the mean grade of each policy on each task over
the seeds (the README's policy table comes from here), then one JSON object
with the same figures as its last line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from .runner.errors import UsageError
from .runner.reports import mean_table
from .runner.run import play_policies
from .runner.settings import parse_seeds
from .server.core.policies import POLICIES
from .server.inprocess import WorkflowEnv

DEFAULT_TASKS = ("easy", "medium", "hard", "expert")


def record_policy_actions(env: WorkflowEnv, policy_name: str, task_id: str, seed: int) -> list[dict[str, Any]]:
    """Play one episode with a built-in policy (on the tasks of ``env``'s registry) and
    return the actions it took (benchmarks replay them so that the policy's own
    thinking is not timed)."""
    (result,) = play_policies([policy_name], [task_id], {task_id: [seed]}, registry=env.registry)
    return [step.action for step in result.steps]


def policy_means(tasks: Sequence[str], policies: Sequence[str], seeds: Sequence[int]) -> dict[str, dict[str, float]]:
    """The mean score of each policy on each task over the seeds, rounded to 3 places."""
    table = mean_table(play_policies(policies, tasks, {task_id: seeds for task_id in tasks}), 3)
    return {task_id: {name: cell["score"] for name, cell in row.items()} for task_id, row in table.items()}


def markdown_table(means: dict[str, dict[str, float]], policies: Sequence[str]) -> str:
    lines = ["| task | " + " | ".join(policies) + " |", "|---|" + "---:|" * len(policies)]
    for task_id, row in means.items():
        lines.append(f"| {task_id} | " + " | ".join(f"{row[name]:.3f}" for name in policies) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated task ids")
    parser.add_argument("--seeds", default="0-99", help="seeds and ranges, e.g. 0-99 or 0-19,25")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated built-in policies")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    policies = [p for p in args.policies.split(",") if p]
    try:
        seeds = parse_seeds(args.seeds)
    except UsageError as exc:
        parser.error(str(exc))
    means = policy_means(tasks, policies, seeds)
    print(f"Mean grade over seeds {args.seeds} ({len(seeds)} episodes per cell):\n")
    print(markdown_table(means, policies))
    print(json.dumps({"seeds": args.seeds, "mean_score": means}))


if __name__ == "__main__":
    main()
