"""Arena speed and policy scores.

``python -m bench arena`` prints: the time to generate a 50-subtask arena
workflow (the generator alone, and a whole reset: generation, compilation and
the first observation), and steps per second on each preset with the
heuristic policy's actions (observation, and at the end the grade, included;
the policy's own thinking recorded beforehand and not timed). Times are CPU
time of this process, medians of several rounds.

``python -m bench arena scores [SEEDS]`` plays noop, random, greedy and
heuristic on each arena preset and each generated-scenario level over the
first SEEDS (default 100) held-out evaluation seeds and prints the mean grade
score (for the arena: its ``benchmark_score``) as a Markdown table.

``python -m bench arena expert [SEEDS] [PLANNER_SEEDS]`` plays random, greedy,
heuristic, slack and a policy that follows the hint literally on the expert
presets (``arena/expert``, ``generated/expert``) over the first SEEDS (default 50) held-out evaluation seeds, and the
planner on the first PLANNER_SEEDS of them (default 0: it takes minutes a
seed), and prints each one's mean grade score with a 95% interval (normal
approximation) and the expert targets: heuristic at least 0.15 below the
planner (where measured; else below the slack policy, the planner's base
there), random at most 0.35, the hint follower at most the heuristic.

Each prints one JSON object as its last line.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
import sys
import time
from typing import Any

from bench.replay import replay_rates
from workflow_orchestrator.evaluation import record_policy_actions
from workflow_orchestrator.runner.reports import mean_table
from workflow_orchestrator.runner.run import play_policies
from workflow_orchestrator.server.core.families import build_observation, new_episode
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks.arena import (
    EVALUATION_SEEDS,
    EXPERT_PRESETS,
    PRESETS,
    ArenaFamily,
    generate_arena,
    generate_expert,
)
from workflow_orchestrator.server.tasks.generated import (
    EXPERT_LEVELS,
    LEVELS,
    GeneratedFamily,
    generate_expert_scenario,
)
from workflow_orchestrator.server.tasks.planner import PlannerPolicy
from workflow_orchestrator.server.tasks.registry import TaskRegistry, default_registry

PRESET_NAMES = ("easy", "medium", "hard")
EXPERT_NAMES = tuple(EXPERT_PRESETS)
EXPERT_TASKS = tuple(f"arena/{name}" for name in EXPERT_PRESETS) + tuple(f"generated/{name}" for name in EXPERT_LEVELS)
EXPERT_POLICIES = ("random", "greedy", "heuristic", "slack", "hint")
POLICY_NAMES = ("noop", "random", "greedy", "heuristic")
# The hard preset with exactly 50 subtasks: the size the generation target names.
FIFTY = dataclasses.replace(PRESETS["hard"], name="fifty", subtask_range=(50, 50))


def generation_ms(count: int = 200) -> float:
    start = time.process_time()
    for seed in range(count):
        generate_arena(FIFTY, seed)
    return (time.process_time() - start) / count * 1e3


def expert_generation_ms(count: int = 50) -> float:
    """An expert workflow (50-120 subtasks), the generator alone."""
    start = time.process_time()
    for seed in range(count):
        generate_expert(EXPERT_PRESETS["expert"], seed)
    return (time.process_time() - start) / count * 1e3


def generated_expert_generation_ms(count: int = 50) -> float:
    """A generated/expert workflow (50-120 subtasks), the generator alone."""
    start = time.process_time()
    for seed in range(count):
        generate_expert_scenario(EXPERT_LEVELS["expert"], seed)
    return (time.process_time() - start) / count * 1e3


def reset_ms(env: WorkflowEnv, first_seed: int, count: int = 50, task_id: str = "arena/fifty") -> float:
    """A reset with seeds not seen before: the registry keeps the compiled tasks of
    recent seeds, and a repeated seed would time that cache instead."""
    start = time.process_time()
    for seed in range(first_seed, first_seed + count):
        env.reset(task_id, seed=seed)
    return (time.process_time() - start) / count * 1e3


def steps_per_second(env: WorkflowEnv, task_id: str, seconds: float = 0.4) -> float:
    """Steps only: resets happen outside the timed region."""
    plays = [(seed, record_policy_actions(env, "heuristic", task_id, seed)) for seed in range(8)]
    return replay_rates(env, task_id, plays, seconds)[0]


def speed(rounds: int = 5) -> dict[str, object]:
    registry = TaskRegistry()
    registry.add_family(ArenaFamily({**PRESETS, **EXPERT_PRESETS, "fifty": FIFTY}))
    registry.add_family(GeneratedFamily())
    env = WorkflowEnv(registry)
    generate = statistics.median(generation_ms() for _ in range(rounds))
    reset = statistics.median(reset_ms(env, first_seed=1000 * r) for r in range(rounds))
    print(f"generate 50 subtasks: {generate:.3f} ms; reset with 50 subtasks: {reset:.3f} ms")
    expert = statistics.median(expert_generation_ms() for _ in range(rounds))
    expert_reset = statistics.median(reset_ms(env, first_seed=1000 * r, task_id="arena/expert") for r in range(rounds))
    print(f"generate arena/expert (50-120 subtasks): {expert:.3f} ms; reset: {expert_reset:.3f} ms")
    generated = statistics.median(generated_expert_generation_ms() for _ in range(rounds))
    generated_reset = statistics.median(
        reset_ms(env, first_seed=1000 * r, task_id="generated/expert") for r in range(rounds)
    )
    print(f"generate generated/expert (50-120 subtasks): {generated:.3f} ms; reset: {generated_reset:.3f} ms")
    sps: dict[str, int] = {}
    for preset in (*PRESET_NAMES, *EXPERT_NAMES, "fifty"):
        task_id = f"arena/{preset}"
        sps[preset] = round(statistics.median(steps_per_second(env, task_id) for _ in range(rounds)))
        print(f"{task_id}: {sps[preset]} steps/s")
    for name in EXPERT_LEVELS:
        task_id = f"generated/{name}"
        sps[task_id] = round(statistics.median(steps_per_second(env, task_id) for _ in range(rounds)))
        print(f"{task_id}: {sps[task_id]} steps/s")
    return {
        "generate_50_ms": round(generate, 4),
        "reset_50_ms": round(reset, 4),
        "generate_expert_ms": round(expert, 4),
        "reset_expert_ms": round(expert_reset, 4),
        "generate_generated_expert_ms": round(generated, 4),
        "reset_generated_expert_ms": round(generated_reset, 4),
        "steps_per_second": sps,
    }


def policy_scores(seed_count: int = 100) -> dict[str, dict[str, float]]:
    seeds = EVALUATION_SEEDS[:seed_count]
    task_ids = [f"arena/{p}" for p in PRESET_NAMES] + [f"generated/{level}" for level in LEVELS]
    means = mean_table(play_policies(POLICY_NAMES, task_ids, {task_id: seeds for task_id in task_ids}), 3)
    table = {task_id: {name: cell["score"] for name, cell in row.items()} for task_id, row in means.items()}
    print(f"mean grade score over held-out seeds {seeds.start}..{seeds.stop - 1}")
    print("| task | " + " | ".join(POLICY_NAMES) + " |")
    print("|---|" + "---:|" * len(POLICY_NAMES))
    for task_id, row in table.items():
        print(f"| `{task_id}` | " + " | ".join(f"{row[name]:.3f}" for name in POLICY_NAMES) + " |")
    return table


HINTED_ACTION = re.compile(r" Do: (\w+)\(([^)]*)\)\.$")


def follow_the_hint(observation: dict[str, Any]) -> dict[str, Any]:
    """The action the hint ends with, taken literally (a wait when it names none)."""
    found = HINTED_ACTION.search(observation["hint"])
    if found is None:
        return {"action_type": "wait"}
    kind, args = found.group(1), [a for a in found.group(2).split(",") if a]
    if kind == "dispatch":
        assignments = []
        for arg in args:
            subtask_id, _, agent = arg.partition(":")
            assignments.append({"subtask_id": subtask_id, **({"agent_name": agent} if agent else {})})
        return {"action_type": "dispatch", "assignments": assignments}
    if kind in ("delegate", "retry"):
        return {"action_type": kind, "subtask_id": args[0], "agent_name": args[1]}
    return {"action_type": kind}


def play_expert(task_id: str, seed: int, policy: str) -> float:
    """One unsealed episode of ``policy`` (a built-in name, ``hint`` or ``planner``); its score."""
    resolved = _REGISTRY.resolve(task_id, seed)
    episode = new_episode(resolved.compiled, resolved.seed)
    player: Any
    if policy == "planner":
        player = PlannerPolicy(task_id, seed, registry=_REGISTRY)
    elif policy != "hint":
        player = make_policy(policy, seed)
    while not episode.done:
        observation = build_observation(episode)
        episode.step(follow_the_hint(observation) if policy == "hint" else player.act(observation))
    score: float = resolved.compiled.family.grade(episode)["score"]
    return score


def interval(values: list[float]) -> tuple[float, float, float]:
    mean = statistics.mean(values)
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return round(mean, 3), round(mean - half, 3), round(mean + half, 3)


def expert_table(seed_count: int = 50, planner_seeds: int = 0) -> dict[str, Any]:
    seeds = EVALUATION_SEEDS[:seed_count]
    table: dict[str, Any] = {}
    for task_id in EXPERT_TASKS:
        scores = {policy: [play_expert(task_id, seed, policy) for seed in seeds] for policy in EXPERT_POLICIES}
        row: dict[str, Any] = {policy: interval(values) for policy, values in scores.items()}
        if planner_seeds:
            planned = [play_expert(task_id, seed, "planner") for seed in seeds[:planner_seeds]]
            row["planner"] = interval(planned)
            row["heuristic_on_planner_seeds"] = interval(scores["heuristic"][:planner_seeds])
        top = row["planner"][0] - row["heuristic_on_planner_seeds"][0] if planner_seeds else None
        row["targets"] = {
            "heuristic_below_planner": None if top is None else round(top, 3),
            "heuristic_below_slack": round(row["slack"][0] - row["heuristic"][0], 3),
            "random_at_most_0.35": row["random"][0] <= 0.35,
            "hint_at_most_heuristic": row["hint"][0] <= row["heuristic"][0],
        }
        table[task_id] = row
        print(f"{task_id}, held-out seeds {seeds.start}..{seeds.stop - 1}: mean score [95% interval]")
        for policy, (mean, lo, hi) in ((p, row[p]) for p in (*EXPERT_POLICIES, "planner") if p in row):
            print(f"  {policy:10s} {mean:.3f} [{lo:.3f}, {hi:.3f}]")
        print(f"  targets: {row['targets']}")
    return table


_REGISTRY = default_registry()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "expert":
        count = int(args[1]) if len(args) > 1 else 50
        planner = int(args[2]) if len(args) > 2 else 0
        print(json.dumps({"expert": expert_table(count, planner)}))
        return
    if args and args[0] == "scores":
        count = int(args[1]) if len(args) > 1 else 100
        print(json.dumps({"mean_score": policy_scores(count)}))
        return
    print(json.dumps(speed()))


if __name__ == "__main__":
    main()
