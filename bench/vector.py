"""Batch speed: ``python -m bench vector``.

In process: :class:`WorkflowVectorEnv` env-steps per second at N = 1, 16 and
256 episodes per call, in each observation form (``full``, the dicts, as
before; ``none``; ``encoded``, the Gymnasium encoding and masks), side by side
in one run, on ``hard`` (the hand-written scenario, tick model) and
``arena/hard``. Each slot replays the heuristic policy's actions for its seed,
recorded beforehand (8 seeds, slot ``i`` playing seed ``i % 8``), so no policy
runs while timing. A round steps every slot with its next action; the rounds
stop at the shortest recorded episode, so every env-step counted is a real
one. Resets are timed on their own (``reset_ms``, one whole batch). The same
rounds stepped by a plain loop over ``WorkflowEnv``s (``loop_steps_per_second``)
are timed in the same run, as the reference for the vector env's own cost
(the machine is shared: compare figures of one run). Every round runs in a
fresh process (a figure is not the heap left by the figures before it), the
forms and the loop taking turns; times are the CPU time of that process,
medians of ``--rounds`` rounds (five) of ``--seconds`` each.

Over one WebSocket connection (``batch_reset`` / ``batch_step``, the server
started on loopback by the bench): env-steps per second at N = 64, wall
clock, the same recorded actions, client and server on this machine, in each
observation form; beside it the same episodes stepped one message per step on
one connection (``ws_single_steps_per_second``). A round of a form steps for
``--seconds``: a batch_reset, then every recorded round, again and again (the
resets are not timed). Medians of ``--rounds`` rounds. Spreads (lowest and
highest round), the load average and the machine's processor are printed too, and
whether each target is met (80,000 env-steps/s in process at N = 256 on hard,
40,000 over one connection with N = 64, each by the fastest form). Prints
figures, and one JSON object as its last line.

Builds: ``--build python`` (the default) times the package as it is imported;
``--build native`` makes the compiled build (``workflow_orchestrator.native``,
mypyc; once per source digest, into ``.cache/native``) and times it, the
server included. ``--compare-builds`` times both side by side: in process,
each round of the compiled build right after the same round of the pure one;
over the WebSocket, a fresh server of each build in turn, each round of one
right after the same round of the other. ``--baseline REV`` does the same
with a revision of this repository against this tree: both pure, or both
compiled under ``--build native`` (the baseline's compiled build made by its
own ``native.py``). The JSON says which build each figure is of.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import websockets

from workflow_orchestrator import WorkflowEnv, native
from workflow_orchestrator.vector import WorkflowVectorEnv

TASKS = ("hard", "arena/hard")
SIZES = (1, 16, 256)
SEEDS = 8
WS_SIZE = 64
FORMS = ("full", "none", "encoded")
LOOP = "loop"  # a worker's round of the plain loop over WorkflowEnvs, beside the forms
IN_PROCESS_TARGET = 80_000  # env-steps/s at N = 256 on hard-sized tasks
WS_TARGET = 40_000  # env-steps/s over one connection, N = 64
ROOT = Path(__file__).resolve().parent.parent
NATIVE_CACHE = ROOT / ".cache" / "native"


@functools.cache  # the in-process and the WebSocket figures of a run replay the same actions
def recorded(task_id: str) -> list[list[dict[str, Any]]]:
    from workflow_orchestrator.evaluation import record_policy_actions  # the runner's imports, only here

    env = WorkflowEnv()
    return [record_policy_actions(env, "heuristic", task_id, seed) for seed in range(SEEDS)]


def in_process_rate(
    task_id: str, size: int, actions: list[list[dict[str, Any]]], seconds: float, form: str = "full"
) -> tuple[float, float]:
    """Env-steps per second of ``step`` over ``size`` slots, and milliseconds per batch reset."""
    vec = WorkflowVectorEnv(task_id, size, autoreset=False, observation=form)
    seeds = [i % SEEDS for i in range(size)]
    plays = [actions[seed] for seed in seeds]
    rounds = min(len(play) for play in plays)
    batches = [[play[k] for play in plays] for k in range(rounds)]
    clock = time.process_time
    steps = 0
    stepping = 0.0
    resetting = 0.0
    resets = 0
    start = clock()
    while clock() - start < seconds:
        begin = clock()
        vec.reset(seeds)
        resetting += clock() - begin
        resets += 1
        begin = clock()
        for batch in batches:
            vec.step(batch)
        stepping += clock() - begin
        steps += rounds * size
    return steps / stepping, resetting / resets * 1e3


def loop_rate(task_id: str, size: int, actions: list[list[dict[str, Any]]], seconds: float) -> float:
    """The same rounds stepped by a plain loop over ``size`` WorkflowEnvs."""
    envs = [WorkflowEnv() for _ in range(size)]
    seeds = [i % SEEDS for i in range(size)]
    plays = [actions[seed] for seed in seeds]
    rounds = min(len(play) for play in plays)
    clock = time.process_time
    steps = 0
    stepping = 0.0
    start = clock()
    while clock() - start < seconds:
        for env, seed in zip(envs, seeds, strict=True):
            env.reset(task_id, seed=seed)
        begin = clock()
        for k in range(rounds):
            for env, play in zip(envs, plays, strict=True):
                env.step(play[k])
        stepping += clock() - begin
        steps += rounds * size
    return steps / stepping


async def websocket_rates(
    url: str,
    task_id: str,
    actions: list[list[dict[str, Any]]],
    forms: tuple[str, ...] = FORMS,
    seconds: float = 0.5,
) -> tuple[dict[str, float], float]:
    """Env-steps per second over one connection: batched (N = WS_SIZE per message) in each observation
    form, each for about ``seconds`` of stepping (a batch_reset, then every recorded round, again and
    again; the resets are not timed), then one step per message (one pass over the seeds)."""
    seeds = [i % SEEDS for i in range(WS_SIZE)]
    plays = [actions[seed] for seed in seeds]
    rounds = min(len(play) for play in plays)
    batches = [
        orjson.dumps({"type": "batch_step", "data": {"actions": [play[k] for play in plays]}}).decode()
        for k in range(rounds)
    ]
    batched: dict[str, float] = {}
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        for form in forms:
            reset = orjson.dumps(
                {
                    "type": "batch_reset",
                    "data": {
                        "task_id": task_id,
                        "num_envs": WS_SIZE,
                        "seed": seeds,
                        "autoreset": False,
                        "observation": form,
                    },
                }
            ).decode()
            stepping = 0.0
            steps = 0
            while stepping < seconds:
                await ws.send(reset)
                assert orjson.loads(await ws.recv())["type"] == "batch"
                started = time.perf_counter()
                for message in batches:
                    await ws.send(message)
                    reply = await ws.recv()
                stepping += time.perf_counter() - started
                steps += rounds * WS_SIZE
                assert orjson.loads(reply)["type"] == "batch"
            batched[form] = steps / stepping
        steps = 0
        started = time.perf_counter()
        for seed in range(SEEDS):
            await ws.send(orjson.dumps({"type": "reset", "data": {"task_id": task_id, "seed": seed}}).decode())
            await ws.recv()
            for action in actions[seed][:rounds]:
                await ws.send(orjson.dumps({"type": "step", "data": action}).decode())
                await ws.recv()
                steps += 1
        single = steps / (time.perf_counter() - started)
    return batched, single


def machine() -> str:
    """The processor this runs on and how many cores it has (figures are of one machine)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def spread(values: list[float]) -> dict[str, int]:
    return {"median": round(statistics.median(values)), "low": round(min(values)), "high": round(max(values))}


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench vector", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="episodes per batch, comma-separated")
    parser.add_argument("--tasks", default=",".join(TASKS), help="task ids, comma-separated")
    parser.add_argument("--forms", default=",".join(FORMS), help="observation forms, comma-separated")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure (medians of these)")
    parser.add_argument("--seconds", type=float, default=0.5, help="CPU seconds of each round")
    parser.add_argument("--no-websocket", action="store_true", help="in process only")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also time revision REV of this repository (a temporary git worktree), each round of it right "
        "after the same round of this tree: in process, every round in a fresh process, and over the WebSocket, "
        "a fresh server of each in turn",
    )
    parser.add_argument(
        "--build",
        choices=("python", "native"),
        default="python",
        help="the package as imported (python), or its compiled build (native, made once into .cache/native)",
    )
    parser.add_argument(
        "--compare-builds",
        action="store_true",
        help="time the pure and the compiled build side by side (in process, then over the WebSocket)",
    )
    parser.add_argument(
        "--worker", nargs=5, metavar=("TASK", "SIZE", "FORM", "SECONDS", "ACTIONS"), help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def worker(task_id: str, size: str, form: str, seconds: str, actions_file: str) -> None:
    """One round in this process (whichever ``workflow_orchestrator`` it imports): one JSON line."""
    actions = orjson.loads(Path(actions_file).read_bytes())
    if form == LOOP:
        rate, reset_ms = loop_rate(task_id, int(size), actions, float(seconds)), 0.0
    else:
        rate, reset_ms = in_process_rate(task_id, int(size), actions, float(seconds), form)
    print(json.dumps({"rate": rate, "reset_ms": reset_ms}))


class Baseline:
    """Revision ``rev`` checked out in a temporary worktree, importable as ``workflow_orchestrator`` by a
    child process (this tree's bench code, that revision's package)."""

    def __init__(self, rev: str) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
        self.tree = self.temp / "workflow_orchestrator"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(self.tree), rev], check=True)
        self.rev = subprocess.run(
            ["git", "-C", str(self.tree), "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()

    def close(self) -> None:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(self.tree)], check=False)
        shutil.rmtree(self.temp, ignore_errors=True)


