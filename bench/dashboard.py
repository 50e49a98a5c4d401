"""The dashboard in a browser: ``python -m bench dashboard``.

Starts the real server with its web UI on 127.0.0.1 in a child process and
drives Debian's chromium (headless, through Playwright) against it:

The times are read in the page, on its own clock (``performance.now()``,
from the navigation's start), by a script that Playwright adds before the
page's own and that watches the page's DOM; a change counts once the frame
showing it is painted (the next animation frame, then the task after it):

* ``first_render_s``: from asking for ``/web/`` in a fresh browser context
  (an empty cache) to the first frame with a DAG node, median of the runs;
* ``interactive_s``: from the same start to the first frame where "Policy
  step" is enabled (Gradio has drawn the page and the load event has
  started the browser's episode), median of the runs;
* ``ui_step_ms``: from the click on "Policy step" (the click event's time) to
  the first frame where the DAG shows the new step, median over the steps timed;
* ``page_weight_kb`` and ``requests``: the bytes received and the requests
  made by a first load (response bodies as received, compressed or not);
* ``external_requests``: requests that went anywhere but the server (should be 0).

The same two times on Playwright's clock are printed too (``*_wall``): a
first render from ``goto``, which returns only after the page's ``load``
event, and a step from ``click``, which first waits for the button to be
visible, stable and enabled, each then polling for the selector. They add
Playwright's own waits (about 100 ms a step on this machine) to the page's.

Targets: first render at most 2 s, one UI step at most 150 ms, page weight at
most 500 KB. Prints figures, and one JSON object as its last line.

``--baseline REV`` measures another revision of the server side by side (its
tree from ``git archive REV``, imported ahead of this checkout): the two
servers run at once and their page loads alternate, so that both see the same
load on a shared machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TARGETS = {"first_render_s": 2.0, "ui_step_ms": 150.0, "page_weight_kb": 500.0}

# Added to every page before its own scripts: marks (window.__woBench.marks, by name) the time of
# the first painted frame showing a DAG node ('node'), an enabled "Policy step" ('ready'), and
# whatever selector is asked for next (window.__woBench.want); keeps the last click's time.
MARKS_JS = """(() => {
  const bench = window.__woBench = {marks: {}, want: null, clicked: null};
  const painted = (name) => requestAnimationFrame(() => setTimeout(() => {
    if (bench.marks[name] === undefined) { bench.marks[name] = performance.now(); }
  }));
  const seen = {};
  const look = () => {
    if (!seen.node && document.querySelector('#wo-dag svg .wo-node')) { seen.node = true; painted('node'); }
    const button = document.querySelector('#wo-policy-step');
    if (!seen.ready && button && !button.disabled) { seen.ready = true; painted('ready'); }
    if (bench.want && document.querySelector(bench.want)) { const want = bench.want; bench.want = null; painted(want); }
  };
  new MutationObserver(look).observe(document, {subtree: true, childList: true, attributes: true,
    attributeFilter: ['disabled']});
  document.addEventListener('click', (event) => { bench.clicked = event.timeStamp; }, true);
})();"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def checkout(revision: str, into: Path) -> Path:
    """``revision``'s tree as an importable ``workflow_orchestrator`` package under ``into``; returns ``into``."""
    archive = subprocess.run(["git", "archive", revision], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    target = into / "workflow_orchestrator"
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tree:
        tree.extractall(target, filter="data")
    return into


def start_server(port: int, startup_timeout_s: float, source: Path | None = None) -> subprocess.Popen[bytes]:
    """The server on ``port``; with ``source``, the ``workflow_orchestrator`` package found there."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOW_ORCHESTRATOR_")}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "workflow_orchestrator.server.app", "--host", "127.0.0.1", "--port", str(port)]
    # The page plays its own episodes only: no archive, so that no run leaves one in the repository.
    command.append("--no-archive")
    process = subprocess.Popen(
        [*command, "--log-level", "warning"], env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/web/", timeout=2.0, trust_env=False).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the dashboard did not come up within {startup_timeout_s:g} s")


def measure(urls: dict[str, str], runs: int, steps: int) -> dict[str, dict[str, object]]:
    """The figures of each server in ``urls`` (by label), their page loads taking turns."""
    from playwright.sync_api import sync_playwright

    names = ("first_render", "interactive", "ui_step", "first_render_wall", "ui_step_wall")
    times: dict[str, dict[str, list[float]]] = {label: {name: [] for name in names} for label in urls}
    loads: dict[str, dict[str, int]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for url in urls.values():
                # One load first, so that the server's own first-request work is not timed.
                warm = browser.new_context()
                warm.new_page().goto(url)
                warm.pages[0].wait_for_selector("#wo-policy-step:enabled", timeout=120_000)
                warm.close()
            for run in range(runs):
                for label, url in urls.items():
                    own = times[label]
                    context = browser.new_context(viewport={"width": 1440, "height": 900})
                    context.add_init_script(MARKS_JS)
                    page = context.new_page()
                    seen: list[object] = []
                    # A handler Playwright can tag: a bound builtin like list.append cannot take its attribute.
                    page.on("requestfinished", lambda request, seen=seen: seen.append(request))
                    started = time.perf_counter()
                    page.goto(url)
                    page.wait_for_selector("#wo-dag svg .wo-node", timeout=120_000)
                    own["first_render_wall"].append(time.perf_counter() - started)
                    page.wait_for_function("() => window.__woBench.marks.ready !== undefined", timeout=120_000)
                    marks = page.evaluate("() => window.__woBench.marks")
                    own["first_render"].append(marks["node"] / 1000)
                    own["interactive"].append(marks["ready"] / 1000)
                    if run == 0:
                        page.wait_for_load_state("load")
                        page.wait_for_timeout(1000)
                        weight = external = 0
                        for request in seen:
                            if not request.url.startswith(url.split("/web/")[0]):  # type: ignore[attr-defined]
                                external += 1
                            weight += request.sizes()["responseBodySize"]  # type: ignore[attr-defined]
                        loads[label] = {"weight": weight, "requests": len(seen), "external": external}
                    for step in range(1, steps + 1):
                        wanted = f'#wo-dag svg[data-step="{step}"]'
                        page.evaluate("wanted => { window.__woBench.want = wanted; }", wanted)
                        started = time.perf_counter()
                        page.locator("#wo-policy-step").click()
                        page.wait_for_selector(wanted, timeout=30_000)
                        own["ui_step_wall"].append(time.perf_counter() - started)
                        page.wait_for_function("w => window.__woBench.marks[w] !== undefined", arg=wanted)
                        shown, clicked = page.evaluate(
                            "w => [window.__woBench.marks[w], window.__woBench.clicked]", wanted
                        )
                        own["ui_step"].append((shown - clicked) / 1000)
                    context.close()
        finally:
            browser.close()
    figures: dict[str, dict[str, object]] = {}
    for label in urls:
        own = times[label]
        figures[label] = {
            "first_render_s": round(statistics.median(own["first_render"]), 3),
            "first_render_runs_s": [round(value, 3) for value in own["first_render"]],
            "interactive_s": round(statistics.median(own["interactive"]), 3),
            "interactive_runs_s": [round(value, 3) for value in own["interactive"]],
            "ui_step_ms": round(statistics.median(own["ui_step"]) * 1000, 1),
            "ui_step_runs_ms": [round(value * 1000, 1) for value in own["ui_step"]],
            "first_render_wall_s": round(statistics.median(own["first_render_wall"]), 3),
            "ui_step_wall_ms": round(statistics.median(own["ui_step_wall"]) * 1000, 1),
            "page_weight_kb": round(loads[label]["weight"] / 1024, 1),
            "requests": loads[label]["requests"],
            "external_requests": loads[label]["external"],
        }
    return figures


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh page loads (the medians are over these)")
    parser.add_argument("--steps", type=int, default=1, help="UI steps timed per page load")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--baseline", metavar="REV", help="also measure this git revision, side by side")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as scratch:
        sources: dict[str, Path | None] = {}
        if args.baseline:
            sources[args.baseline] = checkout(args.baseline, Path(scratch))
        sources["this checkout"] = None
        servers: list[subprocess.Popen[bytes]] = []
        urls: dict[str, str] = {}
        try:
            for label, source in sources.items():
                port = free_port()
                servers.append(start_server(port, args.startup_timeout, source))
                urls[label] = f"http://127.0.0.1:{port}/web/"
            figures = measure(urls, args.runs, args.steps)
        finally:
            for server in servers:
                stop(server)
    print(f"load average at the start: {load:.2f}")
    for label, own in figures.items():
        print(f"{label}:")
        print(f"  first render: median {own['first_render_s']} s over {args.runs} loads {own['first_render_runs_s']}")
        print(f"  interactive: median {own['interactive_s']} s {own['interactive_runs_s']}")
        print(f"  one UI step: median {own['ui_step_ms']} ms {own['ui_step_runs_ms']}")
        print(
            f"  on Playwright's clock: first render {own['first_render_wall_s']} s, "
            f"one UI step {own['ui_step_wall_ms']} ms (medians)"
        )
        print(
            f"  first load: {own['page_weight_kb']} KB in {own['requests']} requests, "
            f"{own['external_requests']} outside the server"
        )
        own["met"] = {key: float(own[key]) <= limit for key, limit in TARGETS.items()}  # type: ignore[arg-type]
    result: dict[str, object] = dict(figures["this checkout"])
    result["load_average"] = round(load, 2)
    result["targets"] = TARGETS
    if args.baseline:
        result["baseline"] = {"revision": args.baseline, **figures[args.baseline]}
    print(json.dumps(result))
