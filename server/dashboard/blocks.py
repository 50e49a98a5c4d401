"""The dashboard's Gradio Blocks: the page layout and its event handlers.

Each browser page has its own :class:`DashboardSession`, kept on the server
by Gradio's session hash (:class:`.session.DashboardSessions`), so two
browsers never share an episode. Every handler is ``async`` (see
:mod:`.session` for why) and ends by redrawing the page from one
:class:`Snapshot`: seven regions of markup (the summary bar, the gauges, the
notice with the DAG and the Gantt chart, the hint, the agents with the
deadlines, rewards and grade, the step history, the event log) and the action
form, each sent only when it changed. On a server that mounts the page with
its own app (``api``), the Policy step bypasses Gradio's event: the page's
script asks a JSON route for the regions that changed and sets them itself
(see :data:`POLICY_STEP_JS` and :func:`add_policy_step_route`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from workflow_orchestrator.server.environment import EpisodeStore

from . import canvas, views
from .first_picture import first_picture_html
from .session import (
    POLICY_NAMES,
    ActionMenu,
    DashboardController,
    DashboardSession,
    DashboardSessions,
    FormError,
    Snapshot,
    anywhere_label,
    anywhere_value,
    build_action,
    pair_label,
    pair_value,
    picture_key,
)

# Pause between two steps when a policy or a replay plays on its own: slow
# enough to watch the DAG change, fast enough to finish an episode in seconds.
PLAY_DELAY_S = 0.35
# How often a watched episode's change feed is read (a redraw happens only when it took a step).
WATCH_POLL_S = 0.5

# A shared link carries an episode's secret in its fragment (#secret=...), which the browser
# never sends to the server: the page reads it there and hands it to the load handler.
SECRET_FROM_LINK_JS = """(task, preset, secret) => {
  const found = new URLSearchParams(window.location.hash.slice(1)).get('secret');
  return [task, preset, found || secret || ''];
}"""

# Copies the address of the view shown (the summary bar's link) to the clipboard.
COPY_LINK_JS = """() => {
  const link = document.querySelector('#wo-share-link');
  if (link && navigator.clipboard) { navigator.clipboard.writeText(link.href); }
  return [];
}"""

# Styles for the markup of views.py. They travel inside the page (a <style> in
# an HTML block) so that they apply however the Blocks are mounted. Colours of
# everything drawn on the page's background are variables, set once for the
# light theme and once for the dark one (Gradio marks the dark theme with a
# ``dark`` class on the body); every text colour has a contrast of at least
# 4.5:1 on its background in both.
DASHBOARD_CSS = """
.gradio-container {
  --wo-ink: #1f2328; --wo-muted: #57606a; --wo-line: #d0d7de; --wo-grid: #eaeef2; --wo-alt: #f6f8fa;
  --wo-bg: #ffffff; --wo-track: #d8dee4; --wo-accent: #0969da; --wo-edge: #8c959f; --wo-edge-done: #57606a;
  --wo-critical: #bf3989; --wo-total: #8250df;
  --wo-hint-bg: #ddf4ff; --wo-hint-ink: #0a3069; --wo-hint-bar: #0969da;
  --wo-notice-bg: #fff8c5; --wo-notice-ink: #3b2300; --wo-notice-bar: #9a6700;
  --wo-error-bg: #ffebe9; --wo-error-ink: #82071e; --wo-error-bar: #cf222e;
  --wo-chip-bg: #ddf4ff; --wo-chip-ink: #0a3069;
  --wo-met: #1a7f37; --wo-missed: #cf222e; --wo-open: #9a6700; --wo-now: #0969da;
  --wo-hatch-bg: #eaeef2; --wo-hatch-line: #8c959f;
}
.dark .gradio-container {
  --wo-ink: #e6edf3; --wo-muted: #9da7b3; --wo-line: #3d444d; --wo-grid: #262c36; --wo-alt: #161b22;
  --wo-bg: #0d1117; --wo-track: #30363d; --wo-accent: #58a6ff; --wo-edge: #6e7681; --wo-edge-done: #adbac7;
  --wo-critical: #f778ba; --wo-total: #bc8cff;
  --wo-hint-bg: #0c2d6b; --wo-hint-ink: #dbedff; --wo-hint-bar: #58a6ff;
  --wo-notice-bg: #3b2e00; --wo-notice-ink: #f8e3a1; --wo-notice-bar: #d29922;
  --wo-error-bg: #4c0b10; --wo-error-ink: #ffdcd7; --wo-error-bar: #f85149;
  --wo-chip-bg: #0c2d6b; --wo-chip-ink: #cae8ff;
  --wo-met: #3fb950; --wo-missed: #ff7b72; --wo-open: #d29922; --wo-now: #58a6ff;
  --wo-hatch-bg: #21262d; --wo-hatch-line: #6e7681;
}
.wo-muted { color: var(--wo-muted); font-size: 13px; }
.wo-summary { color: var(--wo-ink); border: 1px solid var(--wo-line); border-radius: 8px; padding: 6px 10px;
  display: grid; gap: 3px; }
