"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright.

The server is the real ``server`` entry point with its web UI on, in a child
process on 127.0.0.1 and a free port. Each test uses its own browser context
(its own cookies and storage, so its own Gradio session). Screenshots go to
a directory of this checkout's own under the system's temporary directory
(``wo-dashboard-screenshots-<checkout>-<hash of its path>``), or ``$WO_SCREENSHOTS``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from tests.support.server_fixtures import REPO_ROOT, RunningServer, free_port
from workflow_orchestrator.server.core.policies import make_policy

CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that phones home: this machine's network is closed,
# and the page must not need it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# One directory per checkout (its folder's name and a hash of its path), so that runs in two
# checkouts at once do not overwrite each other's screenshots.
SCREENSHOTS = Path(
    os.environ.get("WO_SCREENSHOTS")
    or Path(tempfile.gettempdir())
    / f"wo-dashboard-screenshots-{REPO_ROOT.name}-{hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:8]}"
)
# Importing Gradio takes long on a busy machine.
STARTUP_TIMEOUT_S = 300.0
UI_TIMEOUT_MS = 30_000


def spawn_server(log_dir: Path, command: list[str], port: int) -> RunningServer:
    log_path = log_dir / f"web-server-{port}.log"
    child_env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOW_ORCHESTRATOR_")}
    child_env.pop("ENABLE_WEB_INTERFACE", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env, cwd=REPO_ROOT)
    return RunningServer(process, port, log_path)


