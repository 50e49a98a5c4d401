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

Each prints one JSON object as its last line.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time

from workflow_orchestrator.evaluation import record_policy_actions
from workflow_orchestrator.runner.reports import mean_table
from workflow_orchestrator.runner.run import play_policies
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS, PRESETS, ArenaFamily, generate_arena
from workflow_orchestrator.server.tasks.generated import LEVELS
from workflow_orchestrator.server.tasks.registry import TaskRegistry

PRESET_NAMES = ("easy", "medium", "hard")
POLICY_NAMES = ("noop", "random", "greedy", "heuristic")
# The hard preset with exactly 50 subtasks: the size the generation target names.
FIFTY = dataclasses.replace(PRESETS["hard"], name="fifty", subtask_range=(50, 50))


def generation_ms(count: int = 200) -> float:
    start = time.process_time()
    for seed in range(count):
        generate_arena(FIFTY, seed)
    return (time.process_time() - start) / count * 1e3


def reset_ms(env: WorkflowEnv, first_seed: int, count: int = 50) -> float:
    """A reset with seeds not seen before: the registry keeps the compiled tasks of
    recent seeds, and a repeated seed would time that cache instead."""
    start = time.process_time()
    for seed in range(first_seed, first_seed + count):
        env.reset("arena/fifty", seed=seed)
    return (time.process_time() - start) / count * 1e3


def steps_per_second(env: WorkflowEnv, task_id: str, seconds: float = 0.4) -> float:
    """Steps only: resets happen outside the timed region."""
    trajectories = [(seed, record_policy_actions(env, "heuristic", task_id, seed)) for seed in range(8)]
    steps = 0
    elapsed = 0.0
    while elapsed < seconds:
        for seed, actions in trajectories:
            env.reset(task_id, seed=seed)
            start = time.process_time()
            for action in actions:
                env.step(action)
            elapsed += time.process_time() - start
            steps += len(actions)
    return steps / elapsed


def speed(rounds: int = 5) -> dict[str, object]:
    registry = TaskRegistry()
    registry.add_family(ArenaFamily({**PRESETS, "fifty": FIFTY}))
    env = WorkflowEnv(registry)
    generate = statistics.median(generation_ms() for _ in range(rounds))
    reset = statistics.median(reset_ms(env, first_seed=1000 * r) for r in range(rounds))
    print(f"generate 50 subtasks: {generate:.3f} ms; reset with 50 subtasks: {reset:.3f} ms")
    sps: dict[str, int] = {}
    for preset in (*PRESET_NAMES, "fifty"):
        task_id = f"arena/{preset}"
        sps[preset] = round(statistics.median(steps_per_second(env, task_id) for _ in range(rounds)))
        print(f"{task_id}: {sps[preset]} steps/s")
    return {"generate_50_ms": round(generate, 4), "reset_50_ms": round(reset, 4), "steps_per_second": sps}


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


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "scores":
        count = int(args[1]) if len(args) > 1 else 100
        print(json.dumps({"mean_score": policy_scores(count)}))
        return
    print(json.dumps(speed()))


if __name__ == "__main__":
    main()
