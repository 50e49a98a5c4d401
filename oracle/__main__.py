"""The oracle's command line.

    python -m workflow_orchestrator.oracle solve --task hard [--seed 3] [--seconds 60] [--plan]
    python -m workflow_orchestrator.oracle best-scores [--tasks ...] [--seeds ...] [--write] [--check]
    python -m workflow_orchestrator.oracle demos --tasks easy,hard --count 100 --out demos.jsonl
    python -m workflow_orchestrator.oracle ladder [--tasks ...] [--seeds ...]
    python -m workflow_orchestrator.oracle planner-scores [--tasks ...] [--write] [--hindsight [--seconds S]]
    python -m workflow_orchestrator.oracle references [--tasks ...]

``best-scores`` solves the shipped set (the scenarios on seeds 0-19, the arena
presets on seeds 0-49) with the per-task time budgets, prints each result
with its solve time and a summary, and with ``--write`` updates
``tasks/best_scores.json`` (entries of other tasks and seeds are kept, and so
is a shipped entry of the same task definition that is proven or better than
this run's result: it never makes the shipped data worse, and says what it
kept). A scenario's canonical seed is always among its targets.
``--check`` only replays the shipped plans and compares fingerprints.

``planner-scores`` plays the no-foresight planner on the evaluation slice
(oracle/references.py) and with ``--write`` updates
``tasks/planner_scores.json``; ``--hindsight`` also proves the best scores the
slice lacks. ``references`` prints, per task of the slice, the built-in
policies', the planner's and the hindsight best's mean grades with 95%
bootstrap intervals (a Markdown table, then one JSON line).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..runner.errors import UsageError
from ..runner.settings import parse_seeds
from ..server.tasks import default_registry
from ..server.tasks.best_scores import load_entries
from .catalogue import (
    Target,
    check_entries,
    compute_entries,
    default_targets,
    merge_entries,
    summary_table,
    write_entries,
)
from .demos import export
from .ladder import DEFAULT_TASKS, LADDER, default_seeds, ladder_means, markdown_ladder
from .references import (
    SLICE_TASKS,
    compute_planner_entries,
    load_planner_entries,
    markdown_reference_table,
    merge_planner_entries,
    missing_hindsight,
    reference_table,
    ship_hindsight,
    slice_seeds,
    write_planner_entries,
)
from .solver import OracleResult, solve


def _split(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def command_solve(args: argparse.Namespace) -> int:
    resolved = default_registry().resolve(args.task, seed=args.seed, worker_count=args.worker_count)
    result = solve(resolved.compiled, resolved.seed, seconds=args.seconds)
    print(json.dumps(result.to_dict(with_plan=args.plan), indent=1))
    return 0


def _report(result: OracleResult) -> None:
    print(
        f"{result.task_id:14} seed {result.seed:3}  {result.status:10} best {result.best_score:.6f}  "
        f"bound {result.upper_bound:.6f}  gap {result.gap:.6f}  {result.seconds:7.2f} s  {result.nodes} nodes",
        flush=True,
    )


def command_best_scores(args: argparse.Namespace) -> int:
    registry = default_registry()
    if args.check:
        problems = check_entries(registry=registry)
        for problem in problems:
            print(problem)
        print(f"{len(load_entries())} shipped entries, {len(problems)} problem(s)")
        return 1 if problems else 0
    targets = default_targets(registry)
    if args.tasks:
        wanted = set(_split(args.tasks))
        targets = [t for t in targets if t.task_id in wanted]
        missing = wanted - {t.task_id for t in targets}
        targets.extend(Target(task_id, registry.resolve(task_id).seed, 60.0) for task_id in sorted(missing))
    if args.seeds:
        seeds = parse_seeds(args.seeds)
        budgets = {t.task_id: t.seconds for t in targets}
        # A scenario's canonical seed always, besides the seeds asked for.
        targets = [
            Target(task_id, seed, budgets[task_id])
            for task_id in budgets
            for seed in sorted(set(seeds) | ({registry.resolve(task_id).seed} if "/" not in task_id else set()))
        ]
    if args.seconds is not None:
        targets = [Target(t.task_id, t.seed, args.seconds) for t in targets]
    entries = compute_entries(targets, registry, progress=_report)
    print()
    print(summary_table(entries))
    if args.write:
        # Never worse than what is shipped: a proven or better entry of the same task stays.
        merged, notes = merge_entries(load_entries(), entries)
        for note in notes:
            print(note)
        write_entries(merged)
        print(f"\nwrote {len(merged)} entries ({len(notes)} shipped entries kept over weaker results)")
    return 0


def command_demos(args: argparse.Namespace) -> int:
    tasks = _split(args.tasks)
    seeds = parse_seeds(args.seeds) if args.seeds else list(range(math.ceil(args.count / len(tasks))))
    trajectories, lines = export(
        Path(args.out), tasks=tasks, seeds=seeds, count=args.count, seconds=args.seconds, keep_skips=args.keep_skips
    )
    print(f"wrote {trajectories} trajectories, {lines} lines, to {args.out}")
    return 0 if trajectories == args.count else 1


def command_ladder(args: argparse.Namespace) -> int:
    tasks = _split(args.tasks)
    seeds = {t: parse_seeds(args.seeds) if args.seeds else default_seeds(t) for t in tasks}
    table = ladder_means(tasks, seeds, rungs=_split(args.rungs), seconds=args.seconds)
    print("Mean grade, raw (normalised: as a fraction of the best achievable score):\n")
    print(markdown_ladder(table, seeds))
    print(json.dumps({"seeds": {t: f"{s[0]}-{s[-1]}" for t, s in seeds.items()}, "ladder": table}))
    return 0


def command_planner_scores(args: argparse.Namespace) -> int:
    registry = default_registry()
    tasks = _split(args.tasks) if args.tasks else list(SLICE_TASKS)
    started = time.perf_counter()
    if args.hindsight:
        targets = missing_hindsight(tasks, registry, args.seconds)
        print(f"{len(targets)} seed(s) of the slice without a shipped best score", flush=True)
        for note in ship_hindsight(targets, registry, _report):
            print(note)
    slice_targets = [(task_id, seed) for task_id in tasks for seed in slice_seeds(task_id)]

    def progress(entry: dict[str, Any]) -> None:
        print(
            f"{entry['task_id']:16} seed {entry['seed']:10}  "
            f"planner {entry['planner_score']:.6f}  {entry['seconds']:6.2f} s",
            flush=True,
        )

    entries = compute_planner_entries(slice_targets, progress)
    wall = time.perf_counter() - started
    print(f"\n{len(entries)} planner scores in {wall:.0f} s")
    if args.write:
        merged = merge_planner_entries(load_planner_entries(), entries)
        write_planner_entries(merged)
        print(f"wrote {len(merged)} entries")
    return 0


def command_references(args: argparse.Namespace) -> int:
    tasks = _split(args.tasks) if args.tasks else list(SLICE_TASKS)
    table = reference_table(tasks)
    print("Mean grade on the evaluation slice, with 95% bootstrap intervals:\n")
    print(markdown_reference_table(table))
    print(json.dumps({"seeds": {t: f"{slice_seeds(t)[0]}-{slice_seeds(t)[-1]}" for t in tasks}, "references": table}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_orchestrator.oracle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    solve_parser = commands.add_parser("solve", help="the best plan of one task and seed")
    solve_parser.add_argument("--task", required=True)
    solve_parser.add_argument("--seed", type=int, default=None, help="default: the task's canonical seed")
    solve_parser.add_argument("--worker-count", type=int, default=None)
    solve_parser.add_argument("--seconds", type=float, default=60.0, help="search budget")
    solve_parser.add_argument("--plan", action="store_true", help="print the plan too")
    solve_parser.set_defaults(run=command_solve)

    best = commands.add_parser("best-scores", help="compute (and ship) the best achievable scores")
    best.add_argument("--tasks", default="", help="comma-separated task ids (default: the shipped set)")
    best.add_argument("--seeds", default="", help="e.g. 0-49 (default: per task, the shipped seeds)")
    best.add_argument("--seconds", type=float, default=None, help="budget per task and seed (default: per task)")
    best.add_argument("--write", action="store_true", help="update tasks/best_scores.json")
    best.add_argument("--check", action="store_true", help="only replay the shipped plans")
    best.set_defaults(run=command_best_scores)

    demos = commands.add_parser("demos", help="export oracle trajectories as JSONL (observation text -> action)")
    demos.add_argument("--tasks", default="easy,medium,hard,expert")
    demos.add_argument("--count", type=int, required=True, help="number of trajectories")
    demos.add_argument("--seeds", default="", help="default: 0, 1, ... as many as the count needs")
    demos.add_argument("--out", required=True)
    demos.add_argument("--seconds", type=float, default=10.0, help="search budget when no plan is shipped")
    demos.add_argument("--keep-skips", action="store_true", help="keep the arena's zero-time skips")
    demos.set_defaults(run=command_demos)

    ladder = commands.add_parser("ladder", help="mean raw and normalised grade per task and policy")
    ladder.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    ladder.add_argument("--seeds", default="", help="default: per task, the shipped seeds")
    ladder.add_argument("--rungs", default=",".join(LADDER))
    ladder.add_argument("--seconds", type=float, default=10.0, help="search budget when no plan is shipped")
    ladder.set_defaults(run=command_ladder)

    planner = commands.add_parser("planner-scores", help="the planner's scores on the evaluation slice")
    planner.add_argument("--tasks", default="", help="comma-separated task ids (default: every task of the slice)")
    planner.add_argument("--write", action="store_true", help="update tasks/planner_scores.json")
    planner.add_argument("--hindsight", action="store_true", help="also prove the slice's missing best scores")
    planner.add_argument("--seconds", type=float, default=10.0, help="oracle budget per seed (--hindsight)")
    planner.set_defaults(run=command_planner_scores)

    references = commands.add_parser("references", help="policies, planner and hindsight best on the slice")
    references.add_argument("--tasks", default="", help="comma-separated task ids (default: every task of the slice)")
    references.set_defaults(run=command_references)

    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