.wo-status { font-size: 14px; }
.wo-status code { font-size: 13px; }
.wo-description { color: var(--wo-muted); font-size: 13px; }
.wo-outcome { font-size: 14px; }
.wo-lost { white-space: normal; }
.wo-links { display: flex; gap: 14px; flex-wrap: wrap; font-size: 13px; }
.wo-links a { color: var(--wo-accent); }
.gradio-container .wo-badge { color: #fff; border-radius: 10px; padding: 1px 8px; font-size: 12px; font-weight: 700; }
.wo-badge-live { background: #1a7f37; } .wo-badge-replay { background: #8250df; }
.wo-badge-watch { background: #0969da; } .wo-badge-empty { background: #57606a; }
.wo-gauges { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 10px; }
.wo-gauge-label { display: flex; justify-content: space-between; font-size: 13px; font-weight: 600;
  color: var(--wo-ink); }
.wo-gauge-label span { font-weight: 400; color: var(--wo-muted); }
.wo-gauge-track { background: var(--wo-track); border-radius: 4px; height: 9px; overflow: hidden; margin-top: 3px; }
.wo-gauge-fill { height: 100%; border-radius: 4px; }
.wo-fill-accent { background: var(--wo-accent); }
.wo-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.wo-card { border: 1px solid var(--wo-line); border-radius: 8px; padding: 8px 10px; font-size: 13px;
  color: var(--wo-ink); }
.wo-card-head { display: flex; justify-content: space-between; align-items: flex-start; gap: 6px; margin-bottom: 4px; }
.wo-card-head b { overflow-wrap: anywhere; }
.wo-card-line { margin: 2px 0; }
.gradio-container .wo-pill { color: #fff; border-radius: 10px; padding: 0 8px; font-size: 12px; }
.wo-chips { margin-top: 4px; }
.wo-chip { display: inline-block; background: var(--wo-chip-bg); color: var(--wo-chip-ink); border-radius: 10px;
  padding: 0 7px; margin: 2px 3px 0 0; font-size: 11px; }
.wo-table { border-collapse: collapse; width: 100%; font-size: 13px; color: var(--wo-ink); }
.wo-table th, .wo-table td { border-bottom: 1px solid var(--wo-line); padding: 3px 6px; text-align: left;
  vertical-align: top; }
.wo-help { color: var(--wo-muted); font-size: 12px; max-width: 46em; }
.wo-hint { background: var(--wo-hint-bg); color: var(--wo-hint-ink); border-left: 4px solid var(--wo-hint-bar);
  padding: 6px 10px; font-size: 14px; overflow-wrap: anywhere; }
.wo-notice { background: var(--wo-notice-bg); color: var(--wo-notice-ink); border-left: 4px solid var(--wo-notice-bar);
  padding: 6px 10px; font-size: 14px; margin-bottom: 6px; }
.wo-errors { background: var(--wo-error-bg); color: var(--wo-error-ink); border-left: 4px solid var(--wo-error-bar);
  padding: 6px 10px; font-size: 13px; margin-top: 6px; }
.wo-errors ul { margin: 2px 0 0 16px; padding: 0; }
.wo-reward-line { font-size: 13px; margin-top: 6px; color: var(--wo-ink); }
.wo-grade { font-size: 14px; color: var(--wo-ink); }
.wo-score { font-size: 22px; } .wo-score-part { font-size: 14px; margin: 2px 0; }
.wo-dl-met { color: var(--wo-met); } .wo-dl-missed { color: var(--wo-missed); } .wo-dl-open { color: var(--wo-open); }
.wo-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--wo-ink); margin: 2px 0 6px; }
.wo-key { display: inline-flex; align-items: center; gap: 5px; }
.wo-swatch { display: inline-block; width: 14px; height: 12px; border-radius: 3px; }
.wo-swatch-critical { background: none; border: 3px solid var(--wo-critical); height: 6px; }
.wo-swatch-edge { background: none; border-top: 2px solid var(--wo-edge-done); height: 0; border-radius: 0; }
.wo-swatch-planned { background: none; border: 2px dashed #d4a72c; width: 12px; height: 8px; }
.wo-swatch-offline { background: repeating-linear-gradient(45deg, var(--wo-hatch-line) 0 2px, var(--wo-hatch-bg) 2px 5px); }
.wo-swatch-deadline { background: none; border-left: 2px dashed var(--wo-missed); width: 2px; border-radius: 0; }
.wo-swatch-now { background: var(--wo-now); width: 3px; border-radius: 0; }
.gradio-container .wo-tag { font-size: 11px; font-weight: 700; color: #9a6700; background: #ffffff; border: 1px solid #9a6700; border-radius: 8px;
  padding: 0 5px; }
.gradio-container .wo-count { font-size: 11px; color: #ffffff; background: #82071e; border-radius: 8px; padding: 0 5px; }
.wo-dag-scroll, .wo-gantt-scroll, .wo-hscroll { overflow: auto; scrollbar-width: auto;
  scrollbar-color: var(--wo-edge) transparent; }
.wo-dag-scroll { max-height: 75vh; border: 1px solid var(--wo-line); border-radius: 8px; }
.wo-dag-scroll::-webkit-scrollbar, .wo-gantt-scroll::-webkit-scrollbar { height: 12px; width: 12px; }
.wo-dag-scroll::-webkit-scrollbar-thumb, .wo-gantt-scroll::-webkit-scrollbar-thumb { background: var(--wo-edge);
  border-radius: 6px; }
.wo-dag { display: block; width: var(--wo-w); height: var(--wo-h); max-width: none; }
body:has(#wo-zoom input[value="150%"]:checked) .wo-dag { width: calc(var(--wo-w) * 1.5); height: calc(var(--wo-h) * 1.5); }
body:has(#wo-zoom input[value="200%"]:checked) .wo-dag { width: calc(var(--wo-w) * 2); height: calc(var(--wo-h) * 2); }
.wo-arrow-head { fill: var(--wo-edge-done); }
.wo-edge { stroke: var(--wo-edge); stroke-width: 1.6; }
.wo-edge-done { stroke: var(--wo-edge-done); stroke-width: 1.6; }
.wo-edge-critical { stroke: var(--wo-critical); stroke-width: 3; }
.wo-critical-halo { stroke: var(--wo-critical); stroke-width: 3; }
.wo-gantt-grid { display: flex; width: max-content; min-width: 100%; }
.wo-gantt-names { position: sticky; left: 0; z-index: 1; background: var(--background-fill-primary, var(--wo-bg));
  flex: none;
  border-right: 1px solid var(--wo-line); }
.wo-gantt-name { font-size: 12px; color: var(--wo-ink); padding: 0 8px; text-align: right; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.wo-gantt-name.wo-alt, .wo-row-alt { background: var(--wo-alt); fill: var(--wo-alt); }
.wo-gantt { display: block; flex: none; }
.wo-grid { stroke: var(--wo-grid); }
.wo-axis { stroke: var(--wo-edge); }
.wo-tm { fill: var(--wo-muted); } .wo-t { fill: var(--wo-ink); }
.wo-total { fill: var(--wo-total); } .wo-total-line { stroke: var(--wo-total); }
.wo-hatch-bg { fill: var(--wo-hatch-bg); } .wo-hatch-line { stroke: var(--wo-hatch-line); }
.wo-deadline-line.wo-dl-met { stroke: var(--wo-met); fill: var(--wo-met); }
.wo-deadline-line.wo-dl-missed { stroke: var(--wo-missed); fill: var(--wo-missed); }
.wo-deadline-line.wo-dl-open { stroke: var(--wo-open); fill: var(--wo-open); }
.wo-deadline-line text { stroke: none; }
.wo-now { stroke: var(--wo-now); fill: var(--wo-now); } .wo-now text { stroke: none; }
.wo-scroll { max-height: 320px; overflow-y: auto; }
.wo-pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 0 16px; }
.wo-pair > * { min-width: 0; }
.wo-rows { max-height: 360px; }
.wo-title { color: var(--wo-ink); margin: 4px 0; font-size: 22px; }
.wo-intro { color: var(--wo-ink); margin: 0 0 4px; font-size: 14px; }
.wo-heading { color: var(--wo-ink); margin: 10px 0 4px; font-size: 17px; }
.wo-compare-side h4 { margin: 10px 0 4px; color: var(--wo-ink); }
.wo-compare code { font-size: 13px; }
.wo-terminal-box { fill: var(--wo-alt); stroke: var(--wo-edge); stroke-width: 1.5; }
.wo-joint { fill: var(--wo-edge-done); }
.wo-loop-frame { stroke: var(--wo-edge-done); stroke-width: 1.5; }
.wo-canvas-dsl { font-size: 13px; color: var(--wo-ink); margin: 4px 0; overflow-wrap: anywhere; }
.wo-exec-outputs { margin: 4px 0 0 18px; padding: 0; }
#wo-task input { padding-right: 30px; text-overflow: ellipsis; }
@media (max-width: 600px) { .wo-gantt-names { width: 104px !important; } .wo-gantt-name { font-size: 12px; } }
"""

DEFAULT_TITLE = "workflow_orchestrator dashboard"
INTRO = (
    '<p class="wo-intro">Pick a task and press <b>Reset</b>; act with the form, or let a built-in policy '
    "play. Give any episode's id to watch it live or replay it.</p>"
)


# The element ids of the page's regions, in page_outputs order (see page_regions).
REGION_IDS = ("wo-status", "wo-gauges", "wo-main", "wo-hint", "wo-details", "wo-history", "wo-events")
# The longest session key the JSON routes read (DashboardSession.key is 24 characters).
MAX_KEY_CHARS = 64


def region_js(element_id: str) -> str:
    """A region's ``js_on_load``: it hands its props to the page's script, which sets ``value`` to redraw it
    (Gradio's own state then holds what the region shows, as after an event's output)."""
    return f"(window.woRegions = window.woRegions || {{}})[{element_id!r}] = props;"


# The page's Policy step, when the page has a session key (the summary bar carries it when the
# server has the JSON route, see add_policy_step_route): the click is taken before Gradio's own
# handler sees it, the regions that changed are set from the route's answer, and the action form
# is refreshed through Gradio (the hidden #wo-sync) only when it offers something else. Steps run
# one after another, in the order of the clicks.
POLICY_STEP_JS = """if (!window.woPolicyStep) {
  window.woPolicyStep = true;
  let queue = Promise.resolve();
  const step = (key, policy, button) => fetch('api/policy-step', {method: 'POST',
      headers: {'content-type': 'application/json'}, body: JSON.stringify({key: key, policy: policy, regions: Object.keys(window.woRegions || {})})})
    .then((reply) => {
      if (reply.status === 404) {
        // The server let this page's session go: Gradio's own handler starts it afresh.
        document.querySelectorAll('#wo-session-key').forEach((holder) => holder.remove());
        button.click();
      }
      return reply.ok ? reply.json() : null;
    })
    .then((answer) => {
      if (!answer) { return; }
      const regions = window.woRegions || {};
      for (const [id, html] of Object.entries(answer.regions)) { if (regions[id]) { regions[id].value = html; } }
      const sync = document.querySelector('#wo-sync');
      if (answer.refresh && sync) { sync.click(); }
    })
    .catch(() => {});
  document.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('#wo-policy-step') : null;
    const holder = document.querySelector('#wo-session-key');
    if (!button || button.disabled || !holder) { return; }
    event.stopPropagation();
    const chosen = document.querySelector('#wo-policy input');
    const policy = chosen ? chosen.value : '';
    queue = queue.then(() => step(holder.dataset.key, policy, button));
  }, true);
}"""


def add_policy_step_route(
    app: FastAPI,
    path: str,
    sessions: DashboardSessions,
    answer: Callable[[DashboardSession, str | None, frozenset[str]], dict[str, Any]],
) -> None:
    """``POST path`` with ``{"key": a page's session key, "policy": a built-in policy's name or "",
    "regions": the ids of the regions the page can draw now}``.

    One Policy step of that page's episode, answered as ``answer`` makes it
    (the regions that changed, by element id, and whether the page should
    refresh the rest through Gradio). Bad input gets a 4xx and changes
    nothing: a body that is not a JSON object (400), a key that is not a
    string of at most ``MAX_KEY_CHARS``, a policy that is not a built-in
    one's name or regions that are not a list of region ids (400), a key
    that names no open page (404). A page's key is a random string that only that page is
    given, so one browser cannot step another's episode.
    """

    def refuse(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status)

    async def policy_step(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return refuse(400, "the body is not JSON")
        if not isinstance(body, dict):
            return refuse(400, 'expected {"key": ..., "policy": ...}')
        key, policy, shown = body.get("key"), body.get("policy", ""), body.get("regions", [])
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
            return refuse(400, "key: the page's session key, a string")
        if not isinstance(policy, str) or (policy and policy not in POLICY_NAMES):
            return refuse(400, f"policy: one of {', '.join(POLICY_NAMES)}, or empty for the page's own")
        if not isinstance(shown, list) or not all(isinstance(name, str) and name in REGION_IDS for name in shown):
            return refuse(400, f"regions: the ids of the regions the page can draw, of {', '.join(REGION_IDS)}")
        session = sessions.by_key(key)
        if session is None:
            return refuse(404, "no open page has this key (it was closed, or the server let it go)")
        return JSONResponse(answer(session, policy or None, frozenset(shown)))

    app.add_api_route(path, policy_step, methods=["POST"], include_in_schema=False)


def first_picture(store: EpisodeStore, title: str = DEFAULT_TITLE) -> str:
    """The page's opening view as static markup (see :mod:`.first_picture`): the title, the gauges and the
    main column (the DAG and the Gantt chart) of the first task at step 0, as the page's regions start."""
    controller = DashboardController(store)
    first = controller.options[0]
    opening = opening_regions(controller, first.key, first.presets[0] if first.presets else None)
    return first_picture_html(title, INTRO, DASHBOARD_CSS, [opening[1], opening[2]])


def build_dashboard(
    store: EpisodeStore,
    title: str = DEFAULT_TITLE,
    token: str | None = None,
    api: FastAPI | None = None,
    api_path: str = "/web/api",
) -> gr.Blocks:
    """The dashboard as Gradio Blocks, playing episodes in ``store``.

    ``token`` is the server's bearer token, if it has one: given in the page,
    it opens any episode (see :class:`.session.DashboardController`).
    With ``api``, the app the page is mounted on, the page's Policy step goes
    through a JSON route of its own on that app (``POST {api_path}/policy-step``,
    see :func:`add_policy_step_route`) rather than through Gradio.
    """
    controller = DashboardController(store, token)
    replay_lock = asyncio.Lock()
    first = controller.options[0]
    sessions = DashboardSessions()
    first_pictures = opening_regions(controller, first.key, first.presets[0] if first.presets else None)

    with gr.Blocks(title=title, analytics_enabled=False, fill_width=True) as blocks:
        gr.HTML(
            f'<style>{DASHBOARD_CSS}</style><h2 class="wo-title">{views.esc(title)}</h2>{INTRO}',
            padding=False,
            js_on_load=POLICY_STEP_JS,
        )
        # The summary bar: task, step, time, score and where points went, budget and deadlines at risk.
        status_view = gr.HTML(first_pictures[0], elem_id="wo-status", js_on_load=region_js("wo-status"))
        with gr.Row(equal_height=False):
            task_input = gr.Dropdown(
                choices=[(o.label, o.key) for o in controller.options],
                value=first.key,
                label="Task",
                elem_id="wo-task",
                scale=3,
                min_width=200,
            )
            preset_input = gr.Dropdown(
                choices=list(first.presets),
                value=first.presets[0] if first.presets else None,
                label="Preset",
                visible=first.generated,
                elem_id="wo-preset",
                scale=1,
                min_width=120,
            )
            seed_input = gr.Number(
                value=first.canonical_seed,
                precision=0,
                minimum=0,
                label="Seed",
                elem_id="wo-seed",
                scale=1,
                min_width=100,
            )
            # Gradio sends an empty number field as 0, so 0 stands for "the preset's own".
            workers_input = gr.Number(
                value=0,
                precision=0,
                minimum=0,
                label="Workers (0: the preset's)",
                visible=first.generated,
                elem_id="wo-workers",
                scale=1,
                min_width=120,
            )
            reset_button = gr.Button("Reset", variant="primary", elem_id="wo-reset", scale=1, min_width=100)
        gauges_view = gr.HTML(first_pictures[1], elem_id="wo-gauges", js_on_load=region_js("wo-gauges"))
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                # The controls of what the pictures below show, and their messages, right above them.
                with gr.Row(equal_height=False, elem_id="wo-viewer"):
                    replay_id_input = gr.Textbox(
                        label="Watch or replay an episode by id",
                        placeholder="from POST /reset, a WebSocket session, or another browser",
                        elem_id="wo-replay-id",
                        scale=3,
                        min_width=220,
                    )
                    secret_input = gr.Textbox(
                        label="Its secret or the token",
                        placeholder="episode_secret",
                        type="password",
                        elem_id="wo-replay-secret",
                        scale=2,
                        min_width=200,
                    )
                    load_button = gr.Button("Open", variant="primary", elem_id="wo-replay-load", scale=1, min_width=80)
                    live_button = gr.Button("Back to my episode", elem_id="wo-replay-leave", scale=1, min_width=170)
                with gr.Row(visible=False, elem_id="wo-replay-controls") as replay_row:
                    back_button = gr.Button("Step back", elem_id="wo-replay-back", min_width=90)
                    replay_slider = gr.Slider(
                        minimum=0,
                        maximum=1,
                        step=1,
                        value=0,
                        label="Replay step",
                        interactive=True,
                        elem_id="wo-replay-slider",
                        scale=3,
                    )
                    forward_button = gr.Button("Step forward", elem_id="wo-replay-forward", min_width=90)
                    replay_play_button = gr.Button("Play replay", elem_id="wo-replay-play", min_width=90)
                with gr.Row(equal_height=False):
                    zoom_input = gr.Radio(
                        choices=["100%", "150%", "200%"],
                        value="100%",
                        label="DAG zoom",
                        elem_id="wo-zoom",
                        interactive=True,
                        scale=0,
                        min_width=260,
                    )
                # The notice, the DAG and the Gantt chart: one picture (see page_regions).
                main_view = gr.HTML(first_pictures[2], elem_id="wo-main", js_on_load=region_js("wo-main"))
            with gr.Column(scale=1, min_width=320):
                hint_view = gr.HTML(first_pictures[3], elem_id="wo-hint", js_on_load=region_js("wo-hint"))
                with gr.Group():
                    kind_input = gr.Radio(choices=[], label="Action", elem_id="wo-kind")
                    subtask_input = gr.Dropdown(choices=[], label="Subtask", elem_id="wo-subtask")
                    agent_input = gr.Dropdown(choices=[], label="Agent", elem_id="wo-agent")
                    dispatch_input = gr.CheckboxGroup(
                        choices=[], label="Dispatch: subtask → agent", visible=False, elem_id="wo-dispatch"
                    )
                    # A canvas task's finish: the answer to finish with (empty: the last execution's).
                    answer_input = gr.Textbox(
                        label="Answer (empty: the last execution's)", visible=False, elem_id="wo-answer"
                    )
                    # The action buttons stay inactive until the load event has answered: the page
                    # arrives with its opening pictures drawn, but the browser's episode exists only then.
                    step_button = gr.Button("Step", variant="primary", elem_id="wo-step", interactive=False)
                with gr.Row():
                    policy_input = gr.Dropdown(
                        choices=list(POLICY_NAMES),
                        value="heuristic",
                        label="Built-in policy",
                        elem_id="wo-policy",
                        scale=2,
                    )
                    policy_step_button = gr.Button("Policy step", elem_id="wo-policy-step", scale=1, interactive=False)
                with gr.Row():
                    play_button = gr.Button("Play to the end", elem_id="wo-play", interactive=False)
                    stop_button = gr.Button("Stop", elem_id="wo-stop")
                copy_button = gr.Button("Copy the link to this view", elem_id="wo-copy-link", size="sm")
        # The agents, the deadlines, the rewards and the grade: one picture.
        details_view = gr.HTML(first_pictures[4], elem_id="wo-details", js_on_load=region_js("wo-details"))
        with gr.Tabs():
            with gr.Tab("Step history"):
                history_view = gr.HTML(first_pictures[5], elem_id="wo-history", js_on_load=region_js("wo-history"))
            with gr.Tab("Event log"):
                events_view = gr.HTML(first_pictures[6], elem_id="wo-events", js_on_load=region_js("wo-events"))
            with gr.Tab("Compare two episodes", elem_id="wo-compare-tab"):
                with gr.Row(equal_height=True):
                    compare_first = gr.Textbox(label="Episode", elem_id="wo-compare-first", scale=2)
                    compare_second = gr.Textbox(
                        label="Compared with: another episode's id, or a built-in policy on the same task and seed",
                        placeholder=", ".join(POLICY_NAMES),
                        elem_id="wo-compare-second",
                        scale=2,
                    )
                    compare_button = gr.Button("Compare", variant="primary", elem_id="wo-compare", scale=1)
                compare_view = gr.HTML(elem_id="wo-compare-view")
        # Pressed by the page's script after a Policy step through the JSON route changed what the
        # action form offers: the form (a set of Gradio components) is drawn by Gradio.
        sync_button = gr.Button("Refresh the action form", elem_id="wo-sync", visible="hidden")
        # Polls the watched episode's change feed; on only while an episode is watched.
        watch_timer = gr.Timer(WATCH_POLL_S, active=False)
        # Where every event's loading status goes (see ``direct`` below): nothing, drawn nowhere.
        progress_anchor = gr.HTML(visible=False, elem_id="wo-progress-anchor")

        page_outputs = [
            status_view,
            gauges_view,
            main_view,
            hint_view,
            details_view,
            history_view,
            events_view,
            kind_input,
            subtask_input,
            agent_input,
            dispatch_input,
            answer_input,
            step_button,
            policy_step_button,
            play_button,
            replay_slider,
            replay_row,
            watch_timer,
        ]
        # Acting on one's own episode (a step, a policy's step, a policy playing) changes neither
        # the replay controls nor the watch timer: those events leave them out of their outputs.
        acting_outputs = page_outputs[:15]

        def draw(
            session: DashboardSession, snapshot: Snapshot, kind: str | None = None, acting: bool = False
        ) -> list[Any]:
            """Every output of the page, in ``page_outputs`` order (``acting``: of ``acting_outputs``)."""
            observation = snapshot.observation
            statuses = views.deadline_statuses(observation, snapshot.records) if observation else []
            menu = snapshot.menu
            chosen_kind = kind if kind in menu.kinds else (menu.kinds[0] if menu.kinds else None)
            position = snapshot.replay_position
            can_act = bool(menu.kinds)
            watching = snapshot.mode == "watch" and not observation.get("done")
            session.drawn = controller.change_key(session)
            pictures = keyed(session, page_regions(snapshot, statuses))
            # The other outputs are component updates: each is built and sent only when what
            # it shows differs from what the browser was last sent (its key).
            updates: list[tuple[Any, int, Callable[[], Any]]] = [
                ((menu, chosen_kind), 5, lambda: form_updates(menu, chosen_kind)),
                (can_act, 3, lambda: [gr.update(interactive=can_act) for _ in range(3)]),
                (
                    position,
                    1,
                    lambda: (
                        gr.update(minimum=0, maximum=max(position[1], 1), value=position[0])
                        if position
                        else gr.update()
                    ),
                ),
                (position is not None, 1, lambda: gr.update(visible=position is not None)),
                (watching, 1, lambda: gr.update(active=watching)),
            ]
            return unchanged_skipped(session, pictures, updates[:2] if acting else updates)

        def keyed(session: DashboardSession, pictures: list[str]) -> list[str]:
            """``pictures`` with the session's own key in the summary bar, for the page's script (with ``api``)."""
            if api is not None:
                pictures[0] = (
                    f'<span id="wo-session-key" data-key="{views.esc(session.key)}" hidden></span>{pictures[0]}'
                )
            return pictures

        def ensure(request: gr.Request | None) -> DashboardSession:
            """This browser page's session (Gradio's session hash names it)."""
            return sessions.get(getattr(request, "session_hash", None) or "", first_pictures)

        def not_here_snapshot(session: DashboardSession) -> Snapshot | None:
            """What the page shows with a notice, when the session shows another episode than its own."""
            if session.replay is None and session.watch_id is None:
                return None
            notice = "You are watching another episode; press “Back to my episode” to act."
            return controller.snapshot(session, notice=notice)

        def not_here(session: DashboardSession, kind: str | None = None) -> list[Any] | None:
            """The page with a notice, when the session shows another episode than its own."""
            refused = not_here_snapshot(session)
            return None if refused is None else draw(session, refused, kind, acting=True)

        # ------------------------------------------------------------ handlers

        async def on_load(task_key: str, preset: str | None, secret: str, request: gr.Request) -> list[Any]:
            # A new page shows the opening pictures already: only what differs from them is sent.
            session = ensure(request)
            # Open on a running episode of the first task, so there is something to look at.
            snapshot = (
                controller.start(session, task_key, preset, None, None)
                if session.episode_id is None
                else controller.snapshot(session)
            )
            # A shared link names an episode (and a replay step): show that one.
            query = request.query_params if request is not None else {}
            wanted = query.get("episode")
            if wanted:
                step = query.get("step")
                async with replay_lock:
                    snapshot = await controller.open_episode_async(
                        session, wanted, int(step) if str(step).isdigit() else None, secret
                    )
            return draw(session, snapshot)

        async def on_task_change(task_key: str) -> list[Any]:
            option = controller.option(task_key)
            return [
                gr.Dropdown(
                    choices=list(option.presets),
                    value=option.presets[0] if option.presets else None,
                    visible=option.generated,
                ),
                gr.Number(value=option.canonical_seed),
                gr.Number(visible=option.generated),
            ]

        async def on_reset(
            task_key: str,
            preset: str | None,
            seed: float | None,
            workers: float | None,
            policy_name: str,
            request: gr.Request,
        ) -> list[Any]:
            session = ensure(request)
            session.policy_name = policy_name if policy_name in POLICY_NAMES else session.policy_name
            snapshot = controller.start(session, task_key, preset, as_int(seed), as_int(workers) or None)
            return draw(session, snapshot)

        async def on_kind_change(kind: str | None, request: gr.Request) -> list[Any]:
            snapshot = controller.snapshot(ensure(request))
            return form_updates(snapshot.menu, kind)[1:]

        async def on_subtask_change(kind: str | None, subtask: str | None, request: gr.Request) -> Any:
            menu = controller.snapshot(ensure(request)).menu
            agents = list(menu.agents_for(kind, subtask))
            return gr.Dropdown(
                choices=agents, value=agents[0] if agents else None, visible=kind in ("delegate", "retry")
            )

        async def on_step(
            kind: str | None,
            subtask: str | None,
            agent: str | None,
            assignments: list[str] | None,
            answer: str | None,
            request: gr.Request,
        ) -> list[Any]:
            session = ensure(request)
            refused = not_here(session, kind)
            if refused is not None:
                return refused
            current = controller.snapshot(session)
            try:
                action = build_action(current.menu, kind, subtask, agent, assignments, answer)
            except FormError as exc:
                return draw(session, controller.snapshot(session, notice=str(exc)), kind, acting=True)
            return draw(session, controller.act(session, action), kind, acting=True)

        async def on_policy_step(policy_name: str, request: gr.Request) -> list[Any]:
            session = ensure(request)
            refused = not_here(session)
            if refused is not None:
                return refused
            return draw(session, controller.policy_step(session, policy_name), acting=True)

        async def on_sync(request: gr.Request) -> list[Any]:
            session = ensure(request)
            return draw(session, controller.snapshot(session), acting=True)

        def policy_step_answer(
            session: DashboardSession, policy_name: str | None, shown: frozenset[str]
        ) -> dict[str, Any]:
            """A Policy step for the JSON route: the regions that changed among those the page can draw
            (``shown``: a region in a tab not opened yet is not on the page), by element id, and whether
            Gradio should draw the rest (``refresh``, see ``sync_button``): the action form, when it offers
            something else now, and the regions not drawn here that changed."""
            refused = not_here_snapshot(session)
            snapshot = refused if refused is not None else controller.policy_step(session, policy_name)
            observation = snapshot.observation
            statuses = views.deadline_statuses(observation, snapshot.records) if observation else []
            session.drawn = controller.change_key(session)
            pictures = keyed(session, page_regions(snapshot, statuses))
            changed: dict[str, str] = {}
            behind = False
            for index, (name, picture) in enumerate(zip(REGION_IDS, pictures, strict=True)):
                key = picture_key(picture)
                if session.sent.get(index) == key:
                    continue
                if name in shown:
                    session.sent[index] = key
                    changed[name] = picture
                else:
                    behind = True
            menu = snapshot.menu
            kind = menu.kinds[0] if menu.kinds else None
            sent = session.sent
            behind = (
                behind or sent.get(len(pictures)) != (menu, kind) or sent.get(len(pictures) + 1) != bool(menu.kinds)
            )
            return {"regions": changed, "refresh": behind}

        if api is not None:
            add_policy_step_route(api, f"{api_path}/policy-step", sessions, policy_step_answer)

        async def on_play(policy_name: str, request: gr.Request) -> AsyncIterator[list[Any]]:
            session = ensure(request)
            refused = not_here(session)
            if refused is not None:
                yield refused
                return
            while not controller.is_finished(session):
                yield draw(session, controller.policy_step(session, policy_name), acting=True)
                await asyncio.sleep(PLAY_DELAY_S)
            yield draw(session, controller.snapshot(session), acting=True)

        async def replay_work(work: Callable[..., Snapshot], *args: Any) -> Snapshot:
            # A replay re-simulates up to MAX_REPLAY_STEPS steps: in a worker thread, one
            # replay at a time, so that it neither blocks the event loop nor multiplies.
            async with replay_lock:
                return await asyncio.to_thread(work, *args)

        async def on_open(episode_id: str, secret: str | None, request: gr.Request) -> list[Any]:
            session = ensure(request)
            async with replay_lock:
                return draw(session, await controller.open_episode_async(session, episode_id, None, secret))

        async def on_tick(request: gr.Request) -> list[Any]:
            session = ensure(request)
            if session.watch_id is None or controller.change_key(session) == session.drawn:
                return [gr.skip() for _ in page_outputs]
            return draw(session, controller.snapshot(session))

        async def on_seek(position: float, request: gr.Request) -> list[Any]:
            session = ensure(request)
            return draw(session, await replay_work(controller.seek, session, as_int(position) or 0))

        async def on_nudge(session: DashboardSession, delta: int) -> list[Any]:
            current = session.replay.position if session.replay else 0
            return draw(session, await replay_work(controller.seek, session, current + delta))

        async def on_back(request: gr.Request) -> list[Any]:
            return await on_nudge(ensure(request), -1)

        async def on_forward(request: gr.Request) -> list[Any]:
            return await on_nudge(ensure(request), 1)

        async def on_play_replay(request: gr.Request) -> AsyncIterator[list[Any]]:
            session = ensure(request)
            replay = session.replay
            if replay is None:
                yield draw(session, controller.snapshot(session, notice="Open a finished episode first."))
                return
            start = 0 if replay.position >= len(replay.actions) else replay.position
            for position in range(start, len(replay.actions) + 1):
                yield draw(session, await replay_work(controller.seek, session, position))
                await asyncio.sleep(PLAY_DELAY_S)

        async def on_leave(request: gr.Request) -> list[Any]:
            session = ensure(request)
            return draw(session, controller.leave_replay(session))

        async def on_compare(first_id: str, second: str, secret: str | None, request: gr.Request) -> str:
            session = ensure(request)
            chosen = (first_id or "").strip() or (
                session.replay.source_id if session.replay else session.watch_id or session.episode_id or ""
            )
            async with replay_lock:
                result = await controller.compare_async(session, chosen, second, secret)
            if isinstance(result, str):
                return views.notice_html(result)
            return views.compare_html(result.first, result.second, result.divergence, canvas.canvas_svg)

        # ------------------------------------------------------------ wiring

        # Handlers are microseconds of work on the event loop (replays run in a
        # worker thread); none needs to queue behind another session's. A
        # one-shot handler answers its own request, without the queue's second
        # round trip (join, then a stream of messages), and with no progress
        # overlay, which would cover and redraw every output twice per step.
        # The players stream their steps and can be stopped: they go through
        # the queue, without a limit on how many run at once.
        #
        # The browser tracks an event's loading status on its progress targets (by default
        # every output) and its inputs, and at each status change of any event re-reads the
        # properties of every component it ever tracked, copying each (an HTML picture's
        # whole markup, a row's every child): with about twenty outputs, that was most of a
        # step's time in the browser. Every event shows its progress on one empty, hidden
        # component instead.
        # The events serve this page alone: out of the API description that every page
        # load carries inline (about 50 KB of it), though callable as before.
        quiet: dict[str, Any] = {
            "show_progress": "hidden",
            "show_progress_on": [progress_anchor],
            "api_visibility": "undocumented",
        }
        direct: dict[str, Any] = {"queue": False, **quiet}
        unlimited: dict[str, Any] = {"concurrency_limit": None, **quiet}
        blocks.load(
            on_load,
            [task_input, preset_input, secret_input],
            page_outputs,
            js=SECRET_FROM_LINK_JS,
            **direct,
        )
        task_input.change(on_task_change, [task_input], [preset_input, seed_input, workers_input], **direct)
        reset_button.click(
            on_reset,
            [task_input, preset_input, seed_input, workers_input, policy_input],
            page_outputs,
            **direct,
        )
        kind_input.input(
            on_kind_change,
            [kind_input],
            [subtask_input, agent_input, dispatch_input, answer_input],
            **direct,
        )
        subtask_input.input(on_subtask_change, [kind_input, subtask_input], [agent_input], **direct)
        step_button.click(
            on_step,
            [kind_input, subtask_input, agent_input, dispatch_input, answer_input],
            acting_outputs,
            **direct,
        )
        # With ``api``, the page's script takes the click first (POLICY_STEP_JS); this serves a page without it.
        policy_step_button.click(on_policy_step, [policy_input], acting_outputs, **direct)
        sync_button.click(on_sync, [], acting_outputs, **direct)
        playing = play_button.click(on_play, [policy_input], acting_outputs, **unlimited)
        opening = [replay_id_input, secret_input]
        load_button.click(on_open, opening, page_outputs, **direct)
        replay_id_input.submit(on_open, opening, page_outputs, **direct)
        secret_input.submit(on_open, opening, page_outputs, **direct)
        watch_timer.tick(on_tick, [], page_outputs, **direct)
        replay_slider.release(on_seek, [replay_slider], page_outputs, **direct)
        back_button.click(on_back, [], page_outputs, **direct)
        forward_button.click(on_forward, [], page_outputs, **direct)
        replaying = replay_play_button.click(on_play_replay, [], page_outputs, **unlimited)
        live_button.click(on_leave, [], page_outputs, **direct)
        stop_button.click(None, None, None, cancels=[playing, replaying])
        compare_button.click(on_compare, [compare_first, compare_second, secret_input], [compare_view], **direct)
        copy_button.click(None, None, None, js=COPY_LINK_JS)

        def on_unload(request: gr.Request) -> None:
            sessions.drop(getattr(request, "session_hash", None) or "")

        blocks.unload(on_unload)
        del zoom_input  # it acts through the style sheet alone
    page: gr.Blocks = blocks
    return page


def page_pictures(snapshot: Snapshot, statuses: Sequence[views.DeadlineStatus]) -> list[str]:
    """The page's markup outputs, in ``page_outputs`` order: the summary bar to the event log.

    A canvas episode has no agents, schedule or deadlines: the same places
    show its canvas as a graph, the problem, the last execution's feedback,
    the operator library and what a finished canvas needs.
    """
    observation = snapshot.observation
    summary = views.status_html(
        observation,
        snapshot.episode_id,
        snapshot.mode,
        snapshot.replay_position,
        grade=snapshot.grade,
        statuses=statuses,
        task=snapshot.task,
        share=snapshot.share,
        export=snapshot.export,
    )
    if canvas.is_canvas(observation):
        return [
            summary,
            views.gauges_html(observation),
            canvas.canvas_svg(observation),
            canvas.problem_html(observation),
            canvas.execution_html(observation),
            canvas.operators_html(observation),
            canvas.statistics_html(observation),
            views.reward_svg(snapshot.rewards),
            views.grade_html(snapshot.grade),
            views.history_html(snapshot.trace, snapshot.rewards),
            views.events_html(snapshot.records),
        ]
    return [
        summary,
        views.gauges_html(observation),
        views.dag_svg(observation, statuses) if observation else views.dag_svg({}),
        views.hint_html(observation),
        HEADINGS["schedule"]
        + (
            views.gantt_svg(observation, snapshot.records, statuses)
            if observation
            else '<div class="wo-muted">No schedule yet.</div>'
        ),
        HEADINGS["agents"] + (views.agent_cards_html(observation, snapshot.records) if observation else ""),
        HEADINGS["deadlines"] + (views.deadlines_html(statuses) if observation else ""),
        views.reward_svg(snapshot.rewards),
        views.grade_html(snapshot.grade),
        views.history_html(snapshot.trace, snapshot.rewards),
        views.events_html(snapshot.records),
    ]


def page_regions(snapshot: Snapshot, statuses: Sequence[views.DeadlineStatus]) -> list[str]:
    """The page's markup outputs, in ``page_outputs`` order: :func:`page_pictures` put together by region.

    The summary bar, the gauges, the main column (the notice, the DAG and the
    Gantt chart), the hint, the details below (agents, deadlines, rewards and
    grade), the step history and the event log. Every output of an event costs
    the server a component rebuilt and the browser a component updated, even
    when it is skipped: the fewer, the faster a step. Each picture keeps its
    element id inside its region.
    """
    return regions(page_pictures(snapshot, statuses), snapshot.notice)


def regions(pictures: Sequence[str], notice: str = "") -> list[str]:
    """:func:`page_pictures`' eleven pictures as the page's seven regions (see :func:`page_regions`)."""
    status, gauges, dag, hint, gantt, agents, deadlines, rewards, grade, history, events = pictures
    main = f'{views.notice_html(notice)}<div id="wo-dag">{dag}</div><div id="wo-gantt">{gantt}</div>'
    details = (
        f'<div id="wo-agents">{agents}</div><div class="wo-pair"><div id="wo-deadlines">{deadlines}</div>'
        f'<div>{HEADINGS["rewards"]}<div id="wo-rewards">{rewards}</div></div></div>'
        f'{HEADINGS["grade"]}<div id="wo-grade">{grade}</div>'
    )
    return [status, gauges, main, hint, details, history, events]


def opening_regions(controller: DashboardController, task_key: str, preset: str | None = None) -> list[str]:
    """:func:`opening_pictures` as the page's regions: the page's first values."""
    return regions(opening_pictures(controller, task_key, preset))


def opening_pictures(controller: DashboardController, task_key: str, preset: str | None = None) -> list[str]:
    """:func:`page_pictures` of a new episode of ``task_key`` before its first step, without the summary bar.

    They are the page's first values: the pictures are on the screen as soon
    as the page is, before the load handler has started the browser's episode.
    """
    opening = controller.opening(task_key, preset)
    observation = opening.observation
    statuses = views.deadline_statuses(observation, opening.records) if observation else []
    return ["", *page_pictures(opening, statuses)[1:]]


# The headings of the places that a canvas episode fills with its own pictures: part of those pictures.
HEADINGS = {
    name: f'<h3 class="wo-heading">{views.esc(text)}</h3>'
    for name, text in (
        ("schedule", "Schedule"),
        ("agents", "Agents"),
        ("deadlines", "Deadlines"),
        ("rewards", "Reward per step"),
        ("grade", "Grade"),
    )
}


def unchanged_skipped(
    session: DashboardSession, pictures: list[Any], updates: list[tuple[Any, int, Callable[[], Any]]]
) -> list[Any]:
    """The page's outputs after the session state, with a skip for everything the browser already shows.

    ``pictures`` are markup, compared as they are; ``updates`` are a key (what
    an update shows), the number of outputs it covers and the function that
    builds it (one output, or a list of ``count``). Most steps change a few pictures only (the agents'
    cards, the deadlines, the grade stay as they were); sending the same
    markup or the same component update again would cost its transfer and
    the browser's redraw of it.
    """
    sent = session.sent
    values: list[Any] = []
    for index, picture in enumerate(pictures):
        key = picture_key(picture)
        if sent.get(index) == key:
            values.append(gr.skip())
        else:
            sent[index] = key
            values.append(picture)
    for index, (key, count, build) in enumerate(updates, start=len(pictures)):
        if index in sent and sent[index] == key:
            values.extend(gr.skip() for _ in range(count))
        else:
            sent[index] = key
            built = build()
            values.extend(built if count > 1 else [built])
    return values


# What the edit field is called for each canvas action kind.
EDIT_LABELS = {
    "add": "Add (at the end of the canvas)",
    "delete": "Delete",
    "modify": "Modify: node → another operator of its role",
    "set_prompt": "Set the prompt style of a node",
}


def form_updates(menu: ActionMenu, kind: str | None) -> list[Any]:
    """The action form for ``menu``: kind, subtask, agent, dispatch and answer fields, with legal choices only.

    A canvas task's form is its kind (an edit, execute or finish), one of
    that kind's legal edits in the subtask's place, and the answer for finish.

    Updates as dictionaries (``gr.update``), not components: Gradio builds the
    output's component from them again anyway, and building one here as well
    cost about 2 ms a field.
    """
    kind = kind if kind in menu.kinds else (menu.kinds[0] if menu.kinds else None)
    if menu.canvas:
        edits = list(menu.edits.get(kind or "", ()))
        return [
            gr.update(choices=[(k.replace("_", " "), k) for k in menu.kinds], value=kind, label="Canvas action"),
            gr.update(
                choices=edits,
                value=edits[0][1] if edits else None,
                visible=bool(edits),
                label=EDIT_LABELS.get(kind or "", "Edit"),
            ),
            gr.update(choices=[], value=None, visible=False),
            gr.update(choices=[], value=[], visible=False),
            gr.update(value="", visible=kind == "finish"),
        ]
    subtasks = list(menu.subtasks_for(kind))
    subtask = subtasks[0] if subtasks else None
    agents = list(menu.agents_for(kind, subtask))
    if menu.anywhere:
        pairs = [(anywhere_label(s), anywhere_value(s)) for s in menu.anywhere]
        label = f"Dispatch: subtasks, each to any free worker (at most {menu.free_slots})"
    else:
        pairs = [(pair_label(k, s, a), pair_value(s, a)) for k, s, a in menu.pairs]
        label = f"Dispatch: subtask → agent (at most {menu.free_slots}, each agent once)"
    return [
        gr.update(choices=list(menu.kinds), value=kind, label="Action"),
        gr.update(choices=subtasks, value=subtask, visible=kind in ("delegate", "retry", "abort"), label="Subtask"),
        gr.update(choices=agents, value=agents[0] if agents else None, visible=kind in ("delegate", "retry")),
        gr.update(
            choices=pairs,
            value=[],
            visible=kind == "dispatch",
            label=label,
        ),
        gr.update(value="", visible=False),
    ]


def as_int(value: float | int | str | None) -> int | None:
    """A number field's value as an int; empty stays None."""
    if value is None or value == "":
        return None
    return int(value)
