"""Instructions per env-step of a batch step, counted by Valgrind: ``python -m bench instructions``.

Wall and CPU time on a shared machine move with its neighbours (this bench's
figures in ``bench vector`` varied by half within an hour); the instructions
a step executes, and its simulated cache misses, do not. This bench runs the
same in-process rounds as ``bench vector`` (``WorkflowVectorEnv`` in the
``none`` form, or another with ``--form``: ``full`` builds every slot's
observation, as ``bench core`` does; every slot replaying the heuristic's
recorded actions of seed ``i % 8``) under ``valgrind --tool=cachegrind``
twice: three resets, the last two each followed by a pass of every recorded
round, and the same three resets without stepping. It divides the difference
by the env-steps: instructions (``Ir``), first-level data-cache misses and
the misses of a second-level cache per env-step (the import and the resets
cancel out; the vector env's own work is counted), and of these the cyclic
collector's share (its collections, the traverse functions they call, the
untracking of tuples and dicts; not the allocations). Until 2026-11-27 the
run without stepping made one reset, not three, so that figures before
then include two batch resets per two passes (see the README). Cachegrind
simulates two levels; its last one is set to ``--l2`` bytes (512 KiB,
8-way: a core's second-level cache on this machine), so that a batch too
large for it shows as misses. Valgrind runs the program about fifty times
slower, so a figure takes a minute or two.

``--passes`` (2 by default) sets the passes of each run. Two passes are too
few to average the collector's schedule over: a run may or may not catch a
full collection, which walks every object of the process (a few hundred
thousand misses at N = 256), so that two trees' collector figures can differ
by that alone. Thirty passes of hard at N = 256 (about 100,000 env-steps)
take a few minutes a tree and hold several full collections.

Trees: this one (``--build python``, the default, or ``native``, its compiled
build made once into ``.cache/native``), and with ``--baseline REV`` a
revision of this repository beside it, of the same build. Needs ``valgrind``
(Debian's package). Prints figures, and one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench.vector import FORMS, SEEDS, Baseline, baseline_build, child_environment, machine, native_build, recorded

PASSES = 2

# The measured program: one reset, then `passes` times a reset and (when stepping) every round of
# bench vector. Run with and without stepping, the imports and the resets are the same in both.
PROGRAM = """
import sys
import orjson
from workflow_orchestrator.vector import WorkflowVectorEnv
task_id, size, passes, actions_file, form = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
stepping = sys.argv[6] == "step"
actions = orjson.loads(open(actions_file, "rb").read())
plays = [actions[i % len(actions)] for i in range(size)]
rounds = min(len(play) for play in plays)
batches = [[play[k] for play in plays] for k in range(rounds)]
vec = WorkflowVectorEnv(task_id, size, autoreset=False, observation=form)
seeds = [i % len(actions) for i in range(size)]
for number in range(passes + 1):
    vec.reset(seeds)
    if number and stepping:
        for batch in batches:
            vec.step(batch)
"""


def counts(
    path: Path | None,
    task_id: str,
    size: int,
    stepping: bool,
    actions_file: str,
    scratch: Path,
    l2: int,
    form: str,
    passes: int = PASSES,
) -> dict[str, int]:
    """Cachegrind's totals for one run of PROGRAM with ``path`` (a tree for PYTHONPATH, None: this one),
    by event (Ir, D1mr, DLmw, ...), and the collector's part of each (``collector.Ir``, ...)."""
    out = scratch / f"cachegrind.{os.getpid()}.{int(stepping)}"
    env = dict(child_environment(path), PYTHONHASHSEED="0")
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", f"--LL={l2},8,64", f"--cachegrind-out-file={out}"]
    command += [sys.executable, "-c", PROGRAM, task_id, str(size), str(passes), actions_file, form]
    command.append("step" if stepping else "reset")
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=scratch)
    lines = out.read_text().splitlines()
    out.unlink()
    events = next(line.split()[1:] for line in lines if line.startswith("events:"))
    summary = next(line.split()[1:] for line in lines if line.startswith("summary:"))
    totals = dict(zip(events, map(int, summary), strict=True))
    # A function's counts come under the file of each instruction's source line, a
    # header's for inlined code: a function of gcmodule.c is one seen there at all.
    collection: set[str] = set()
    current_file = ""
    for line in lines:
        if line.startswith("fl="):
            current_file = line[3:]
        elif line.startswith("fn=") and current_file.endswith("Modules/gcmodule.c"):
            collection.add(line[3:])
    collector = [0] * len(events)
    in_collector = False
    for line in lines:
        if line.startswith("fn="):
            in_collector = is_collector(line[3:], collection)
        elif in_collector and line[:1].isdigit():
            for k, value in enumerate(line.split()[1:]):
                collector[k] += int(value)
    totals.update({f"collector.{event}": value for event, value in zip(events, collector, strict=True)})
    return totals


