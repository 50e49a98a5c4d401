"""The dashboard's Gradio Blocks: the page layout and its event handlers.

One ``gr.State`` per browser session holds a :class:`DashboardSession`, so two
browsers never share an episode. Every handler is ``async`` (see
:mod:`.session` for why) and ends by redrawing the whole page from one
:class:`Snapshot`: the DAG, the Gantt chart, the agents, the gauges, the
deadlines, the hint, the rewards, the grade, the tables and the action form.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import gradio as gr

from workflow_orchestrator.server.environment import EpisodeStore

from . import views
from .session import (
    POLICY_NAMES,
    ActionMenu,
    DashboardController,
    DashboardSession,
    FormError,
    Snapshot,
    build_action,
    pair_label,
    pair_value,
)

# Pause between two steps when a policy or a replay plays on its own: slow
# enough to watch the DAG change, fast enough to finish an episode in seconds.
PLAY_DELAY_S = 0.35

# Styles for the markup of views.py. They travel inside the page (a <style> in
# an HTML block) so that they apply however the Blocks are mounted.
DASHBOARD_CSS = """
.wo-muted { color: #57606a; font-size: 13px; }
.wo-status { font-size: 14px; padding: 6px 2px; }
.wo-status code { font-size: 13px; }
.wo-badge { color: #fff; border-radius: 10px; padding: 1px 8px; font-size: 12px; font-weight: 700; }
.wo-badge-live { background: #1a7f37; } .wo-badge-replay { background: #8250df; } .wo-badge-empty { background: #6e7781; }
.wo-gauges { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 10px; }
.wo-gauge-label { display: flex; justify-content: space-between; font-size: 13px; font-weight: 600; }
.wo-gauge-label span { font-weight: 400; color: #57606a; }
.wo-gauge-track { background: #eaeef2; border-radius: 4px; height: 9px; overflow: hidden; margin-top: 3px; }
.wo-gauge-fill { height: 100%; border-radius: 4px; }
.wo-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.wo-card { border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 10px; font-size: 13px; }
.wo-card-head { display: flex; justify-content: space-between; align-items: flex-start; gap: 6px; margin-bottom: 4px; }
.wo-card-head b { overflow-wrap: anywhere; }
.wo-card-line { margin: 2px 0; }
.wo-pill { color: #fff; border-radius: 10px; padding: 0 8px; font-size: 12px; }
.wo-chips { margin-top: 4px; }
.wo-chip { display: inline-block; background: #ddf4ff; color: #0a3069; border-radius: 10px; padding: 0 7px;
  margin: 2px 3px 0 0; font-size: 11px; }
.wo-table { border-collapse: collapse; width: 100%; font-size: 13px; }
.wo-table th, .wo-table td { border-bottom: 1px solid #d0d7de; padding: 3px 6px; text-align: left; vertical-align: top; }
.wo-hint { background: #ddf4ff; border-left: 4px solid #0969da; padding: 6px 10px; font-size: 14px; }
.wo-notice { background: #fff8c5; border-left: 4px solid #9a6700; padding: 6px 10px; font-size: 14px; margin-bottom: 6px; }
.wo-errors { background: #ffebe9; border-left: 4px solid #cf222e; padding: 6px 10px; font-size: 13px; margin-top: 6px; }
.wo-errors ul { margin: 2px 0 0 16px; padding: 0; }
.wo-reward-line { font-size: 13px; margin-top: 6px; color: #24292f; }
.wo-grade { font-size: 14px; }
.wo-score { font-size: 22px; } .wo-score-part { font-size: 14px; margin: 2px 0; }
.wo-dag-box { overflow-x: auto; }
.wo-scroll { max-height: 320px; overflow-y: auto; }
"""

DEFAULT_TITLE = "workflow_orchestrator dashboard"


def build_dashboard(store: EpisodeStore, title: str = DEFAULT_TITLE) -> gr.Blocks:
    """The dashboard as Gradio Blocks, playing episodes in ``store``."""
    controller = DashboardController(store)
    replay_lock = asyncio.Lock()
    first = controller.options[0]

    with gr.Blocks(title=title, analytics_enabled=False, fill_width=True) as blocks:
        session_state = gr.State(None)
        gr.HTML(f"<style>{DASHBOARD_CSS}</style>", padding=False)
        gr.Markdown(
            f"## {title}\nPick a task and press **Reset**; act with the form, or let a built-in policy "
            "play step by step. Everything below is redrawn after every step."
        )
        with gr.Row(equal_height=False):
            task_input = gr.Dropdown(
                choices=[(o.label, o.key) for o in controller.options],
                value=first.key,
                label="Task",
                elem_id="wo-task",
                scale=3,
            )
            preset_input = gr.Dropdown(
                choices=list(first.presets),
                value=first.presets[0] if first.presets else None,
                label="Preset",
                visible=first.generated,
                elem_id="wo-preset",
                scale=1,
            )
            seed_input = gr.Number(
                value=first.canonical_seed, precision=0, minimum=0, label="Seed", elem_id="wo-seed", scale=1
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
            )
            reset_button = gr.Button("Reset", variant="primary", elem_id="wo-reset", scale=1)
        status_view = gr.HTML(elem_id="wo-status")
        gauges_view = gr.HTML(elem_id="wo-gauges")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                dag_view = gr.HTML(elem_id="wo-dag", elem_classes=["wo-dag-box"])
            with gr.Column(scale=1, min_width=340):
                hint_view = gr.HTML(elem_id="wo-hint")
                with gr.Group():
                    kind_input = gr.Radio(choices=[], label="Action", elem_id="wo-kind")
                    subtask_input = gr.Dropdown(choices=[], label="Subtask", elem_id="wo-subtask")
                    agent_input = gr.Dropdown(choices=[], label="Agent", elem_id="wo-agent")
                    dispatch_input = gr.CheckboxGroup(
                        choices=[], label="Dispatch: subtask → agent", visible=False, elem_id="wo-dispatch"
                    )
                    step_button = gr.Button("Step", variant="primary", elem_id="wo-step")
                with gr.Row():
                    policy_input = gr.Dropdown(
                        choices=list(POLICY_NAMES),
                        value="heuristic",
                        label="Built-in policy",
                        elem_id="wo-policy",
                        scale=2,
                    )
                    policy_step_button = gr.Button("Policy step", elem_id="wo-policy-step", scale=1)
                with gr.Row():
                    play_button = gr.Button("Play to the end", elem_id="wo-play")
                    stop_button = gr.Button("Stop", elem_id="wo-stop")
        gr.Markdown("### Schedule")
        gantt_view = gr.HTML(elem_id="wo-gantt")
        gr.Markdown("### Agents")
        agents_view = gr.HTML(elem_id="wo-agents")
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("### Deadlines")
                deadlines_view = gr.HTML(elem_id="wo-deadlines")
            with gr.Column():
                gr.Markdown("### Reward per step")
                rewards_view = gr.HTML(elem_id="wo-rewards")
        gr.Markdown("### Grade")
        grade_view = gr.HTML(elem_id="wo-grade")
        with gr.Tabs():
            with gr.Tab("Step history"):
                history_view = gr.Dataframe(
                    headers=views.HISTORY_COLUMNS,
                    datatype="str",
                    interactive=False,
                    wrap=True,
                    max_height=360,
                    elem_id="wo-history",
                )
            with gr.Tab("Event log"):
                events_view = gr.Dataframe(
                    headers=views.EVENT_COLUMNS,
                    datatype="str",
                    interactive=False,
                    wrap=True,
                    max_height=360,
                    elem_id="wo-events",
                )
        with gr.Accordion("Replay a finished episode", open=False, elem_id="wo-replay-panel"):
            with gr.Row():
                replay_id_input = gr.Textbox(
                    label="Episode id", placeholder="from POST /reset, or shown above", elem_id="wo-replay-id", scale=3
                )
                this_episode_button = gr.Button("Use this episode's id", elem_id="wo-replay-this", scale=1)
                load_button = gr.Button("Load replay", variant="primary", elem_id="wo-replay-load", scale=1)
            replay_slider = gr.Slider(
                minimum=0, maximum=1, step=1, value=0, label="Replay step", interactive=True, elem_id="wo-replay-slider"
            )
            with gr.Row():
                back_button = gr.Button("◀ Step back", elem_id="wo-replay-back")
                forward_button = gr.Button("Step forward ▶", elem_id="wo-replay-forward")
                replay_play_button = gr.Button("Play replay", elem_id="wo-replay-play")
                live_button = gr.Button("Back to my episode", elem_id="wo-replay-leave")

        page_outputs = [
            session_state,
            status_view,
            gauges_view,
            dag_view,
            hint_view,
            gantt_view,
            agents_view,
            deadlines_view,
            rewards_view,
            grade_view,
            history_view,
            events_view,
            kind_input,
            subtask_input,
            agent_input,
            dispatch_input,
            replay_slider,
        ]

        def draw(session: DashboardSession, snapshot: Snapshot, kind: str | None = None) -> list[Any]:
            """Every output of the page, in ``page_outputs`` order."""
            observation = snapshot.observation
            statuses = views.deadline_statuses(observation, snapshot.records) if observation else []
            menu = snapshot.menu
            chosen_kind = kind if kind in menu.kinds else (menu.kinds[0] if menu.kinds else None)
            form = form_updates(menu, chosen_kind)
            position = snapshot.replay_position
            slider = gr.Slider(minimum=0, maximum=max(position[1], 1), value=position[0]) if position else gr.Slider()
            return [
                session,
                views.status_html(observation, snapshot.episode_id, snapshot.mode, position),
                views.gauges_html(observation),
                views.dag_svg(observation, statuses) if observation else views.dag_svg({}),
                views.hint_html(observation, snapshot.notice),
                views.gantt_svg(observation, snapshot.records, statuses)
                if observation
                else '<div class="wo-muted">No schedule yet.</div>',
                views.agent_cards_html(observation, snapshot.records) if observation else "",
                views.deadlines_html(statuses) if observation else "",
                views.reward_svg(snapshot.rewards),
                views.grade_html(snapshot.grade),
                views.history_rows(snapshot.trace, snapshot.rewards),
                views.event_rows(snapshot.records),
                *form,
                slider,
            ]

        def ensure(session: DashboardSession | None) -> DashboardSession:
            return session if session is not None else DashboardSession()

        # ------------------------------------------------------------ handlers

        async def on_load(session: DashboardSession | None, task_key: str, preset: str | None) -> list[Any]:
            session = ensure(session)
            # Open on a running episode of the first task, so there is something to look at.
            snapshot = (
                controller.start(session, task_key, preset, None, None)
                if session.episode_id is None
                else controller.snapshot(session)
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
            session: DashboardSession | None,
            task_key: str,
            preset: str | None,
            seed: float | None,
            workers: float | None,
            policy_name: str,
        ) -> list[Any]:
            session = ensure(session)
            session.policy_name = policy_name if policy_name in POLICY_NAMES else session.policy_name
            snapshot = controller.start(session, task_key, preset, as_int(seed), as_int(workers) or None)
            return draw(session, snapshot)

        async def on_kind_change(session: DashboardSession | None, kind: str | None) -> list[Any]:
            snapshot = controller.snapshot(ensure(session))
            return form_updates(snapshot.menu, kind)[1:]

        async def on_subtask_change(session: DashboardSession | None, kind: str | None, subtask: str | None) -> Any:
            menu = controller.snapshot(ensure(session)).menu
            agents = list(menu.agents_for(kind, subtask))
            return gr.Dropdown(
                choices=agents, value=agents[0] if agents else None, visible=kind in ("delegate", "retry")
            )

        async def on_step(
            session: DashboardSession | None,
            kind: str | None,
            subtask: str | None,
            agent: str | None,
            assignments: list[str] | None,
        ) -> list[Any]:
            session = ensure(session)
            current = controller.snapshot(session)
            if current.mode == "replay":
                return draw(
                    session,
                    controller.snapshot(
                        session, notice="You are watching a replay; press “Back to my episode” to act."
                    ),
                    kind,
                )
            try:
                action = build_action(current.menu, kind, subtask, agent, assignments)
            except FormError as exc:
                return draw(session, controller.snapshot(session, notice=str(exc)), kind)
            return draw(session, controller.act(session, action), kind)

        async def on_policy_step(session: DashboardSession | None, policy_name: str) -> list[Any]:
            session = ensure(session)
            if session.replay is not None:
                return draw(
                    session,
                    controller.snapshot(
                        session, notice="You are watching a replay; press “Back to my episode” to act."
                    ),
                )
            return draw(session, controller.policy_step(session, policy_name))

        async def on_play(session: DashboardSession | None, policy_name: str) -> AsyncIterator[list[Any]]:
            session = ensure(session)
            if session.replay is not None:
                yield draw(
                    session,
                    controller.snapshot(
                        session, notice="You are watching a replay; press “Back to my episode” to act."
                    ),
                )
                return
            while not controller.is_finished(session):
                yield draw(session, controller.policy_step(session, policy_name))
                await asyncio.sleep(PLAY_DELAY_S)
            yield draw(session, controller.snapshot(session))

        async def on_use_this(session: DashboardSession | None) -> str:
            session = ensure(session)
            return session.replay.source_id if session.replay else (session.episode_id or "")

        async def replay_work(work: Callable[..., Snapshot], *args: Any) -> Snapshot:
            # A replay re-simulates up to MAX_REPLAY_STEPS steps: in a worker thread, one
            # replay at a time, so that it neither blocks the event loop nor multiplies.
            async with replay_lock:
                return await asyncio.to_thread(work, *args)

        async def on_load_replay(session: DashboardSession | None, episode_id: str) -> list[Any]:
            session = ensure(session)
            async with replay_lock:
                return draw(session, await controller.load_replay_async(session, episode_id))

        async def on_seek(session: DashboardSession | None, position: float) -> list[Any]:
            session = ensure(session)
            return draw(session, await replay_work(controller.seek, session, as_int(position) or 0))

        async def on_nudge(session: DashboardSession | None, delta: int) -> list[Any]:
            session = ensure(session)
            current = session.replay.position if session.replay else 0
            return draw(session, await replay_work(controller.seek, session, current + delta))

        async def on_back(session: DashboardSession | None) -> list[Any]:
            return await on_nudge(session, -1)

        async def on_forward(session: DashboardSession | None) -> list[Any]:
            return await on_nudge(session, 1)

        async def on_play_replay(session: DashboardSession | None) -> AsyncIterator[list[Any]]:
            session = ensure(session)
            replay = session.replay
            if replay is None:
                yield draw(session, controller.snapshot(session, notice="Load a replay first."))
                return
            start = 0 if replay.position >= len(replay.actions) else replay.position
            for position in range(start, len(replay.actions) + 1):
                yield draw(session, await replay_work(controller.seek, session, position))
                await asyncio.sleep(PLAY_DELAY_S)

        async def on_leave(session: DashboardSession | None) -> list[Any]:
            session = ensure(session)
            return draw(session, controller.leave_replay(session))

        # ------------------------------------------------------------ wiring

        # Handlers are microseconds of work on the event loop; the players sleep
        # between steps. None of them needs to queue behind another session's.
        unlimited: dict[str, Any] = {"concurrency_limit": None}
        blocks.load(on_load, [session_state, task_input, preset_input], page_outputs, **unlimited)
        task_input.change(on_task_change, [task_input], [preset_input, seed_input, workers_input], **unlimited)
        reset_button.click(
            on_reset,
            [session_state, task_input, preset_input, seed_input, workers_input, policy_input],
            page_outputs,
            **unlimited,
        )
        kind_input.input(
            on_kind_change, [session_state, kind_input], [subtask_input, agent_input, dispatch_input], **unlimited
        )
        subtask_input.input(on_subtask_change, [session_state, kind_input, subtask_input], [agent_input], **unlimited)
        step_button.click(
            on_step, [session_state, kind_input, subtask_input, agent_input, dispatch_input], page_outputs, **unlimited
        )
        policy_step_button.click(on_policy_step, [session_state, policy_input], page_outputs, **unlimited)
        playing = play_button.click(on_play, [session_state, policy_input], page_outputs, **unlimited)
        this_episode_button.click(on_use_this, [session_state], [replay_id_input], **unlimited)
        load_button.click(on_load_replay, [session_state, replay_id_input], page_outputs, **unlimited)
        replay_slider.release(on_seek, [session_state, replay_slider], page_outputs, **unlimited)
        back_button.click(on_back, [session_state], page_outputs, **unlimited)
        forward_button.click(on_forward, [session_state], page_outputs, **unlimited)
        replaying = replay_play_button.click(on_play_replay, [session_state], page_outputs, **unlimited)
        live_button.click(on_leave, [session_state], page_outputs, **unlimited)
        stop_button.click(None, None, None, cancels=[playing, replaying])
    return blocks


def form_updates(menu: ActionMenu, kind: str | None) -> list[Any]:
    """The action form for ``menu``: kind, subtask, agent and dispatch choices, all legal ones."""
    kind = kind if kind in menu.kinds else (menu.kinds[0] if menu.kinds else None)
    subtasks = list(menu.subtasks_for(kind))
    subtask = subtasks[0] if subtasks else None
    agents = list(menu.agents_for(kind, subtask))
    pairs = [(pair_label(k, s, a), pair_value(s, a)) for k, s, a in menu.pairs]
    return [
        gr.Radio(choices=list(menu.kinds), value=kind),
        gr.Dropdown(choices=subtasks, value=subtask, visible=kind in ("delegate", "retry", "abort")),
        gr.Dropdown(choices=agents, value=agents[0] if agents else None, visible=kind in ("delegate", "retry")),
        gr.CheckboxGroup(
            choices=pairs,
            value=[],
            visible=kind == "dispatch",
            label=f"Dispatch: subtask → agent (at most {menu.free_slots}, each agent once)",
        ),
    ]


def as_int(value: float | int | str | None) -> int | None:
    """A number field's value as an int; empty stays None."""
    if value is None or value == "":
        return None
    return int(value)