def child_environment(path: Path | None) -> dict[str, str]:
    """The environment of a child process that imports the tree at ``path`` (a baseline's), or this
    tree as this process imports it (None: the compiled build under --build native), and the bench."""
    env = dict(os.environ)
    inherited = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    env["PYTHONPATH"] = os.pathsep.join(([str(path)] if path is not None else inherited) + [str(ROOT)])
    return env


def child_round(
    path: Path | None, task_id: str, size: int, form: str, seconds: float, actions_file: str
) -> tuple[float, float]:
    """One round in a fresh process, of this tree (``path`` None) or of a baseline: env-steps per
    second and milliseconds per batch reset."""
    env = child_environment(path)
    command = [sys.executable, "-m", "bench", "vector", "--worker", task_id, str(size), form, str(seconds)]
    out = subprocess.run([*command, actions_file], check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return float(figures["rate"]), float(figures["reset_ms"])


def compare(args: argparse.Namespace, tasks: list[str], sizes: list[int], forms: list[str]) -> None:
    """This tree against ``--baseline``, round by round in fresh processes: in process, then over the
    WebSocket (a fresh server of each in turn). Under ``--build native`` both are compiled builds."""
    baseline = Baseline(args.baseline)
    build = "native" if native.compiled() else "python"
    figures: dict[str, Any] = {}
    try:
        path = baseline_build(baseline) if build == "native" else baseline.temp
        print(
            f"{machine()}; load average {load()}; baseline {args.baseline} ({baseline.rev}) against this tree; "
            f"build {build}"
        )
        figures["in_process_steps_per_second"] = side_by_side(args, tasks, sizes, forms, path, None)
        if not args.no_websocket:
            figures["ws_batch_steps_per_second"] = websocket_side_by_side(
                args, tasks, forms, (("baseline", str(path)), ("this", None))
            )
    finally:
        baseline.close()
    print(f"load average {load()}")
    print(
        json.dumps({"baseline": baseline.rev, "build": build, "machine": machine(), "load_average": load(), **figures})
    )


def baseline_build(baseline: Baseline) -> Path:
    """The compiled build of the baseline's sources, made by that revision's own native.py (for PYTHONPATH)."""
    print(f"making the compiled build of {baseline.rev} (a few minutes)", flush=True)
    where = baseline.temp / "native"
    env = dict(os.environ, PYTHONPATH=str(baseline.temp))
    command = [sys.executable, "-m", "workflow_orchestrator.native", "build", str(where)]
    subprocess.run(command, cwd=baseline.tree, env=env, check=True, stdout=subprocess.DEVNULL)
    return where


def websocket_side_by_side(
    args: argparse.Namespace, tasks: list[str], forms: list[str], builds: tuple[tuple[str, str | None], ...]
) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
    """Env-steps/s over one WebSocket, N = WS_SIZE, for each of ``builds`` ((name, PYTHONPATH for its
    server, None for this tree)): every round, a fresh server of each in turn."""
    from bench.server import ServerUnderTest, free_port  # the server's imports, only when timing it

    table: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    for task_id in tasks:
        actions = recorded(task_id)
        rates: dict[str, dict[str, list[float]]] = {name: {form: [] for form in forms} for name, _ in builds}
        for _ in range(args.rounds):
            for name, path in builds:
                server = ServerUnderTest(free_port(), path)
                try:
                    batched, _ = asyncio.run(
                        websocket_rates(server.ws_url, task_id, actions, tuple(forms), args.seconds)
                    )
                finally:
                    server.stop()
                for form in forms:
                    rates[name][form].append(batched[form])
        table[task_id] = {form: {name: spread(rates[name][form]) for name, _ in builds} for form in forms}
        for form in forms:
            print(
                f"{task_id} {form} over one WebSocket, N={WS_SIZE}: env-steps/s "
                + ", ".join(
                    f"{name} {table[task_id][form][name]['median']} "
                    f"({table[task_id][form][name]['low']}-{table[task_id][form][name]['high']})"
                    for name, _ in builds
                ),
                flush=True,
            )
    return table


def side_by_side(
    args: argparse.Namespace,
    tasks: list[str],
    sizes: list[int],
    forms: list[str],
    before_path: Path | None,
    after_path: Path | None,
    names: tuple[str, str] = ("baseline", "this"),
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Each round of ``after_path``'s package right after the same round of ``before_path``'s
    (None: this tree's), every round in a fresh process; figures keyed by ``names``."""
    first, second = names
    table: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for task_id in tasks:
            actions_file = str(Path(scratch) / "actions.json")
            Path(actions_file).write_bytes(orjson.dumps(recorded(task_id)))
            table[task_id] = {}
            for form in forms:
                table[task_id][form] = {}
                for size in sizes:
                    before: list[tuple[float, float]] = []
                    after: list[tuple[float, float]] = []
                    for _ in range(args.rounds):
                        before.append(child_round(before_path, task_id, size, form, args.seconds, actions_file))
                        after.append(child_round(after_path, task_id, size, form, args.seconds, actions_file))
                    pair: dict[str, Any] = {
                        first: spread([rate for rate, _ in before]),
                        second: spread([rate for rate, _ in after]),
                        "reset_ms": {
                            first: round(statistics.median(ms for _, ms in before), 3),
                            second: round(statistics.median(ms for _, ms in after), 3),
                        },
                    }
                    table[task_id][form][str(size)] = pair
                    print(
                        f"{task_id} {form} N={size}: env-steps/s {first} {pair[first]['median']} "
                        f"({pair[first]['low']}-{pair[first]['high']}), {second} "
                        f"{pair[second]['median']} ({pair[second]['low']}-{pair[second]['high']}); "
                        f"ms per batch reset {pair['reset_ms'][first]} -> {pair['reset_ms'][second]}",
                        flush=True,
                    )
    return table


def native_build() -> Path:
    """The compiled build of this tree (made when its sources changed), for PYTHONPATH."""
    print("making the compiled build (once per source digest: a few minutes)", flush=True)
    return native.build(NATIVE_CACHE)


def run_natively(argv: list[str]) -> int:
    """This bench again, in a process that imports the compiled build (and whose server does)."""
    where = native_build()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(where), str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "bench", "vector", *argv], cwd=ROOT, env=env, check=False).returncode


def compare_builds(args: argparse.Namespace, tasks: list[str], sizes: list[int], forms: list[str]) -> None:
    """The pure and the compiled build side by side: in process, then over one WebSocket."""
    where = native_build()
    print(f"{machine()}; load average {load()}; the pure build against the compiled one")
    table = side_by_side(args, tasks, sizes, forms, None, where, ("python", "native"))
    print(f"load average {load()}")
    figures: dict[str, Any] = {"in_process_steps_per_second": table}
    if not args.no_websocket:
        figures["ws_batch_steps_per_second"] = websocket_side_by_side(
            args, tasks, forms, (("python", None), ("native", str(where)))
        )
        print(f"load average {load()}")
    print(json.dumps({"builds": ["python", "native"], "machine": machine(), "load_average": load(), **figures}))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    tasks = args.tasks.split(",")
    sizes = [int(size) for size in args.sizes.split(",")]
    forms = args.forms.split(",")
    if args.compare_builds:
        compare_builds(args, tasks, sizes, forms)
        return
    if args.build == "native" and not native.compiled():
        raise SystemExit(run_natively(sys.argv[1:] if argv is None else argv))
    if args.baseline:
        compare(args, tasks, sizes, forms)
        return
    build = "native" if native.compiled() else "python"
    rounds = args.rounds
    print(f"{machine()}; load average {load()}; build {build}")
    steps_per_second: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    reset_ms: dict[str, dict[str, float]] = {}
    loop: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for task_id in tasks:
            actions_file = str(Path(scratch) / "actions.json")
            Path(actions_file).write_bytes(orjson.dumps(recorded(task_id)))
            steps_per_second[task_id] = {form: {} for form in forms}
            reset_ms[task_id] = {}
            loop[task_id] = {}
            for size in sizes:
                rates: dict[str, list[tuple[float, float]]] = {form: [] for form in forms}
                plain = []
                # Every round in a fresh process (a figure is not the heap of the figures before it),
                # interleaved, so that every form sees the same load.
                for _ in range(rounds):
                    for form in forms:
                        rates[form].append(child_round(None, task_id, size, form, args.seconds, actions_file))
                    plain.append(child_round(None, task_id, size, LOOP, args.seconds, actions_file)[0])
                loop[task_id][str(size)] = round(statistics.median(plain))
                reset_ms[task_id][str(size)] = round(statistics.median(ms for _, ms in rates[forms[0]]), 3)
                for form in forms:
                    steps_per_second[task_id][form][str(size)] = spread([rate for rate, _ in rates[form]])
                figures = ", ".join(
                    f"{form} {steps_per_second[task_id][form][str(size)]['median']} "
                    f"({steps_per_second[task_id][form][str(size)]['low']}-"
                    f"{steps_per_second[task_id][form][str(size)]['high']})"
                    for form in forms
                )
                print(
                    f"{task_id} N={size}: env-steps/s in process: {figures}; "
                    f"{loop[task_id][str(size)]} by a plain loop; {reset_ms[task_id][str(size)]} ms per batch reset"
                )
    print(f"load average {load()}")
    figures_json: dict[str, Any] = {
        "build": build,
        "in_process_steps_per_second": steps_per_second,
        "loop_steps_per_second": loop,
        "in_process_reset_ms": reset_ms,
    }
    if args.no_websocket:
        print(json.dumps({"machine": machine(), "load_average": load(), **figures_json}))
        return
    from bench.server import ServerUnderTest, free_port  # the server's imports, only when timing it

    ws_batched: dict[str, dict[str, dict[str, int]]] = {}
    ws_single: dict[str, int] = {}
    server = ServerUnderTest(free_port())
    try:
        for task_id in tasks:
            actions = recorded(task_id)
            runs = [
                asyncio.run(websocket_rates(server.ws_url, task_id, actions, tuple(forms), args.seconds))
                for _ in range(args.rounds)
            ]
            ws_batched[task_id] = {form: spread([by_form[form] for by_form, _ in runs]) for form in forms}
            ws_single[task_id] = round(statistics.median(rate for _, rate in runs))
            figures = ", ".join(
                f"{form} {ws_batched[task_id][form]['median']} "
                f"({ws_batched[task_id][form]['low']}-{ws_batched[task_id][form]['high']})"
                for form in forms
            )
            print(
                f"{task_id} over one WebSocket, env-steps/s in batches of {WS_SIZE}: {figures}; "
                f"{ws_single[task_id]} one step per message"
            )
    finally:
        server.stop()
    print(f"load average {load()}")
    targets: dict[str, dict[str, Any]] = {}
    if "hard" in tasks and 256 in sizes:
        best_in_process = max(forms, key=lambda form: steps_per_second["hard"][form]["256"]["median"])
        targets["in_process_hard_256"] = {
            "target": IN_PROCESS_TARGET,
            "form": best_in_process,
            "reached": steps_per_second["hard"][best_in_process]["256"]["median"],
        }
    if "hard" in tasks:
        best_ws = max(forms, key=lambda form: ws_batched["hard"][form]["median"])
        targets["websocket_hard_64"] = {
            "target": WS_TARGET,
            "form": best_ws,
            "reached": ws_batched["hard"][best_ws]["median"],
        }
    for name, target in targets.items():
        target["met"] = target["reached"] >= target["target"]
        print(f"target {name}: {target['reached']} of {target['target']} ({target['form']}): met {target['met']}")
    print(
        json.dumps(
            {
                "machine": machine(),
                "load_average": load(),
                **figures_json,
                "ws_batch_size": WS_SIZE,
                "ws_batch_steps_per_second": ws_batched,
                "ws_single_steps_per_second": ws_single,
                "targets": targets,
            }
        )
    )


if __name__ == "__main__":
    main()
