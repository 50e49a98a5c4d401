"""Grades of the built-in policies, per task, as a table.

    uv run python -m workflow_orchestrator.evaluation --seeds 0-99

Prints a Markdown table of the mean grade of each policy on each task over
the seeds (the README's policy table comes from here), then one JSON object
with the same figures as its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from typing import Any

from .server.core import WorkflowEnv
from .server.core.policies import POLICIES, make_policy

DEFAULT_TASKS = ("easy", "medium", "hard", "expert")


def parse_seeds(text: str) -> list[int]:
    """``"0-99"`` or ``"1,5,9"`` (or a mix: ``"0-4,10"``)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-", 1)
            seeds.extend(range(int(low), int(high) + 1))
        elif part:
            seeds.append(int(part))
    return seeds


def play_policy(env: WorkflowEnv, policy_name: str, task_id: str, seed: int) -> dict[str, Any]:
    """Play one episode with a built-in policy and return its grade."""
    policy = make_policy(policy_name, seed)
    observation = env.reset(task_id, seed=seed)
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    return observation["grade"]


def record_policy_actions(env: WorkflowEnv, policy_name: str, task_id: str, seed: int) -> list[dict[str, Any]]:
    """Play one episode with a built-in policy and return the actions it took
    (benchmarks replay them so that the policy's own thinking is not timed)."""
    policy = make_policy(policy_name, seed)
    observation = env.reset(task_id, seed=seed)
    actions = []
    while not observation["done"]:
        action = policy.act(observation)
        actions.append(action)
        observation = env.step(action)
    return actions


def policy_means(tasks: Sequence[str], policies: Sequence[str], seeds: Sequence[int]) -> dict[str, dict[str, float]]:
    env = WorkflowEnv()
    return {
        task_id: {
            name: round(statistics.mean(play_policy(env, name, task_id, s)["score"] for s in seeds), 3)
            for name in policies
        }
        for task_id in tasks
    }


def markdown_table(means: dict[str, dict[str, float]], policies: Sequence[str]) -> str:
    lines = ["| task | " + " | ".join(policies) + " |", "|---|" + "---:|" * len(policies)]
    for task_id, row in means.items():
        lines.append(f"| {task_id} | " + " | ".join(f"{row[name]:.3f}" for name in policies) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated task ids")
    parser.add_argument("--seeds", default="0-99", help="a range such as 0-99, or a comma list")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated built-in policies")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    policies = [p for p in args.policies.split(",") if p]
    seeds = parse_seeds(args.seeds)
    means = policy_means(tasks, policies, seeds)
    print(f"Mean grade over seeds {args.seeds} ({len(seeds)} episodes per cell):\n")
    print(markdown_table(means, policies))
    print(json.dumps({"seeds": args.seeds, "mean_score": means}))


if __name__ == "__main__":
    main()