def wait_until_up(server: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/web/", timeout=2.0, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the dashboard did not come up within {STARTUP_TIMEOUT_S} s:\n{server.log()}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    """Both servers, started together (most of their start-up is importing Gradio)."""
    log_dir = tmp_path_factory.mktemp("web_servers")
    web_port, hostile_port = free_port(), free_port()
    started = {
        # ``server`` with its defaults, which include the dashboard.
        "web": spawn_server(
            log_dir,
            [
                sys.executable,
                "-m",
                "workflow_orchestrator.server.app",
                "--host",
                "127.0.0.1",
                "--port",
                str(web_port),
                "--log-level",
                "warning",
                "--archive-path",
                str(log_dir / "archive.sqlite3"),
            ],
            web_port,
        ),
        # A dashboard on a task whose names are HTML.
        "hostile": spawn_server(
            log_dir,
            [sys.executable, str(REPO_ROOT / "tests" / "support" / "dashboard_hostile_server.py"), str(hostile_port)],
            hostile_port,
        ),
    }
    try:
        for server in started.values():
            wait_until_up(server)
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def web_server(servers: dict[str, RunningServer]) -> RunningServer:
    return servers["web"]


@pytest.fixture(scope="module")
def hostile_server(servers: dict[str, RunningServer]) -> RunningServer:
    return servers["hostile"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # launch() gives every run a fresh temporary profile (user-data-dir).
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    yield ctx
    ctx.close()


# --------------------------------------------------------------------------- page helpers


def open_dashboard(ctx: BrowserContext, server: RunningServer) -> Page:
    """The page, once its load event has answered: the opening pictures arrive drawn with the page,
    but the episode exists only when the summary names it (a Step before that finds no episode)."""
    page = ctx.new_page()
    page.goto(f"{server.url}/web/")
    page.wait_for_selector("#wo-dag svg .wo-node")
    page.wait_for_selector("#wo-episode-id")
    return page


def screenshot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def episode_id(page: Page) -> str:
    return page.locator("#wo-episode-id").inner_text().strip()


def wait_for_step(page: Page, step: int) -> None:
    page.wait_for_selector(f'#wo-dag svg[data-step="{step}"]')


def node_status(page: Page, subtask: str) -> str | None:
    return page.locator(f'#wo-dag .wo-node[data-subtask="{subtask}"]').get_attribute("data-status")


def gantt_bars(page: Page) -> int:
    return int(page.locator("#wo-gantt svg").get_attribute("data-bars") or -1)


def choose(page: Page, dropdown_id: str, option: str) -> None:
    dropdown = page.locator(f"#{dropdown_id}")
    dropdown.locator("input").click()
    dropdown.get_by_role("option", name=option, exact=True).click()
    expect(dropdown.get_by_role("option")).to_have_count(0)


def dropdown_options(page: Page, dropdown_id: str) -> list[str]:
    dropdown = page.locator(f"#{dropdown_id}")
    dropdown.locator("input").click()
    options = dropdown.get_by_role("option")
    options.first.wait_for()
    # The selected option carries a check mark on a line of its own.
    names = [text.strip().splitlines()[-1].strip() for text in options.all_inner_texts()]
    # Close the list and leave the field, or the next click on it would not reopen it cleanly.
    page.keyboard.press("Escape")
    page.locator("#wo-status").click()
    expect(options).to_have_count(0)
    return names


def reset_task(page: Page, label: str, task_id: str) -> None:
    choose(page, "wo-task", label)
    page.locator("#wo-reset").click()
    page.wait_for_function(
        "id => { const s = document.querySelector('#wo-status .wo-status');"
        " return s && s.innerText.includes('task ' + id) && s.innerText.includes('step 0'); }",
        arg=task_id,
    )


# --------------------------------------------------------------------------- tests


def test_the_page_loads_nothing_from_the_network(context: BrowserContext, web_server: RunningServer) -> None:
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = open_dashboard(context, web_server)
    # Gradio keeps a connection open, so the network never goes idle: give
    # late requests (fonts, icons) a moment instead.
    page.wait_for_load_state("load")
    page.wait_for_timeout(1500)
    screenshot(page, "01-opened.png")
    elsewhere = [url for url in requested if not url.startswith((web_server.url, "data:", "blob:"))]
    assert requested and elsewhere == []
    # It opened on a running episode of its own, with every panel drawn.
    assert len(episode_id(page)) >= 8
    for panel in ("#wo-gantt svg", "#wo-agents .wo-card", "#wo-gauges .wo-gauge", "#wo-hint .wo-hint"):
        expect(page.locator(panel).first).to_be_visible()


def test_a_person_resets_hard_acts_and_sees_the_dag_and_gantt_change(
    context: BrowserContext, web_server: RunningServer
) -> None:
    page = open_dashboard(context, web_server)
    reset_task(page, "hard — Production Incident Response", "hard")
    assert node_status(page, "alert_triage") == "ready"
    assert node_status(page, "root_cause_analysis") == "pending"
    assert gantt_bars(page) == 0
    # Deadlines from the start, open.
    expect(page.locator('#wo-deadlines tr[data-deadline="root_cause_analysis"]')).to_have_attribute(
        "data-state", "open"
    )

    # The form starts on the only legal delegation.
    expect(page.locator("#wo-subtask input")).to_have_value("alert_triage")
    expect(page.locator("#wo-agent input")).to_have_value("triage_analyst")
    page.locator("#wo-step").click()
    wait_for_step(page, 1)
    assert node_status(page, "alert_triage") == "completed"
    assert node_status(page, "enrich_logs") == "ready"
    assert gantt_bars(page) == 1
    expect(page.locator('#wo-gauges [data-gauge="time"]')).to_contain_text("1 / 22")

    # Choices are the legal ones: both investigators can take enrich_logs, nobody else.
    assert set(dropdown_options(page, "wo-subtask")) == {
        "enrich_logs",
        "check_dashboards",
        "check_dependencies",
        "notify_stakeholders",
        "update_status_page",
    }
    choose(page, "wo-subtask", "enrich_logs")
    expect(page.locator("#wo-agent input")).to_have_value("investigator_alpha")
    assert dropdown_options(page, "wo-agent") == ["investigator_alpha", "investigator_beta"]

    # A dispatch of two in one step.
    page.locator("#wo-kind label", has_text="dispatch").click()
    page.locator("#wo-dispatch label", has_text="enrich_logs → investigator_beta").click()
    page.locator("#wo-dispatch label", has_text="check_dashboards → monitor").click()
    page.locator("#wo-step").click()
    wait_for_step(page, 2)
    assert node_status(page, "check_dashboards") == "completed"
    assert node_status(page, "enrich_logs") == "in_progress"
    assert gantt_bars(page) == 3
    expect(page.locator('#wo-gantt .wo-bar[data-subtask="enrich_logs"]')).to_have_attribute("data-outcome", "running")
    expect(page.locator('#wo-agents .wo-card[data-agent="investigator_beta"]')).to_have_attribute(
        "data-status", "working"
    )
    expect(page.locator("#wo-rewards svg")).to_have_attribute("data-steps", "2")
    expect(page.locator("#wo-history")).to_contain_text(
        "dispatch enrich_logs→investigator_beta, check_dashboards→monitor"
    )
    page.get_by_role("tab", name="Event log").click()
    expect(page.locator("#wo-events")).to_contain_text("delegated")
    screenshot(page, "02-hard-after-two-steps.png")


def test_a_policy_finishes_the_episode_and_the_grade_appears(
    context: BrowserContext, web_server: RunningServer
) -> None:
    page = open_dashboard(context, web_server)
    reset_task(page, "hard — Production Incident Response", "hard")
    choose(page, "wo-policy", "heuristic")
    page.locator("#wo-policy-step").click()
    wait_for_step(page, 1)
    page.locator("#wo-play").click()
    page.wait_for_selector("#wo-score")
    expect(page.locator("#wo-status .wo-status")).to_have_attribute("data-done", "true")
    shown = float(page.locator("#wo-score").inner_text())
    graded = httpx.post(f"{web_server.url}/grader", json={"episode_id": episode_id(page)}, trust_env=False).json()
    assert shown == pytest.approx(graded["score"], abs=5e-4)
    rows = page.locator("#wo-grade tr[data-dimension]")
    assert rows.count() == len(graded["breakdown"])
    met = page.locator('#wo-deadlines tr[data-state="met"]').count()
    assert met == graded["counts"]["deadlines_met"]
    if graded.get("normalized_score") is not None:
        expect(page.locator("#wo-normalized-score")).to_be_visible()
    expect(page.locator("#wo-hint")).to_contain_text("The episode is over.")
    screenshot(page, "03-hard-finished-with-grade.png")


def test_a_finished_episode_replays_by_its_id(context: BrowserContext, web_server: RunningServer) -> None:
    # Played over plain HTTP, as a curl user would, then watched in the browser.
    with httpx.Client(base_url=web_server.url, timeout=30.0, trust_env=False) as client:
        answer = client.post("/reset", json={"task_id": "medium", "seed": 4}).json()
        played, secret = answer["observation"]["episode_id"], answer["episode_secret"]
        policy = make_policy("heuristic", seed=4)
        steps = 0
        while not answer["done"]:
            answer = client.post(
                "/step", json={"episode_id": played, "action": policy.act(answer["observation"])}
            ).json()
            steps += 1
    page = open_dashboard(context, web_server)
    own = episode_id(page)
    status = page.locator("#wo-status .wo-status")
    page.locator("#wo-replay-id textarea, #wo-replay-id input").first.fill(played)
    # Without its secret, the page says why and shows nothing of that episode.
    page.locator("#wo-replay-load").click()
    expect(page.locator("#wo-notice")).to_contain_text("episode_secret")
    expect(status).to_have_attribute("data-mode", "live")
    expect(page.locator("#wo-episode-id")).to_have_text(own)
    page.locator("#wo-replay-secret input").fill(secret)
    page.locator("#wo-replay-load").click()
    expect(status).to_have_attribute("data-mode", "replay")
    expect(status).to_contain_text(f"step 0 of {steps}")
    expect(page.locator("#wo-notice")).to_contain_text("reproduces the stored event log exactly")
    assert gantt_bars(page) == 0
    page.locator("#wo-replay-forward").click()
    expect(status).to_contain_text(f"step 1 of {steps}")
    assert node_status(page, "checkout_code") == "completed"
    page.locator("#wo-replay-play").click()
    expect(status).to_contain_text(f"step {steps} of {steps}", timeout=UI_TIMEOUT_MS + steps * 1000)
    page.wait_for_selector("#wo-score")
    screenshot(page, "04-medium-replayed-from-http.png")
    # The form does not act on a replay: its buttons are off.
    expect(page.locator("#wo-step")).to_be_disabled()
    page.locator("#wo-replay-leave").click()
    expect(status).to_have_attribute("data-mode", "live")


def test_a_generated_task_is_picked_by_family_preset_and_seed(
    context: BrowserContext, web_server: RunningServer
) -> None:
    page = open_dashboard(context, web_server)
    choose(page, "wo-task", "arena (generated)")
    expect(page.locator("#wo-preset")).to_be_visible()
    choose(page, "wo-preset", "hard")
    page.locator("#wo-seed input").fill("11")
    page.locator("#wo-reset").click()
    status = page.locator("#wo-status .wo-status")
    expect(status).to_contain_text("task arena/hard")
    expect(status).to_contain_text("seed 11")
    expected = httpx.get(f"{web_server.url}/state", params={"episode_id": episode_id(page)}, trust_env=False).json()[
        "observation"
    ]["subtask_count"]
    assert page.locator("#wo-dag .wo-node").count() == expected
    page.locator("#wo-policy-step").click()
    wait_for_step(page, 1)
    assert gantt_bars(page) >= 1
    screenshot(page, "07-arena-hard.png")


def test_two_browsers_see_two_episodes(browser: Browser, web_server: RunningServer) -> None:
    first = browser.new_context(viewport={"width": 1400, "height": 1000})
    second = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        alice = open_dashboard(first, web_server)
        bob = open_dashboard(second, web_server)
        reset_task(alice, "easy — Feature Development Sprint", "easy")
        reset_task(bob, "expert — Life OS Daily Orchestration", "expert")
        assert episode_id(alice) != episode_id(bob)
        for step in (1, 2, 3):
            alice.locator("#wo-policy-step").click()
            wait_for_step(alice, step)
        bob.locator("#wo-step").click()
        wait_for_step(bob, 1)
        # Each page shows its own episode only, and the server agrees.
        expect(bob.locator("#wo-status .wo-status")).to_contain_text("task expert")
        assert node_status(alice, "technical_design") == "completed"
        assert bob.locator('#wo-dag .wo-node[data-subtask="technical_design"]').count() == 0
        with httpx.Client(base_url=web_server.url, trust_env=False) as client:
            assert client.get("/state", params={"episode_id": episode_id(alice)}).json()["step_count"] == 3
            assert client.get("/state", params={"episode_id": episode_id(bob)}).json()["step_count"] == 1
        # A reload is a new session: it does not take over the other browser's episode.
        bob.reload()
        bob.wait_for_selector("#wo-dag svg .wo-node")
        assert episode_id(bob) != episode_id(alice)
        screenshot(alice, "05-two-browsers-first.png")
        screenshot(bob, "05-two-browsers-second.png")
    finally:
        first.close()
        second.close()


def session_key(page: Page) -> str:
    return page.locator("#wo-session-key").get_attribute("data-key") or ""


def test_the_policy_step_route_refuses_bad_input_and_one_page_cannot_step_anothers(
    browser: Browser, web_server: RunningServer
) -> None:
    """POST /web/api/policy-step: every bad body gets a 4xx and steps nothing; a page's key steps that
    page's episode only, and no other string does."""
    first = browser.new_context(viewport={"width": 1400, "height": 1000})
    second = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        alice, bob = open_dashboard(first, web_server), open_dashboard(second, web_server)
        key, other = session_key(alice), session_key(bob)
        assert key and other and key != other
        route = f"{web_server.url}/web/api/policy-step"
        bad: list[dict[str, object]] = [
            {"content": b"not json"},
            {"content": b"\xff\xfe\x00"},
            {"content": b""},
            {"json": [key]},
            {"json": "key"},
            {"json": {}},
            {"json": {"key": 5}},
            {"json": {"key": ""}},
            {"json": {"key": None}},
            {"json": {"key": key + "x" * 60}},
            {"json": {"key": key, "policy": "nobody"}},
            {"json": {"key": key, "policy": 3}},
            {"json": {"key": key, "regions": "wo-main"}},
            {"json": {"key": key, "regions": ["wo-main", "wo-elsewhere"]}},
            {"json": {"key": key, "regions": [None]}},
            {"json": {"key": key[:-1]}},
            {"json": {"key": episode_id(alice)}},
        ]
        with httpx.Client(trust_env=False, timeout=30) as client:
            for request in bad:
                reply = client.post(route, **request)  # type: ignore[arg-type]
                assert 400 <= reply.status_code < 500, (request, reply.status_code, reply.text)
            assert 400 <= client.get(route).status_code < 500
            for page in (alice, bob):
                state = client.get(f"{web_server.url}/state", params={"episode_id": episode_id(page)}).json()
                assert state["step_count"] == 0
            answer = client.post(route, json={"key": key, "policy": "heuristic", "regions": ["wo-main"]}).json()
            assert 'data-step="1"' in answer["regions"]["wo-main"] and answer["refresh"] is True
            assert set(answer["regions"]) == {"wo-main"}
            state = client.get(f"{web_server.url}/state", params={"episode_id": episode_id(alice)}).json()
            assert state["step_count"] == 1
            assert (
                client.get(f"{web_server.url}/state", params={"episode_id": episode_id(bob)}).json()["step_count"] == 0
            )
        # The page goes on from there: its next step is the episode's second.
        alice.locator("#wo-policy-step").click()
        wait_for_step(alice, 2)
        bob.locator("#wo-policy-step").click()
        wait_for_step(bob, 1)
    finally:
        first.close()
        second.close()


REGION_TEXT_JS = """() => Object.fromEntries(['wo-status', 'wo-gauges', 'wo-main', 'wo-hint', 'wo-details',
  'wo-history', 'wo-events', 'wo-kind', 'wo-subtask'].map((id) => [id, document.getElementById(id)?.innerText]))"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_policy_step_through_the_route_updates_every_region_and_the_form(
    browser: Browser, web_server: RunningServer, scheme: str
) -> None:
    """The Policy step goes to the page's JSON route, not through Gradio; every region it drew through
    Gradio changes as before, the Event log drawn in a tab opened only afterwards, and the action form
    follows (through Gradio); the page's text reads in its theme."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = open_dashboard(ctx, web_server)
        reset_task(page, "hard — Production Incident Response", "hard")
        before = page.evaluate(REGION_TEXT_JS)
        pending = page.locator('#wo-dag .wo-node[data-status="pending"]')
        pending_before = pending.count()
        calls: list[str] = []
        page.on("request", lambda request: calls.append(request.url.split("/web/")[-1]))
        for step in (1, 2, 3):
            page.locator("#wo-policy-step").click()
            wait_for_step(page, step)
        expect(page.locator("#wo-status .wo-status")).to_contain_text("step 3")
        expect(page.locator("#wo-history tr")).to_have_count(4)
        page.wait_for_timeout(500)
        assert calls.count("api/policy-step") == 3
        after = page.evaluate(REGION_TEXT_JS)
        for region in ("wo-status", "wo-gauges", "wo-main", "wo-hint", "wo-details", "wo-history", "wo-kind"):
            assert after[region] != before[region], region
        assert pending.count() < pending_before
        page.get_by_role("tab", name="Event log").click()
        expect(page.locator("#wo-events")).to_contain_text("delegated")
        expect(page.locator("#wo-events")).not_to_contain_text("No events yet")
        measured = {selector: page.evaluate(CONTRASTS_JS, selector) for selector in THEMED_TEXT[:12]}
        screenshot(page, f"16-route-steps-{scheme}.png")
        for selector, found in measured.items():
            low = [item for item in found if item["ratio"] < 4.5]
            assert low == [], f"{selector}: {low[:3]}"
        # The form followed: its first offer is a legal action of the episode as it is now.
        page.locator("#wo-step").click()
        wait_for_step(page, 4)
        expect(page.locator("#wo-notice")).to_have_count(0)
        expect(page.locator("#wo-main .wo-errors")).to_have_count(0)
    finally:
        ctx.close()


def test_names_made_of_html_show_as_text(context: BrowserContext, hostile_server: RunningServer) -> None:
    dialogs: list[str] = []
    context.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page = open_dashboard(context, hostile_server)
    page.locator("#wo-step").click()
    wait_for_step(page, 1)
    page.locator("#wo-step").click()
    wait_for_step(page, 2)
    expect(page.locator("#wo-history")).to_contain_text("<b>bold</b>${7*7}{{value}}")
    page.get_by_role("tab", name="Event log").click()
    expect(page.locator("#wo-events")).to_contain_text("<script>window.__pwned=1</script>")
    expect(page.locator("#wo-dag")).to_contain_text("<script>window.__pw")
    expect(page.locator("#wo-agents")).to_contain_text('<img src=x onerror="window.__pwned=2">')
    expect(page.locator("#wo-deadlines")).to_contain_text("<b>bold</b>${7*7}{{value}}")
    screenshot(page, "06-html-names-as-text.png")
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    # No element was made from a name: the only <b>, <u> and <i> are the dashboard's own.
    for tag, text in (("b", "bold"), ("u", "under"), ("i", "title")):
        assert page.locator(f"{tag}:text-is('{text}')").count() == 0
    assert page.locator("img[src=x]").count() == 0
    assert "49" not in page.locator("#wo-deadlines").inner_text()


def test_the_upload_route_is_off(web_server: RunningServer) -> None:
    """The page has no file input, so Gradio's anonymous upload route (files written to disk) is refused."""
    for _ in range(3):
        reply = httpx.post(
            f"{web_server.url}/web/gradio_api/upload",
            files={"files": ("notes.txt", b"x" * 60_000, "text/plain")},
            timeout=30,
            trust_env=False,
        )
        assert reply.status_code == 403
        assert reply.json()["error"] == "uploads_disabled"


# --------------------------------------------------------------------------- readability, themes, live views

# The WCAG contrast ratio of every element's text colour (an SVG text's fill)
# against the background it is drawn on: the first ancestor with an opaque
# background colour.
CONTRASTS_JS = """
(selector) => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const ground = (el) => {
    for (let e = el; e; e = e.parentElement) {
      if (e instanceof SVGElement) continue;
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  return [...document.querySelectorAll(selector)].filter((el) => el.getClientRects().length).map((el) => {
    const style = getComputedStyle(el);
    const ink = parse(el instanceof SVGElement ? style.fill : style.color);
    const back = ground(el);
    const [hi, lo] = [lum(ink), lum(back)].sort((a, b) => b - a);
    return {text: (el.textContent || '').slice(0, 30), ratio: (hi + 0.05) / (lo + 0.05)};
  });
}
"""

# Every text of the DAG and the Gantt, with the size it is drawn at on the screen.
TEXT_SIZES_JS = """
() => [...document.querySelectorAll('#wo-dag svg text, #wo-gantt svg text, #wo-gantt .wo-gantt-name')].map((t) => {
  const svg = t.ownerSVGElement;
  const scale = svg ? svg.getBoundingClientRect().width / svg.viewBox.baseVal.width : 1;
  return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * scale};
})
"""

THEMED_TEXT = (
    ".wo-hint",
    ".wo-badge",
    ".wo-pill",
    ".wo-chip",
    ".wo-gantt-name",
    "#wo-gantt svg text.wo-tm",
    "#wo-gantt .wo-now text",
    ".wo-status",
    ".wo-description",
    ".wo-outcome",
    ".wo-legend .wo-key",
    ".wo-gauge-label span",
    ".wo-card-line",
    "#wo-deadlines td",
    "#wo-rewards svg text",
)


def finish_with_policy(page: Page) -> None:
    page.locator("#wo-play").click()
    page.wait_for_selector("#wo-summary-score", timeout=UI_TIMEOUT_MS * 4)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_reads_in_both_themes(browser: Browser, web_server: RunningServer, scheme: str) -> None:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = open_dashboard(ctx, web_server)
        reset_task(page, "hard — Production Incident Response", "hard")
        for step in (1, 2, 3):
            page.locator("#wo-policy-step").click()
            wait_for_step(page, step)
        assert page.evaluate("document.body.classList.contains('dark')") == (scheme == "dark")
        measured = {selector: page.evaluate(CONTRASTS_JS, selector) for selector in THEMED_TEXT}
        # And once finished: the summary's score line and the grade's help texts.
        finish_with_policy(page)
        for selector in (".wo-outcome", ".wo-help", ".wo-grade", ".wo-hint"):
            measured[selector + " (finished)"] = page.evaluate(CONTRASTS_JS, selector)
        screenshot(page, f"08-hard-{scheme}.png")
        for selector, found in measured.items():
            assert found, f"nothing matched {selector}"
            low = [item for item in found if item["ratio"] < 4.5]
            assert low == [], f"{selector}: {low[:3]}"
    finally:
        ctx.close()


FIRST_PICTURE_TEXT = (
    "#wo-first .wo-title",
    "#wo-first .wo-intro",
    "#wo-first .wo-gauge-label span",
    "#wo-first .wo-legend .wo-key",
    "#wo-first .wo-gantt-name",
    "#wo-first #wo-gantt svg text.wo-tm",
)


@pytest.mark.parametrize(("scheme", "width"), [("light", 1440), ("dark", 1440), ("light", 390)])
def test_the_first_picture_is_in_the_page_itself_and_reads_in_both_themes(
    browser: Browser, web_server: RunningServer, scheme: str, width: int
) -> None:
    """The opening DAG is painted from the page's HTML, before any of Gradio's scripts (all refused here)
    has run, in the page's theme; once Gradio has drawn the page, only its own DAG is left."""
    ctx = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = ctx.new_page()
        page.route("**/assets/*.js", lambda route: route.abort())
        page.goto(f"{web_server.url}/web/")
        expect(page.locator("#wo-dag svg .wo-node").first).to_be_visible()
        expect(page.locator("#wo-first #wo-dag svg .wo-node")).to_have_count(6)
        expect(page.locator("#wo-first #wo-gantt svg")).to_be_visible()
        assert page.evaluate("document.querySelector('#wo-first').classList.contains('dark')") == (scheme == "dark")
        screenshot(page, f"00-first-picture-{scheme}-{width}.png")
        for selector in FIRST_PICTURE_TEXT:
            found = page.evaluate(CONTRASTS_JS, selector)
            assert found, f"nothing matched {selector}"
            low = [item for item in found if item["ratio"] < 4.5]
            assert low == [], f"{selector}: {low[:3]}"
        page.close()
        page = open_dashboard(ctx, web_server)
        expect(page.locator("#wo-first")).to_have_count(0)
        expect(page.locator("#wo-dag")).to_have_count(1)
        expect(page.locator("#wo-gantt")).to_have_count(1)
    finally:
        ctx.close()


@pytest.mark.parametrize("size", [(1440, 900), (390, 844)])
def test_the_score_of_a_finished_episode_is_in_the_first_viewport(
    browser: Browser, web_server: RunningServer, size: tuple[int, int]
) -> None:
    width, height = size
    ctx = browser.new_context(viewport={"width": width, "height": height})
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = open_dashboard(ctx, web_server)
        reset_task(page, "hard — Production Incident Response", "hard")
        finish_with_policy(page)
        page.evaluate("window.scrollTo(0, 0)")
        graded = httpx.post(f"{web_server.url}/grader", json={"episode_id": episode_id(page)}, trust_env=False).json()
        score = page.locator("#wo-summary-score")
        assert float(score.inner_text()) == pytest.approx(graded["score"], abs=5e-4)
        lost = page.locator("#wo-summary-grade")
        for element in (score, lost, page.locator("#wo-description")):
            box = element.bounding_box()
            assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, box
        # In words, the dimension that lost the most points, and what it measures.
        worst = max(graded["breakdown"], key=lambda name: graded["weights"][name] * (1 - graded["breakdown"][name]))
        expect(lost.locator(".wo-lost").first).to_have_attribute("data-dimension", worst)
        # Nothing left to press.
        expect(page.locator("#wo-step")).to_be_disabled()
        expect(page.locator("#wo-policy-step")).to_be_disabled()
        page.screenshot(path=str(SCREENSHOTS / f"09-hard-finished-first-viewport-{width}.png"))
    finally:
        ctx.close()


@pytest.mark.parametrize("size", [(1440, 900), (390, 844)])
def test_the_big_arena_dag_and_gantt_never_draw_text_below_11_px(
    browser: Browser, web_server: RunningServer, size: tuple[int, int]
) -> None:
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = open_dashboard(ctx, web_server)
        choose(page, "wo-task", "arena (generated)")
        choose(page, "wo-preset", "hard")
        page.locator("#wo-reset").click()
        page.wait_for_function("document.querySelectorAll('#wo-dag .wo-node').length > 20")
        for step in (1, 2, 3, 4):
            page.locator("#wo-policy-step").click()
            wait_for_step(page, step)
        sizes = page.evaluate(TEXT_SIZES_JS)
        assert len(sizes) > 50
        small = [item for item in sizes if item["px"] < 10.95]
        assert small == [], small[:5]
        # The Gantt's names stay put while its chart scrolls sideways.
        scroller = page.locator("#wo-gantt .wo-gantt-scroll")
        before = page.locator("#wo-gantt .wo-gantt-name").first.bounding_box()
        scroller.evaluate("(el) => { el.scrollLeft = 200; }")
        after = page.locator("#wo-gantt .wo-gantt-name").first.bounding_box()
        assert before is not None and after is not None and abs(before["x"] - after["x"]) < 1
        # Zoom makes the DAG bigger, never smaller.
        dag = page.locator("#wo-dag svg")
        natural = dag.bounding_box()
        page.locator("#wo-zoom label", has_text="150%").click()
        page.wait_for_function(
            "w => document.querySelector('#wo-dag svg').getBoundingClientRect().width > w * 1.4",
            arg=natural["width"] if natural else 0,
        )
        screenshot(page, f"10-arena-hard-{size[0]}.png")
    finally:
        ctx.close()


def load_factor() -> float:
    """How much busier than one runnable process per core the machine is (at least 1).

    Time limits meant for a quiet machine are stretched by it, so that a
    shared, loaded machine does not fail a test for being slow.
    """
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def test_an_episode_played_over_http_is_watched_live(context: BrowserContext, web_server: RunningServer) -> None:
    with httpx.Client(base_url=web_server.url, timeout=30.0, trust_env=False) as client:
        answer = client.post("/reset", json={"task_id": "hard", "seed": 3}).json()
        played, secret = answer["observation"]["episode_id"], answer["episode_secret"]
        policy = make_policy("heuristic", seed=3)
        # A link without the secret opens nothing of the episode, and says why.
        page = context.new_page()
        page.goto(f"{web_server.url}/web/?episode={played}")
        page.wait_for_selector("#wo-dag svg .wo-node")
        status = page.locator("#wo-status .wo-status")
        expect(page.locator("#wo-notice")).to_contain_text("episode_secret")
        expect(status).to_have_attribute("data-mode", "live")
        assert episode_id(page) != played
        page.close()
        # The shareable link of a view carries the secret in its fragment, and opens it.
        page = context.new_page()
        page.goto(f"{web_server.url}/web/?episode={played}#secret={secret}")
        page.wait_for_selector("#wo-dag svg .wo-node")
        status = page.locator("#wo-status .wo-status")
        expect(status).to_have_attribute("data-mode", "watch")
        expect(page.locator("#wo-episode-id")).to_have_text(played)
        steps = 0
        while not answer["done"] and steps < 6:
            answer = client.post(
                "/step", json={"episode_id": played, "action": policy.act(answer["observation"])}
            ).json()
            steps += 1
            # The page shows every new step within 2 s (on a quiet machine).
            within = 2000 * load_factor()
            page.wait_for_selector(f'#wo-dag svg[data-step="{steps}"]', timeout=within)
            # The step history too: one row per step.
            history = page.locator("#wo-history-table")
            expect(history).to_have_attribute("data-rows", str(steps), timeout=within)
        screenshot(page, "11-hard-watched-live.png")
        expect(page.locator("#wo-step")).to_be_disabled()
        while not answer["done"]:
            answer = client.post(
                "/step", json={"episode_id": played, "action": policy.act(answer["observation"])}
            ).json()
        page.wait_for_selector("#wo-summary-score", timeout=5000)
        page.locator("#wo-replay-leave").click()
        expect(status).to_have_attribute("data-mode", "live")


def test_two_episodes_are_compared_on_one_time_axis(context: BrowserContext, web_server: RunningServer) -> None:
    with httpx.Client(base_url=web_server.url, timeout=30.0, trust_env=False) as client:
        answer = client.post("/reset", json={"task_id": "medium", "seed": 2}).json()
        played, secret = answer["observation"]["episode_id"], answer["episode_secret"]
        policy = make_policy("greedy", seed=2)
        while not answer["done"]:
            answer = client.post(
                "/step", json={"episode_id": played, "action": policy.act(answer["observation"])}
            ).json()
    page = open_dashboard(context, web_server)
    page.locator("#wo-replay-secret input").fill(secret)
    page.get_by_role("tab", name="Compare two episodes").click()
    page.locator("#wo-compare-first textarea, #wo-compare-first input").first.fill(played)
    page.locator("#wo-compare-second textarea, #wo-compare-second input").first.fill("heuristic")
    page.locator("#wo-compare").click()
    result = page.locator("#wo-compare-result")
    expect(result).to_be_visible()
    charts = result.locator("svg.wo-gantt")
    expect(charts).to_have_count(2)
    assert charts.nth(0).get_attribute("data-horizon") == charts.nth(1).get_attribute("data-horizon")
    first, second = (charts.nth(i).bounding_box() for i in (0, 1))
    assert first and second and abs(first["x"] - second["x"]) < 1 and abs(first["width"] - second["width"]) < 1
    expect(result.locator("#wo-compare-score-0")).to_have_text(f"{answer['observation']['grade']['score']:.3f}")
    expect(result.locator("#wo-divergence")).to_be_visible()
    screenshot(page, "12-medium-compared-with-heuristic.png")


def test_the_exported_episode_replays_to_the_same_grade(context: BrowserContext, web_server: RunningServer) -> None:
    page = open_dashboard(context, web_server)
    reset_task(page, "expert — Life OS Daily Orchestration", "expert")
    finish_with_policy(page)
    with page.expect_download() as download:
        page.locator("#wo-export").click()
    document = json.loads(Path(download.value.path()).read_text())
    assert document["episode_id"] == episode_id(page) and document["replay_verified"]
    assert len(document["observations"]) == len(document["actions"]) + 1
    with httpx.Client(base_url=web_server.url, timeout=30.0, trust_env=False) as client:
        answer = client.post("/reset", json=document["reset"]).json()
        again = answer["observation"]["episode_id"]
        for action in document["actions"]:
            answer = client.post("/step", json={"episode_id": again, "action": action}).json()
        assert answer["done"]
        assert client.post("/grader", json={"episode_id": again}).json()["score"] == document["grade"]["score"]
    # The link to the finished episode opens its replay.
    link = page.locator("#wo-share-link").get_attribute("href")
    other = context.new_page()
    other.goto(f"{web_server.url}/web/{link}")
    other.wait_for_selector("#wo-dag svg .wo-node")
    expect(other.locator("#wo-status .wo-status")).to_have_attribute("data-mode", "replay")
    # The download link carries the episode's secret; without it the route refuses.
    refused = httpx.get(f"{web_server.url}/web/export/{document['episode_id']}.json", timeout=30, trust_env=False)
    assert refused.status_code == 403


def test_the_action_buttons_wait_for_the_load_event(context: BrowserContext, web_server: RunningServer) -> None:
    """The page arrives with its opening pictures drawn, but its episode exists only once the load event
    has answered: until then the action buttons are inactive, and a click as early as possible does nothing
    (it used to step no episode and say "No episode yet")."""
    held: list[Route] = []

    def hold_the_load(route: Route) -> None:
        # The load event is the page's first call; every later one goes through.
        if held:
            route.continue_()
        else:
            held.append(route)

    page = context.new_page()
    page.route("**/gradio_api/run/predict", hold_the_load)
    page.goto(f"{web_server.url}/web/")
    page.wait_for_selector("#wo-dag svg .wo-node")
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert held, "the page never called its load event"
    for button in ("#wo-step", "#wo-policy-step", "#wo-play"):
        expect(page.locator(button)).to_be_disabled(timeout=2000)
        page.locator(button).click(force=True)
    page.wait_for_timeout(300)
    held[0].continue_()
    page.wait_for_selector("#wo-episode-id")
    expect(page.locator("#wo-step")).to_be_enabled()
    expect(page.locator("#wo-notice")).to_have_count(0)
    expect(page.locator("#wo-status .wo-status")).to_contain_text("step 0")
    page.locator("#wo-policy-step").click()
    wait_for_step(page, 1)
    page.unroute("**/gradio_api/run/predict")


CANVAS_TEXT = (
    "#wo-dag svg text.wo-tm",
    "#wo-dag svg text.wo-t",
    ".wo-canvas-dsl",
    "#wo-canvas-legend .wo-key",
    "#wo-problem",
    "#wo-execution .wo-card-line",
    "#wo-operators .wo-card-line",
    "#wo-canvas-rules td",
    ".wo-status",
    ".wo-gauge-label span",
)


def canvas_step(page: Page, kind: str, edit: str | None = None) -> None:
    """One canvas action through the form: its kind, then one of the edits offered for it."""
    step = int(page.locator("#wo-dag svg.wo-canvas").get_attribute("data-step") or 0)
    page.locator("#wo-kind").get_by_text(kind, exact=True).click()
    if edit is not None:
        expect(page.locator("#wo-subtask")).to_be_visible()
        choose(page, "wo-subtask", edit)
    else:
        # The kind's answer first (no edit to choose: the edit field goes): a Step sent before it
        # would carry the previous kind's edit, which Gradio refuses as not among the new choices.
        expect(page.locator("#wo-subtask")).to_be_hidden()
    page.locator("#wo-step").click()
    wait_for_step(page, step + 1)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_canvas_is_built_through_the_form_and_reads_in_both_themes(
    browser: Browser, web_server: RunningServer, scheme: str
) -> None:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
    ctx.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = open_dashboard(ctx, web_server)
        choose(page, "wo-task", "canvas (generated)")
        choose(page, "wo-preset", "code")
        page.locator("#wo-reset").click()
        canvas = page.locator("#wo-dag svg.wo-canvas")
        expect(canvas).to_have_attribute("data-nodes", "0")
        expect(page.locator("#wo-status .wo-status")).to_contain_text("task canvas/code")
        # The form offers the canvas's actions, not a subtask and an agent.
        assert dropdown_options(page, "wo-subtask")[:2] == ["Plan", "Decompose"]
        expect(page.locator("#wo-agent")).to_be_hidden()
        canvas_step(page, "add", "Plan")
        canvas_step(page, "add", "[Programmer, Programmer, Programmer]")
        canvas_step(page, "add", "ScEnsemble")
        canvas_step(page, "add", "(Test -> Revise) * 2")
        canvas_step(page, "add", "Verify ? Revise : Format")
        expect(canvas).to_have_attribute("data-kinds", "operator,parallel,operator,loop,conditional")
        expect(page.locator("#wo-canvas-dsl")).to_have_text(
            "Plan -> [Programmer, Programmer, Programmer] -> ScEnsemble -> (Test -> Revise) * 2 -> "
            "Verify ? Revise : Format"
        )
        canvas_step(page, "set prompt", "node 1: Plan → prompt concise")
        canvas_step(page, "modify", "node 1: Plan{concise} → Decompose")
        canvas_step(page, "delete", "node 3: ScEnsemble")
        expect(canvas).to_have_attribute("data-kinds", "operator,parallel,loop,conditional")
        expect(page.locator("#wo-execution")).to_have_attribute("data-state", "none")
        canvas_step(page, "execute")
        expect(page.locator("#wo-execution")).to_have_attribute("data-state", "current")
        expect(page.locator("#wo-verdict")).not_to_be_empty()
        expect(canvas).to_have_attribute("data-state", "executed")
        # Labels never below 11 px.
        sizes = page.evaluate(TEXT_SIZES_JS)
        assert len(sizes) > 10 and [item for item in sizes if item["px"] < 10.95] == []
        assert page.evaluate("document.body.classList.contains('dark')") == (scheme == "dark")
        measured = {selector: page.evaluate(CONTRASTS_JS, selector) for selector in CANVAS_TEXT}
        screenshot(page, f"13-canvas-code-executed-{scheme}.png")
        # Finish with the last execution's answer: the grade and its breakdown.
        page.locator("#wo-kind").get_by_text("finish", exact=True).click()
        expect(page.locator("#wo-answer")).to_be_visible()
        expect(page.locator("#wo-subtask")).to_be_hidden()
        page.locator("#wo-step").click()
        page.wait_for_selector("#wo-summary-score")
        graded = httpx.post(f"{web_server.url}/grader", json={"episode_id": episode_id(page)}, trust_env=False).json()
        assert float(page.locator("#wo-score").inner_text()) == pytest.approx(graded["score"], abs=5e-4)
        for name in graded["breakdown"]:
            expect(page.locator(f'#wo-grade-card tr[data-dimension="{name}"] .wo-help')).not_to_be_empty()
        expect(page.locator("#wo-step")).to_be_disabled()
        for selector in (".wo-outcome", ".wo-help", ".wo-grade"):
            measured[selector + " (finished)"] = page.evaluate(CONTRASTS_JS, selector)
        screenshot(page, f"14-canvas-code-finished-{scheme}.png")
        for selector, found in measured.items():
            assert found, f"nothing matched {selector}"
            low = [item for item in found if item["ratio"] < 4.5]
            assert low == [], f"{selector}: {low[:3]}"
    finally:
        ctx.close()


def test_a_canvas_episode_is_watched_replayed_compared_and_exported(
    context: BrowserContext, web_server: RunningServer
) -> None:
    with httpx.Client(base_url=web_server.url, timeout=30.0, trust_env=False) as client:
        answer = client.post("/reset", json={"task_id": "canvas/math", "seed": 4}).json()
        played, secret = answer["observation"]["episode_id"], answer["episode_secret"]
        policy = make_policy("template", seed=4)
        page = context.new_page()
        page.goto(f"{web_server.url}/web/?episode={played}#secret={secret}")
        page.wait_for_selector("#wo-dag svg.wo-canvas")
        expect(page.locator("#wo-status .wo-status")).to_have_attribute("data-mode", "watch")
        steps = 0
        while not answer["done"]:
            answer = client.post(
                "/step", json={"episode_id": played, "action": policy.act(answer["observation"])}
            ).json()
            steps += 1
            page.wait_for_selector(f'#wo-dag svg.wo-canvas[data-step="{steps}"]', timeout=2000 * load_factor())
        page.wait_for_selector("#wo-summary-score")
        screenshot(page, "15-canvas-math-watched.png")
        score = client.post("/grader", json={"episode_id": played}).json()["score"]
        # Its replay, from the first step.
        page.locator("#wo-replay-id input, #wo-replay-id textarea").first.fill(played)
        page.locator("#wo-replay-load").click()
        expect(page.locator("#wo-status .wo-status")).to_have_attribute("data-mode", "replay")
        page.locator("#wo-replay-forward").click()
        wait_for_step(page, 1)
        expect(page.locator("#wo-dag svg.wo-canvas")).to_have_attribute("data-nodes", "1")
        # Compared with a built-in policy on the same task and seed: both canvases, both grades.
        page.get_by_role("tab", name="Compare two episodes").click()
        page.locator("#wo-compare-first textarea, #wo-compare-first input").first.fill(played)
        page.locator("#wo-compare-second textarea, #wo-compare-second input").first.fill("heuristic")
        page.locator("#wo-compare").click()
        result = page.locator("#wo-compare-result")
        expect(result.locator("svg.wo-canvas")).to_have_count(2)
        expect(result.locator("#wo-compare-score-0")).to_have_text(f"{score:.3f}")
        screenshot(page, "16-canvas-math-compared.png")
        # Exported, it replays to the same grade.
        document = client.get(f"/web/export/{played}.json", params={"secret": secret}).json()
        assert document["replay_verified"] and document["grade"]["score"] == score
        assert len(document["observations"]) == len(document["actions"]) + 1