def is_collector(function: str, collection: set[str]) -> bool:
    """Whether a function's own counts are the cyclic collector's work: the collection
    (the functions of gcmodule.c, but for the allocation and tracking calls that every
    container makes), the types' traverse functions it calls, and the untracking of
    tuples and dicts."""
    if function.endswith("traverse") or function.endswith("_MaybeUntrack"):
        return True
    return function in collection and not function.startswith(("_PyObject_GC_", "PyObject_GC_", "gc_alloc"))


def per_step(
    path: Path | None,
    task_id: str,
    size: int,
    scratch: Path,
    l2: int,
    form: str = "none",
    passes: int = PASSES,
) -> dict[str, float]:
    """The counts per env-step of ``task_id`` at ``size`` for the tree at ``path``; the task's recorded
    actions are in ``scratch/actions.json``."""
    actions_file = str(scratch / "actions.json")
    rounds = min(len(recorded(task_id)[i % SEEDS]) for i in range(size))
    before = counts(path, task_id, size, False, actions_file, scratch, l2, form, passes)
    after = counts(path, task_id, size, True, actions_file, scratch, l2, form, passes)
    steps = passes * rounds * size
    delta = {event: (after[event] - before[event]) / steps for event in before}
    return {
        "instructions": round(delta["Ir"]),
        "l1_data_misses": round(delta["D1mr"] + delta["D1mw"], 1),
        "l2_misses": round(delta["DLmr"] + delta["DLmw"] + delta["ILmr"], 1),
        # Of which the cyclic collector's (see is_collector).
        "collector_instructions": round(delta["collector.Ir"]),
        "collector_l2_misses": round(delta["collector.DLmr"] + delta["collector.DLmw"] + delta["collector.ILmr"], 1),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="hard,arena/hard", help="task ids, comma-separated")
    parser.add_argument("--sizes", default="256", help="episodes per batch, comma-separated")
    parser.add_argument("--build", choices=("python", "native"), default="python", help="pure or compiled")
    parser.add_argument("--baseline", metavar="REV", help="also count revision REV of this repository")
    parser.add_argument(
        "--form", choices=FORMS, default="none", help="the batch's observation form (full: as bench core steps)"
    )
    parser.add_argument(
        "--l2", type=int, default=512 * 1024, help="bytes of the simulated second-level (last) cache, 8-way"
    )
    parser.add_argument(
        "--passes", type=int, default=PASSES, help="passes of every recorded round in each run (at least 1)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.passes < 1:
        raise SystemExit("--passes must be at least 1")
    if shutil.which("valgrind") is None:
        raise SystemExit("bench instructions needs valgrind (apt-get install valgrind)")
    tasks = args.tasks.split(",")
    sizes = [int(size) for size in args.sizes.split(",")]
    trees: list[tuple[str, Path | None]] = []
    baseline = Baseline(args.baseline) if args.baseline else None
    try:
        this = native_build() if args.build == "native" else None
        if baseline is not None:
            path = baseline_build(baseline) if args.build == "native" else baseline.temp
            trees.append((f"baseline {baseline.rev}", path))
        trees.append(("this", this))
        version = _version()
        print(
            f"{machine()}; {version}; build {args.build}; per env-step of batches in the {args.form} form; "
            f"second-level cache {args.l2 // 1024} KiB"
        )
        figures: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as scratch:
            for task_id in tasks:
                (Path(scratch) / "actions.json").write_bytes(orjson.dumps(recorded(task_id)))
                for size in sizes:
                    row = figures.setdefault(task_id, {}).setdefault(str(size), {})
                    for name, path in trees:
                        row[name] = per_step(path, task_id, size, Path(scratch), args.l2, args.form, args.passes)
                        print(f"{task_id} N={size} {name}: {row[name]}", flush=True)
    finally:
        if baseline is not None:
            baseline.close()
    print(
        json.dumps(
            {
                "build": args.build,
                "form": args.form,
                "baseline": baseline.rev if baseline else None,
                "valgrind": version,
                "l2_bytes": args.l2,
                "passes": args.passes,
                "per_env_step": figures,
            }
        )
    )


def _version() -> str:
    found = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False).stdout
    return re.sub(r"\s+", " ", found).strip()


if __name__ == "__main__":
    main()
