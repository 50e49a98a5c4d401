"""The dashboard without a browser: its pictures, its action form, its sessions and replays."""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest

from tests.support.tasks import SCENARIOS, act, registry_of, tiny_task
from workflow_orchestrator.server.archive import Archive
from workflow_orchestrator.server.core import AgentSpec, SubtaskSpec
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.core.scenario import WorkflowFamily
from workflow_orchestrator.server.dashboard import views
from workflow_orchestrator.server.dashboard.blocks import (
    build_dashboard,
    opening_pictures,
    page_pictures,
    unchanged_skipped,
)
from workflow_orchestrator.server.dashboard.session import (
    DashboardController,
    DashboardSession,
    DashboardSessions,
    FormError,
    action_menu,
    build_action,
    pair_value,
    task_options,
)
from workflow_orchestrator.server.environment import EpisodeStore, StoreLimits
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry

HOSTILE_SUBTASK = "<script>window.__pwned=1</script>"
HOSTILE_AGENT = '<img src=x onerror="window.__pwned=2">'


def hostile_task() -> Any:
    return tiny_task(
        task_id="hostile",
        title="<i>title</i>",
        subtasks=(
            SubtaskSpec(HOSTILE_SUBTASK, "alpha"),
            SubtaskSpec("b&<b>bold</b>", "beta", (HOSTILE_SUBTASK,), deadline=4),
            SubtaskSpec("c", "gamma", (HOSTILE_SUBTASK,)),
        ),
        agents=(
            AgentSpec(HOSTILE_AGENT, frozenset({"alpha"}), speed=1, cost=1.0),
            AgentSpec("pair", frozenset({"beta", "gamma"}), speed=1, cost=2.0, never_succeeds=frozenset({"gamma"})),
            AgentSpec("flaky", frozenset({"gamma"}), speed=2, cost=1.0),
        ),
        patience=None,
    )


def controller_for(*tasks: Any, token: str | None = None) -> DashboardController:
    registry = registry_of(*tasks) if tasks else default_registry()
    return DashboardController(EpisodeStore(registry, StoreLimits()), token)


def secret_of(controller: DashboardController, session: DashboardSession) -> str:
    """The episode_secret of ``session``'s episode, as POST /reset would have returned it."""
    assert session.episode_id is not None
    return controller.store.get(session.episode_id).secret


# --------------------------------------------------------------------------- escaping


def test_every_picture_draws_hostile_names_as_text() -> None:
    env = WorkflowEnv(registry=registry_of(hostile_task()))
    env.reset("hostile")
    env.step(act("delegate", HOSTILE_SUBTASK, HOSTILE_AGENT))
    observation = env.step(act("delegate", "c", "pair"))  # pair never completes gamma: a failure is logged
    records = env.episode.log.records
    statuses = views.deadline_statuses(observation, records)
    pages = {
        "dag": views.dag_svg(observation, statuses),
        "gantt": views.gantt_svg(observation, records, statuses),
        "agents": views.agent_cards_html(observation, records),
        "deadlines": views.deadlines_html(statuses),
        "status": views.status_html(observation, "<id>", "live"),
        "hint": views.hint_html(
            {**observation, "errors": [{"code": "<x>", "message": f"no agent {HOSTILE_AGENT}"}]}, notice="<notice>"
        ),
    }
    for name, markup in pages.items():
        assert "<script" not in markup, name
        assert "<img" not in markup, name
        assert "<b>bold" not in markup, name
    assert "&lt;script&gt;" in pages["dag"]
    assert "&lt;img src=x onerror=&quot;" in pages["agents"]
    assert "&lt;img" in pages["gantt"] and "&lt;script&gt;" in pages["gantt"]
    assert "b&amp;&lt;b&gt;bold" in pages["deadlines"]
    assert "no agent &lt;img" in pages["hint"] and "&lt;notice&gt;" in pages["hint"]


# --------------------------------------------------------------------------- deadlines


def test_a_deadline_met_on_its_last_tick_is_met() -> None:
    env = WorkflowEnv(registry=registry_of(tiny_task()))
    env.reset("tiny")
    env.step(act("delegate", "a", "solo"))  # a done at t=1
    env.step(act("wait"))
    env.step(act("wait"))
    observation = env.step(act("delegate", "b", "pair"))  # b done at t=4, its deadline
    b = next(s for s in observation["subtasks"] if s["id"] == "b")
    assert b["completed_at"] == 4
    [status] = views.deadline_statuses(observation, env.episode.log.records)
    assert (status.state, status.completed_at) == ("met", 4)
    assert 'data-state="met"' in views.deadlines_html([status])


def test_a_late_deadline_is_missed_and_an_open_one_counts_down() -> None:
    env = WorkflowEnv(registry=registry_of(tiny_task()))
    observation = env.reset("tiny")
    [status] = views.deadline_statuses(observation, [])
    assert (status.state, status.due_in) == ("open", 4)
    env.step(act("delegate", "a", "solo"))
    for _ in range(4):
        observation = env.step(act("wait"))
    [status] = views.deadline_statuses(observation, env.episode.log.records)
    assert status.state == "missed" and status.completed_at is None
    observation = env.step(act("delegate", "b", "pair"))
    [status] = views.deadline_statuses(observation, env.episode.log.records)
    assert (status.state, status.completed_at) == ("missed", 6)


def test_an_episode_that_ends_before_the_deadline_without_the_work_missed_it() -> None:
    observation = {"time_used": 2, "done": True, "subtasks": [{"id": "x", "deadline": 9, "completed_at": None}]}
    [status] = views.deadline_statuses(observation, [])
    assert status.state == "missed"


# --------------------------------------------------------------------------- Gantt and DAG


def test_schedule_bars_follow_the_event_log() -> None:
    records = [
        {"kind": "delegated", "t": 0, "step": 1, "subtask": "a", "agent": "x", "duration": 1},
        {"kind": "completed", "t": 1, "step": 1, "subtask": "a", "agent": "x", "cost": 1.0},
        {"kind": "delegated", "t": 1, "step": 2, "subtask": "b", "agent": "y", "duration": 3},
        {
            "kind": "failed",
            "t": 2,
            "step": 2,
            "subtask": "b",
            "agent": "y",
            "failure": "permanent",
            "cause": "outcome",
            "cost": 1.0,
        },
        {"kind": "delegated", "t": 2, "step": 3, "subtask": "b", "agent": "z", "duration": 4},
        {"kind": "agent_offline", "t": 3, "step": 3, "agent": "x"},
    ]
    bars, offline = views.schedule_bars(records, now=4)
    assert [(b.subtask, b.agent, b.start, b.end, b.outcome) for b in bars] == [
        ("a", "x", 0, 1, "completed"),
        ("b", "y", 1, 2, "failed"),
        ("b", "z", 2, 4, "running"),
    ]
    assert bars[1].detail.startswith("permanent") and bars[2].planned_end == 6
    assert offline == [("x", 3, None)]
    observation = {"agents": [{"name": n} for n in "xyz"], "time_used": 4, "time_limit": 10}
    svg = views.gantt_svg(observation, records)
    assert svg.count('class="wo-bar"') == 3 and 'data-outcome="failed"' in svg
    assert 'class="wo-offline" data-agent="x"' in svg


@pytest.mark.parametrize("task_id", SCENARIOS)
def test_the_dag_layout_puts_every_subtask_after_its_dependencies(task_id: str) -> None:
    observation = WorkflowEnv().reset(task_id)
    positions = views.dag_positions(views.workflow_shape(observation["subtasks"]))
    assert set(positions) == {s["id"] for s in observation["subtasks"]}
    for subtask in observation["subtasks"]:
        for dep in subtask["depends_on"]:
            assert positions[dep][0] < positions[subtask["id"]][0]
    occupied = [(layer, round(y, 6)) for layer, y in positions.values()]
    assert len(set(occupied)) == len(occupied), "two subtasks drawn on top of each other"
    svg = views.dag_svg(observation)
    assert svg.count('class="wo-node"') == len(observation["subtasks"])
    edges = sum(len(s["depends_on"]) for s in observation["subtasks"])
    assert svg.count("marker-end=") == edges


def test_the_dag_recolours_as_the_episode_moves() -> None:
    env = WorkflowEnv()
    before = views.dag_svg(env.reset("easy"))
    after = views.dag_svg(env.step(act("delegate", "technical_design", "tech_lead")))
    assert 'data-subtask="technical_design" data-status="ready"' in before
    assert 'data-subtask="technical_design" data-status="completed"' in after
    assert 'data-subtask="implement_backend" data-status="ready"' in after


def workflow_task_ids() -> list[str]:
    """The tasks with a workflow of named agents: the dashboard draws their DAG and schedule
    (a canvas task's drawings are tested in test_dashboard_canvas.py)."""
    registry = default_registry()
    return [t for t in registry.task_ids() if isinstance(registry.resolve(t).compiled.family, WorkflowFamily)]


@pytest.mark.parametrize("task_id", workflow_task_ids())
def test_every_task_draws_at_every_step_of_a_played_episode(task_id: str) -> None:
    controller = controller_for()
    session = DashboardSession()
    option_key, _, preset = task_id.partition("/")
    snapshot = controller.start(session, option_key, preset or None, 5, None)
    assert snapshot.mode == "live", snapshot.notice
    while True:
        observation = snapshot.observation
        statuses = views.deadline_statuses(observation, snapshot.records)
        dag = views.dag_svg(observation, statuses)
        assert dag.count('class="wo-node"') == observation["subtask_count"]
        gantt = views.gantt_svg(observation, snapshot.records, statuses)
        assert gantt.count('class="wo-bar"') == int(re.search(r'data-bars="(\d+)"', gantt).group(1))
        views.agent_cards_html(observation, snapshot.records)
        views.gauges_html(observation)
        views.reward_svg(snapshot.rewards)
        if controller.is_finished(session):
            break
        snapshot = controller.policy_step(session, "heuristic")
    assert snapshot.grade is not None
    assert 'id="wo-score"' in views.grade_html(snapshot.grade)


@pytest.mark.parametrize("task_id", sorted(set(default_registry().task_ids()) - set(workflow_task_ids())))
def test_a_task_without_named_agents_plays_to_its_grade(task_id: str) -> None:
    controller = controller_for()
    session = DashboardSession()
    option_key, _, preset = task_id.partition("/")
    snapshot = controller.start(session, option_key, preset or None, 5, None)
    assert snapshot.mode == "live", snapshot.notice
    while not controller.is_finished(session):
        views.gauges_html(snapshot.observation)
        snapshot = controller.policy_step(session, "heuristic")
    assert snapshot.grade is not None and 'id="wo-score"' in views.grade_html(snapshot.grade)


def test_the_grade_shows_the_normalised_score_when_it_has_one() -> None:
    grade = {"score": 0.5, "breakdown": {"completion": 0.5}, "weights": {"completion": 1.0}}
    assert "wo-normalized-score" not in views.grade_html(grade)
    shown = views.grade_html({**grade, "normalized_score": 0.625})
    assert 'id="wo-normalized-score">0.625<' in shown
    assert 'data-dimension="completion"' in shown and ">0.500<" in shown


# --------------------------------------------------------------------------- the action form


@pytest.mark.parametrize("task_id", SCENARIOS)
def test_every_form_choice_is_accepted_by_the_environment(task_id: str) -> None:
    """A random walk that only ever uses what the form offers never gets an error."""
    rng = random.Random(task_id)
    env = WorkflowEnv()
    for seed in range(3):
        observation = env.reset(task_id, seed=seed)
        while not observation["done"]:
            menu = action_menu(observation)
            assert menu.kinds, "a running episode always offers something"
            kind = rng.choice(menu.kinds)
            subtask = rng.choice(menu.subtasks_for(kind)) if menu.subtasks_for(kind) else None
            agents = menu.agents_for(kind, subtask)
            agent = rng.choice(agents) if agents else None
            chosen: list[str] = []
            if kind == "dispatch":
                used_s: set[str] = set()
                used_a: set[str] = set()
                for _, s, a in rng.sample(menu.pairs, len(menu.pairs)):
                    if s not in used_s and a not in used_a and len(chosen) < menu.free_slots:
                        chosen.append(pair_value(s, a))
                        used_s.add(s)
                        used_a.add(a)
            action = build_action(menu, kind, subtask, agent, chosen)
            observation = env.step(action)
            assert observation["errors"] == [], (action, observation["errors"])


@pytest.mark.parametrize("task_id", ["arena/easy", "arena/hard"])
def test_an_arena_dispatch_is_made_with_the_form(task_id: str) -> None:
    """An arena's dispatch names subtasks only: the form offers them, and what it builds is accepted."""
    from workflow_orchestrator.server.dashboard.session import anywhere_value

    rng = random.Random(task_id)
    env = WorkflowEnv()
    observation = env.reset(task_id, seed=1)
    dispatched = 0
    while not observation["done"]:
        menu = action_menu(observation)
        assert menu.kinds and not menu.pairs
        legal = {task for action in observation["legal_actions"] for task in action.get("task_ids") or ()}
        assert set(menu.anywhere) == legal
        if "dispatch" in menu.kinds and rng.random() < 0.8:
            chosen = rng.sample(menu.anywhere, min(len(menu.anywhere), menu.free_slots, rng.randint(1, 3)))
            action = build_action(menu, "dispatch", None, None, [anywhere_value(task) for task in chosen])
            assert action == {"action_type": "dispatch", "task_ids": chosen}
            dispatched += 1
        else:
            action = build_action(menu, "wait", None, None, None)
        observation = env.step(action)
        assert observation["errors"] == [], (action, observation["errors"])
    assert dispatched > 3
    with pytest.raises(FormError, match="no longer"):
        menu = action_menu(env.reset(task_id, seed=1))
        build_action(menu, "dispatch", None, None, [anywhere_value("not_a_task")])


def test_the_form_offers_exactly_the_legal_choices() -> None:
    env = WorkflowEnv()
    env.reset("hard")
    observation = env.step(act("delegate", "alert_triage", "triage_analyst"))
    menu = action_menu(observation)
    assert menu.kinds == ("delegate", "dispatch", "wait")
    assert set(menu.subtasks_for("delegate")) == {
        "enrich_logs",
        "check_dashboards",
        "check_dependencies",
        "notify_stakeholders",
        "update_status_page",
    }
    assert menu.agents_for("delegate", "enrich_logs") == ("investigator_alpha", "investigator_beta")
    assert menu.free_slots == 3


def test_the_form_refuses_what_the_environment_would_refuse() -> None:
    env = WorkflowEnv()
    env.reset("hard")
    menu = action_menu(env.step(act("delegate", "alert_triage", "triage_analyst")))
    with pytest.raises(FormError, match="each agent one subtask"):
        build_action(
            menu,
            "dispatch",
            None,
            None,
            [pair_value("enrich_logs", "investigator_beta"), pair_value("check_dashboards", "investigator_beta")],
        )
    with pytest.raises(FormError, match="at most 3"):
        build_action(
            menu,
            "dispatch",
            None,
            None,
            [
                pair_value("enrich_logs", "investigator_beta"),
                pair_value("check_dashboards", "monitor"),
                pair_value("notify_stakeholders", "communicator"),
                pair_value("check_dependencies", "investigator_alpha"),
            ],
        )
    with pytest.raises(FormError, match="no longer possible"):
        build_action(menu, "dispatch", None, None, [pair_value("alert_triage", "triage_analyst")])
    with pytest.raises(FormError, match="idle agent"):
        build_action(menu, "delegate", "enrich_logs", "monitor", None)
    with pytest.raises(FormError, match="kind"):
        build_action(menu, "synthesize", None, None, None)
    assert build_action(menu, "dispatch", None, None, [pair_value("enrich_logs", "investigator_beta")]) == {
        "action_type": "dispatch",
        "assignments": [{"subtask_id": "enrich_logs", "agent_name": "investigator_beta"}],
    }


def test_generated_families_become_one_task_with_presets() -> None:
    options = task_options(
        [
            {"task_id": "easy", "title": "Easy one", "parameters": {"canonical_seed": 3}},
            {"task_id": "arena/easy"},
            {"task_id": "arena/hard"},
        ]
    )
    assert [(o.key, o.presets, o.generated) for o in options] == [
        ("easy", (), False),
        ("arena", ("easy", "hard"), True),
    ]
    assert options[0].canonical_seed == 3


# --------------------------------------------------------------------------- sessions and replays


def test_two_sessions_play_two_episodes() -> None:
    controller = controller_for()
    first, second = DashboardSession(), DashboardSession()
    a = controller.start(first, "easy", None, 5, None)
    b = controller.start(second, "hard", None, None, None)
    assert a.episode_id != b.episode_id
    after = controller.act(first, act("delegate", "technical_design", "tech_lead"))
    assert after.observation["step_count"] == 1
    assert controller.snapshot(second).observation["step_count"] == 0
    assert controller.snapshot(second).observation["task_id"] == "hard"
    hard = next(t for t in default_registry().list_tasks() if t["task_id"] == "hard")
    assert b.observation["seed"] == hard["parameters"]["canonical_seed"]  # the task's own seed when none is given


def test_each_page_keeps_its_own_session_in_a_bounded_store() -> None:
    sessions = DashboardSessions(limit=2)
    first = sessions.get("a", ["<p>opening</p>"])
    assert sessions.get("a") is first and first.sent == {0: hash("<p>opening</p>")}
    second = sessions.get("b")
    assert second is not first
    sessions.get("a")  # a was used last: b is the least recently used
    sessions.get("c")
    assert len(sessions) == 2 and sessions.get("a") is first
    assert sessions.get("b") is not second  # dropped past the bound: a new session
    sessions.drop("a")
    assert sessions.get("a") is not first  # a page that closed drops its own
    assert sessions.get("") is not sessions.get("")  # a call without a page keeps nothing


def test_a_session_is_found_by_its_own_key_only_while_the_store_keeps_it() -> None:
    """The page's JSON routes name a session by its own random key, which goes with the session."""
    sessions = DashboardSessions(limit=2)
    first, second = sessions.get("a"), sessions.get("b")
    assert len(first.key) >= 20 and first.key != second.key
    assert sessions.by_key(first.key) is first and sessions.by_key(second.key) is second
    assert sessions.by_key("") is None and sessions.by_key("a") is None and sessions.by_key(first.key[:-1]) is None
    sessions.by_key(first.key)  # a key's use counts as the page's: b is the least recently used
    sessions.get("c")
    assert sessions.by_key(second.key) is None and sessions.by_key(first.key) is first
    sessions.drop("a")
    assert sessions.by_key(first.key) is None
    assert sessions.by_key(sessions.get("").key) is None  # a call without a page keeps nothing
    assert len(sessions._keys) == len(sessions) == 1


def test_events_carry_no_state_and_show_their_progress_on_one_hidden_component() -> None:
    """Every output and input an event shows its progress on costs the browser a copy of its
    properties at every status change of any event; a gr.State is an input and an output of each."""
    blocks = build_dashboard(EpisodeStore(default_registry(), StoreLimits()))
    config = blocks.get_config_file()
    components = {component["id"]: component for component in config["components"]}
    assert not [c for c in components.values() if c["type"] == "state"]
    anchor = next(c["id"] for c in components.values() if c["props"].get("elem_id") == "wo-progress-anchor")
    assert components[anchor]["props"]["visible"] is False
    events = [event for event in config["dependencies"] if event["backend_fn"] and event["outputs"]]
    assert len(events) > 10
    for event in events:
        assert event["show_progress"] == "hidden" and event["show_progress_on"] == [anchor], event["api_name"]
    outputs = {event["api_name"]: len(event["outputs"]) for event in events}
    assert outputs["on_policy_step"] == outputs["on_step"] == outputs["on_play"] == 15
    assert outputs["on_load"] == 18


@pytest.mark.parametrize("option", range(4))
def test_the_page_arrives_with_the_pictures_a_new_episode_shows(option: int) -> None:
    controller = controller_for()
    chosen = controller.options[option]
    preset = chosen.presets[0] if chosen.presets else None
    opening = opening_pictures(controller, chosen.key, preset)
    snapshot = controller.start(DashboardSession(), chosen.key, preset, None, None)
    drawn = page_pictures(snapshot, views.deadline_statuses(snapshot.observation, snapshot.records))
    assert opening[0] == "" and drawn[0]  # the summary bar names the episode: it waits for the page's own
    assert opening[1:] == drawn[1:]
    assert len(controller.store) == 1  # the opening started no episode in the store


def test_only_what_changed_is_sent_again() -> None:
    session = DashboardSession()
    builds: list[str] = []

    def build(name: str) -> Any:
        builds.append(name)
        return name

    def send(pictures: list[Any], key: str) -> list[Any]:
        return unchanged_skipped(session, pictures, [(key, 1, lambda: build(key)), ("same", 2, lambda: ["a", "b"])])

    assert send(["x", "y"], "k1") == ["x", "y", "k1", "a", "b"]
    again = send(["x", "z"], "k1")
    assert again[1] == "z" and all(value == gr.skip() for i, value in enumerate(again) if i != 1)
    assert send(["x", "z"], "k2")[2] == "k2"
    assert builds == ["k1", "k2"]  # an update is not even built when its key is unchanged


def test_a_policy_plays_to_the_end_and_the_grade_is_the_stores() -> None:
    controller = controller_for()
    session = DashboardSession(policy_name="heuristic")
    controller.start(session, "hard", None, 3, None)
    steps = 0
    while not controller.is_finished(session):
        snapshot = controller.policy_step(session, "heuristic")
        steps += 1
        assert steps < 100
    assert snapshot.grade is not None
    stored = controller.store.get(session.episode_id)
    assert snapshot.grade["score"] == controller.store.grade(stored)["score"]
    assert len(snapshot.rewards) == len(snapshot.trace) == steps
    assert views.history_rows(snapshot.trace, snapshot.rewards)[0][2] == "delegate alert_triage → triage_analyst"


def test_a_replay_reproduces_the_episode_step_by_step() -> None:
    controller = controller_for()
    player = DashboardSession()
    controller.start(player, "expert", None, 2, None)
    live_views = []
    while not controller.is_finished(player):
        live_views.append(controller.policy_step(player, "random"))
    viewer = DashboardSession()
    loaded = controller.load_replay(viewer, player.episode_id, secret_of(controller, player))
    assert loaded.mode == "replay" and loaded.replay_position == (0, len(live_views))
    assert "reproduces the stored event log exactly" in loaded.notice
    for position in (3, len(live_views), 1):  # forwards, to the end, and back
        replayed = controller.seek(viewer, position)
        live = live_views[position - 1]
        assert replayed.observation["subtasks"] == live.observation["subtasks"]
        assert replayed.records == live.records
        assert replayed.rewards == live.rewards
    end = controller.seek(viewer, 10**6)
    assert end.replay_position == (len(live_views), len(live_views))
    assert end.grade is not None and end.grade["score"] == live_views[-1].grade["score"]
    assert controller.leave_replay(viewer).mode == "empty"


def test_a_sealed_episode_replays_with_its_own_outcomes() -> None:
    controller = DashboardController(EpisodeStore(default_registry(), StoreLimits(), outcome_secret="sealed"))
    player = DashboardSession()
    controller.start(player, "hard", None, 4, None)
    while not controller.is_finished(player):
        last = controller.policy_step(player, "heuristic")
    viewer = DashboardSession()
    loaded = controller.load_replay(viewer, player.episode_id, secret_of(controller, player))
    assert "reproduces the stored event log exactly" in loaded.notice
    assert controller.seek(viewer, 10**6).records == last.records


@pytest.mark.parametrize(("task_id", "preset", "workers"), [("hard", None, None), ("arena", "hard", 3)])
def test_an_archived_sealed_episode_replays_exactly(
    tmp_path: Path, task_id: str, preset: str | None, workers: int | None
) -> None:
    with Archive(tmp_path / "archive.sqlite3") as archive:
        limits = StoreLimits(max_episodes=1, idle_timeout_s=60)
        store = EpisodeStore(default_registry(), limits, archive=archive, outcome_secret="sealed")
        controller = DashboardController(store)
        player = DashboardSession()
        controller.start(player, task_id, preset, 4, workers)
        while not controller.is_finished(player):
            last = controller.policy_step(player, "heuristic")
        finished = store.get(player.episode_id)
        finished.archived.result(timeout=30)
        secret = finished.secret
        controller.start(DashboardSession(), "easy", None, None, None)  # pushes it out of the store
        assert player.episode_id not in store
        record = archive.get_now(player.episode_id)
        assert record is not None and record.sealed
        viewer = DashboardSession()
        loaded = asyncio.run(controller.load_replay_async(viewer, player.episode_id, secret))
        assert "reproduces the stored event log exactly" in loaded.notice
        assert controller.seek(viewer, 10**6).records == last.records
        # A server with another secret cannot roll the same outcomes, and says so.
        other = EpisodeStore(default_registry(), limits, archive=archive, outcome_secret="another")
        moved = asyncio.run(DashboardController(other).load_replay_async(DashboardSession(), player.episode_id, secret))
        assert "differs from the stored event log" in moved.notice


def test_only_finished_known_episodes_can_be_replayed() -> None:
    controller = controller_for()
    session = DashboardSession()
    controller.start(session, "easy", None, None, None)
    assert "not finished" in controller.load_replay(session, session.episode_id).notice
    assert "unknown episode_id" in controller.load_replay(DashboardSession(), "nope").notice
    assert "Give the id" in controller.load_replay(DashboardSession(), "  ").notice


def test_an_evicted_episode_says_so_instead_of_failing() -> None:
    controller = DashboardController(EpisodeStore(default_registry(), StoreLimits(max_episodes=1)))
    first, second = DashboardSession(), DashboardSession()
    controller.start(first, "easy", None, None, None)
    controller.start(second, "easy", None, None, None)  # the store keeps one: the first is evicted
    snapshot = controller.act(first, act("wait"))
    assert snapshot.mode == "empty" and "no longer on the server" in snapshot.notice
    assert first.episode_id is None


def test_bad_reset_parameters_become_a_notice() -> None:
    controller = controller_for()
    snapshot = controller.start(DashboardSession(), "easy", None, -4, None)
    assert snapshot.mode == "empty" and "seed must be between" in snapshot.notice


# --------------------------------------------------------------------------- openenv's gradio_builder


def test_the_dashboard_plugs_into_openenvs_gradio_builder() -> None:
    """openenv's own web interface accepts the builder and mounts it at /web.

    In a child process: this package's server module keeps openenv's web
    interface module from being imported, so it is imported first there.
    """
    script = textwrap.dedent(
        """
        import json
        from openenv.core.env_server.web_interface import create_web_interface_app
        from fastapi.testclient import TestClient
        from workflow_orchestrator.models import WorkflowAction, WorkflowObservation
        from workflow_orchestrator.server.dashboard import gradio_builder
        from workflow_orchestrator.server.environment import EpisodeStore, StoreLimits, WorkflowEnvironment
        from workflow_orchestrator.server.tasks import default_registry

        store = EpisodeStore(default_registry(), StoreLimits())
        def make_environment():
            return WorkflowEnvironment(store)
        app = create_web_interface_app(make_environment, WorkflowAction, WorkflowObservation,
                                       gradio_builder=gradio_builder(store), show_default_tab=False)
        with TestClient(app) as client:
            page = client.get("/web/")
            config = client.get("/web/config").json()
        ids = sorted(c.get("props", {}).get("elem_id") or "" for c in config["components"])
        print(json.dumps({"status": page.status_code, "ids": [i for i in ids if i.startswith("wo-")]}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    assert {"wo-main", "wo-details", "wo-step", "wo-reset", "wo-status"} <= set(answer["ids"])


def test_the_theme_names_no_web_font() -> None:
    from workflow_orchestrator.server.dashboard import dashboard_theme

    theme = dashboard_theme()
    assert theme._stylesheets == [] and not theme._font_css
    text = json.dumps(theme.to_dict())
    # Data URIs (Gradio's checkbox ticks) load nothing; any other url(...) would.
    assert not re.search(r"url\((?![\\\"']*data:)", text), text
    assert "googleapis" not in text


def test_the_dashboard_is_imported_only_when_the_web_ui_is_on() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        from workflow_orchestrator.server.app import ServerSettings, build_app
        off = build_app(ServerSettings(enable_web=False, enable_archive=False))
        imported_when_off = [name for name in ("gradio", "workflow_orchestrator.server.dashboard")
                             if name in sys.modules]
        on = build_app(ServerSettings(enable_web=True, enable_archive=False))
        print(json.dumps({
            "imported_when_off": imported_when_off,
            "off_paths": sorted({getattr(r, "path", "") for r in off.router.routes if "web" in getattr(r, "path", "")}),
            "on_paths": sorted({getattr(r, "path", "") for r in on.router.routes if "web" in getattr(r, "path", "")}),
        }))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["imported_when_off"] == []
    assert answer["off_paths"] == []
    assert "/web" in answer["on_paths"]


def test_a_finished_episode_is_replayed_from_the_archive_after_it_left_the_store(tmp_path: Path) -> None:
    with Archive(tmp_path / "archive.sqlite3") as archive:
        store = EpisodeStore(default_registry(), StoreLimits(max_episodes=1, idle_timeout_s=60), archive=archive)
        controller = DashboardController(store)
        player = DashboardSession()
        controller.start(player, "arena", "hard", 5, 3)
        live = []
        while not controller.is_finished(player):
            live.append(controller.policy_step(player, "heuristic"))
        finished = store.get(player.episode_id)
        assert finished.archived is not None and finished.archived.result(timeout=30) > 0
        secret = finished.secret
        controller.start(DashboardSession(), "easy", None, None, None)  # pushes it out of the store
        assert player.episode_id not in store
        viewer = DashboardSession()
        # Archived, it is shown under the same rule: not without its secret, nor with another one.
        for given in (None, "not-its-secret"):
            refused = asyncio.run(controller.load_replay_async(viewer, player.episode_id, given))
            assert refused.mode == "empty" and viewer.replay is None and refused.records == []
            assert ("episode_secret" if given is None else "does not open") in refused.notice
        refused = asyncio.run(controller.open_episode_async(viewer, player.episode_id))
        assert refused.mode == "empty" and "episode_secret" in refused.notice
        loaded = asyncio.run(controller.load_replay_async(viewer, player.episode_id, secret))
        assert loaded.mode == "replay" and loaded.replay_position == (0, len(live))
        assert "reproduces the stored event log exactly" in loaded.notice
        assert loaded.share.endswith(f"#secret={secret}")
        # The browser that played it opens it again with what it already holds.
        again = asyncio.run(controller.open_episode_async(player, player.episode_id, step=2))
        assert again.mode == "replay" and again.replay_position == (2, len(live))
        end = controller.seek(viewer, len(live))
        assert end.grade is not None and end.grade["score"] == live[-1].grade["score"]
        unknown = asyncio.run(controller.load_replay_async(DashboardSession(), "nope"))
        assert "unknown episode_id" in unknown.notice


def test_a_replay_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading or seeking a replay re-simulates the episode in a worker thread: the loop keeps serving."""
    import asyncio
    import time

    from workflow_orchestrator.server.dashboard import build_dashboard

    def slow_replay(self: DashboardController, session: DashboardSession, *args: Any) -> Any:
        time.sleep(0.6)  # stands for a long re-simulation
        return self.snapshot(session, notice="replayed")

    monkeypatch.setattr(DashboardController, "open_episode", slow_replay)
    monkeypatch.setattr(DashboardController, "seek", slow_replay)
    blocks = build_dashboard(EpisodeStore(default_registry(), StoreLimits()))
    handlers = {getattr(block_fn.fn, "__name__", ""): block_fn.fn for block_fn in blocks.fns.values()}

    async def measure(call: Any) -> float:
        gaps = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        await call
        await asyncio.sleep(0.05)  # the ticker records the gap the call may have left
        ticking.cancel()
        return max(gaps)

    page = SimpleNamespace(session_hash="one-page")  # what the handlers read of Gradio's request
    assert asyncio.run(measure(handlers["on_open"]("some-episode", None, page))) < 0.3
    assert asyncio.run(measure(handlers["on_seek"](3, page))) < 0.3


# --------------------------------------------------------------------------- readability and explanations


def relative_luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_on_coloured_shapes_has_a_contrast_of_at_least_4_5() -> None:
    for status, (fill, ink) in views.STATUS_COLOURS.items():
        assert contrast(fill, ink) >= 4.5, status
    for outcome, fill in views.OUTCOME_COLOURS.items():
        assert contrast(fill, views.BAR_INK[outcome]) >= 4.5, outcome
    for verdict, colour in views.BADGE_COLOURS.items():
        assert contrast(colour, "#ffffff") >= 4.5, verdict
    for status, colour in views.AGENT_STATUS_COLOURS.items():
        assert contrast(colour, "#ffffff") >= 4.5, status


def test_both_themes_give_every_text_variable_a_contrast_of_at_least_4_5() -> None:
    from workflow_orchestrator.server.dashboard.blocks import DASHBOARD_CSS

    light_block, dark_block = re.findall(r"\.gradio-container \{(.*?)\}", DASHBOARD_CSS, re.S)
    for block in (light_block, dark_block):
        colours = dict(re.findall(r"--wo-([a-z-]+): (#[0-9a-f]{6})", block))
        for ink, ground in (
            ("ink", "bg"),
            ("muted", "bg"),
            ("muted", "alt"),
            ("ink", "alt"),
            ("hint-ink", "hint-bg"),
            ("notice-ink", "notice-bg"),
            ("error-ink", "error-bg"),
            ("chip-ink", "chip-bg"),
            ("met", "bg"),
            ("missed", "bg"),
            ("open", "bg"),
            ("now", "bg"),
            ("accent", "bg"),
            ("total", "bg"),
        ):
            assert contrast(colours[ink], colours[ground]) >= 4.5, (ink, ground, block[:40])


def crossings_of_declared_order(shape: Any) -> int:
    return views.dag_layout(shape).initial_crossings


@pytest.mark.parametrize("task_id", ["arena/hard", "arena/medium", "generated/hard", "hard", "expert"])
def test_the_dag_layout_keeps_layers_and_removes_crossings(task_id: str) -> None:
    observation = WorkflowEnv().reset(task_id, seed=3)
    shape = views.workflow_shape(observation["subtasks"])
    layout = views.dag_layout(shape)
    positions = views.dag_positions(shape)
    for subtask in observation["subtasks"]:
        for dep in subtask["depends_on"]:
            assert positions[dep][0] < positions[subtask["id"]][0]
    assert layout.crossings <= layout.initial_crossings
    # Every edge that skips layers goes through a lane of its own in each layer it crosses.
    for dep, node in layout.edges:
        for layer in range(positions[dep][0] + 1, positions[node][0]):
            assert layout.slot[(dep, node, layer)][0] == layer


def test_the_big_arena_dag_has_fewer_crossings_than_its_declared_order() -> None:
    observation = WorkflowEnv().reset("arena/hard", seed=0)
    layout = views.dag_layout(views.workflow_shape(observation["subtasks"]))
    assert layout.crossings < layout.initial_crossings * 0.8, (layout.crossings, layout.initial_crossings)


def test_the_critical_path_is_the_longest_chain_of_work() -> None:
    shape = (("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c")))
    assert views.critical_path(shape, (1, 1, 5, 1)) == ("a", "c", "d")
    assert views.critical_path(shape, (1, 4, 1, 1)) == ("a", "b", "d")


@pytest.mark.parametrize("task_id", [*SCENARIOS, "arena/hard"])
def test_the_dag_marks_the_cores_critical_path(task_id: str) -> None:
    observation = WorkflowEnv().reset(task_id, seed=2)
    svg = views.dag_svg(observation)
    durations = views.fastest_durations(observation)
    chain = views.critical_path(views.workflow_shape(observation["subtasks"]), durations)
    ids = [s["id"] for s in observation["subtasks"]]
    assert sum(durations[ids.index(node)] for node in chain) == observation["critical_path_length"]
    assert svg.count('data-critical="true"') == len(chain)
    assert svg.count('class="wo-edge-critical"') == len(chain) - 1


@pytest.mark.parametrize("task_id", ["arena/hard", "hard"])
def test_no_picture_draws_text_below_11_px_nor_shrinks(task_id: str) -> None:
    controller = controller_for()
    session = DashboardSession()
    family, _, preset = task_id.partition("/")
    snapshot = controller.start(session, family, preset or None, 2, None)
    for _ in range(6):
        snapshot = controller.policy_step(session, "heuristic")
    observation = snapshot.observation
    statuses = views.deadline_statuses(observation, snapshot.records)
    for markup in (
        views.dag_svg(observation, statuses),
        views.gantt_svg(observation, snapshot.records, statuses),
        views.reward_svg(snapshot.rewards),
    ):
        sizes = [float(size) for size in re.findall(r'font-size="([0-9.]+)"', markup)]
        assert sizes and min(sizes) >= views.MIN_FONT_PX
    # The DAG and the Gantt are drawn at their natural size (the page scrolls them), never squeezed.
    dag = views.dag_svg(observation, statuses)
    width = re.search(r'viewBox="0 0 (\d+) \d+" width="(\d+)"', dag)
    assert width and width.group(1) == width.group(2)
    gantt = views.gantt_svg(observation, snapshot.records, statuses)
    assert 'class="wo-gantt-names"' in gantt
    # Bars and names are never shortened; a deadline label may be, when its title carries the full id.
    deadline = re.compile(r'<g class="wo-deadline-line[^"]*" data-subtask="([^"]+)"[^>]*><title>([^<]*)</title>.*?</g>')
    for match in deadline.finditer(gantt):
        assert match.group(2).startswith(match.group(1) + " ")
    assert "…" not in deadline.sub("", gantt)


EMOJI_FREE = re.compile(r"[^\u0000-\u024f\u2013\u2014\u2018-\u201d\u2026\u2190-\u2193\u2212\u2264\u2265\u00b7]")


def test_no_picture_needs_an_emoji_font() -> None:
    controller = controller_for()
    session = DashboardSession()
    controller.start(session, "hard", None, None, None)
    while not controller.is_finished(session):
        snapshot = controller.policy_step(session, "heuristic")
    observation = snapshot.observation
    statuses = views.deadline_statuses(observation, snapshot.records)
    for markup in (
        views.dag_svg(observation, statuses),
        views.gantt_svg(observation, snapshot.records, statuses),
        views.deadlines_html(statuses),
        views.status_html(observation, "x", "live", grade=snapshot.grade, statuses=statuses, task=snapshot.task),
        views.grade_html(snapshot.grade),
        views.hint_html(observation),
        views.agent_cards_html(observation, snapshot.records),
    ):
        assert EMOJI_FREE.findall(markup) == []


def test_every_grade_dimension_has_its_definition() -> None:
    from workflow_orchestrator.server.core.dimensions import ARENA_DIMENSIONS, SCENARIO_DIMENSIONS
    from workflow_orchestrator.vocabulary import GRADE_DIMENSIONS

    assert set(SCENARIO_DIMENSIONS) == set(GRADE_DIMENSIONS)
    env = WorkflowEnv()
    env.reset("arena/easy", seed=1)
    plain = set(env.grade()["breakdown"])
    env.reset("arena/expert", seed=1)  # a task with a budget adds the cost part
    assert set(ARENA_DIMENSIONS) == plain | set(env.grade()["breakdown"])
    grade = {"score": 0.5, "breakdown": {"patience": 0.0, "budget": 1.0}, "weights": {"patience": 0.5, "budget": 0.5}}
    shown = views.grade_html(grade)
    assert views.esc(SCENARIO_DIMENSIONS["patience"]) in shown
    assert "activity gate" in shown.split('data-dimension="budget"')[1]


def test_the_summary_says_where_points_were_lost() -> None:
    grade = {
        "score": 0.61,
        "normalized_score": 0.7,
        "breakdown": {"completion": 1.0, "deadlines": 0.5, "patience": 0.0, "budget": 0.9},
        "weights": {"completion": 0.4, "deadlines": 0.3, "patience": 0.2, "budget": 0.1},
    }
    assert views.lost_points(grade) == [("deadlines", pytest.approx(0.15)), ("patience", pytest.approx(0.2))][::-1] + [
        ("budget", pytest.approx(0.01))
    ]
    observation = {**WorkflowEnv().reset("hard"), "done": True, "terminated": True}
    bar = views.status_html(observation, "abc", "live", grade=grade, task={"title": "T", "description": "D <x>"})
    assert 'id="wo-summary-score">0.610<' in bar and 'id="wo-summary-normalized">0.700<' in bar
    assert bar.index('data-dimension="patience"') < bar.index('data-dimension="deadlines"')
    assert "D &lt;x&gt;" in bar and 'href="?episode=abc"' not in bar  # the share query comes from the snapshot
    running = views.status_html(
        WorkflowEnv().reset("hard"), "abc", "live", share="?episode=abc#secret=s", export="export/abc.json?secret=s"
    )
    assert "budget 0 of 40" in running and 'href="?episode=abc#secret=s"' in running
    assert 'href="export/abc.json?secret=s"' in running


# --------------------------------------------------------------------------- watching, comparing, exporting


def test_a_running_episode_of_another_client_is_watched_as_it_is_played() -> None:
    controller = controller_for()
    player, viewer = DashboardSession(), DashboardSession()
    controller.start(player, "hard", None, None, None)
    controller.start(viewer, "easy", None, None, None)
    watched = controller.open_episode(viewer, player.episode_id, secret=secret_of(controller, player))
    assert watched.mode == "watch" and watched.episode_id == player.episode_id and not watched.menu.kinds
    key = controller.change_key(viewer)
    assert controller.change_key(viewer) == key  # nothing happened: nothing to redraw
    controller.policy_step(player, "heuristic")
    assert controller.change_key(viewer) != key
    again = controller.snapshot(viewer)
    assert again.observation["step_count"] == 1 and len(again.trace) == 1
    while not controller.is_finished(player):
        controller.policy_step(player, "heuristic")
    assert controller.snapshot(viewer).grade is not None
    # Opened again once finished, it is a replay; leaving returns to the viewer's own episode.
    assert controller.open_episode(viewer, player.episode_id).mode == "replay"
    assert controller.leave_replay(viewer).episode_id == viewer.episode_id
    assert "unknown episode_id" in controller.open_episode(viewer, "nope").notice


def test_a_comparison_lines_two_episodes_up() -> None:
    from workflow_orchestrator.server.dashboard.session import compare_episodes, first_divergence

    assert first_divergence([{"action": 1}, {"action": 2}], [{"action": 1}, {"action": 3}]) == 2
    assert first_divergence([{"action": 1}], [{"action": 1}, {"action": 3}]) == 2
    assert first_divergence([{"action": 1}], [{"action": 1}]) is None
    controller = controller_for()
    session = DashboardSession()
    controller.start(session, "hard", None, None, None)
    while not controller.is_finished(session):
        controller.policy_step(session, "greedy")
    result = compare_episodes(controller.store, session.episode_id, "heuristic")
    assert not isinstance(result, str)
    markup = views.compare_html(result.first, result.second, result.divergence)
    horizons = set(re.findall(r'data-horizon="(\d+)"', markup))
    assert len(horizons) == 1  # one time axis for both
    assert markup.count('class="wo-gantt"') == 2 and 'id="wo-compare-score-1"' in markup
    same = compare_episodes(controller.store, session.episode_id, session.episode_id)
    assert not isinstance(same, str) and same.divergence is None
    assert isinstance(compare_episodes(controller.store, "nope", "heuristic"), str)


def test_an_exported_episode_replays_to_the_same_grade() -> None:
    from workflow_orchestrator.server.dashboard.session import export_episode

    controller = controller_for()
    session = DashboardSession()
    controller.start(session, "arena", "medium", 7, 4)
    while not controller.is_finished(session):
        controller.policy_step(session, "heuristic")
    document = json.loads(json.dumps(export_episode(controller.store.get(session.episode_id))))
    assert document["replay_verified"] and document["reset"] == {
        "task_id": "arena/medium",
        "seed": 7,
        "worker_count": 4,
    }
    assert len(document["observations"]) == len(document["actions"]) + 1 == document["step_count"] + 1
    env = WorkflowEnv()
    env.reset(**document["reset"])
    for action in document["actions"]:
        env.step(action)
    assert env.grade() == document["grade"]
    assert document["events"] == env.episode.log.records


# --------------------------------------------------------------------------- who may see an episode


def test_another_episode_is_shown_only_with_its_secret_or_the_token() -> None:
    controller = controller_for(token="the-server-token")
    player, viewer = DashboardSession(), DashboardSession()
    controller.start(player, "hard", None, 3, None)
    controller.policy_step(player, "heuristic")
    controller.start(viewer, "easy", None, None, None)
    secret = secret_of(controller, player)
    for given in (None, "", "a guess", secret[:-1]):
        refused = controller.open_episode(viewer, player.episode_id, secret=given)
        # The page says why, and shows the viewer's own episode: nothing of the other one.
        assert refused.mode == "live" and refused.episode_id == viewer.episode_id
        assert ("episode_secret" if not given else "does not open") in refused.notice
        assert viewer.watch_id is None and viewer.replay is None and controller.change_key(viewer) == ()
        assert player.episode_id not in refused.share and player.episode_id not in refused.export
    assert isinstance(controller.compare(viewer, player.episode_id, "heuristic"), str)
    assert isinstance(controller.compare(viewer, viewer.episode_id, player.episode_id), str)
    # Its secret opens it, and the links to the view carry it; then this browser holds it.
    watched = controller.open_episode(viewer, player.episode_id, secret=secret)
    assert watched.mode == "watch" and watched.episode_id == player.episode_id
    assert watched.share == f"?episode={player.episode_id}#secret={secret}"
    assert watched.export == f"export/{player.episode_id}.json?secret={secret}"
    assert controller.open_episode(viewer, player.episode_id).mode == "watch"
    # The server's token opens any episode.
    other = DashboardSession()
    assert controller.open_episode(other, player.episode_id, secret="the-server-token").mode == "watch"
    # Finished, it replays and compares under the same rule.
    while not controller.is_finished(player):
        controller.policy_step(player, "heuristic")
    stranger = DashboardSession()
    assert controller.load_replay(stranger, player.episode_id).mode == "empty"
    assert "episode_secret" in controller.open_episode(stranger, player.episode_id).notice
    assert controller.open_episode(viewer, player.episode_id).mode == "replay"
    assert not isinstance(controller.compare(viewer, player.episode_id, "heuristic"), str)
    # A browser's own episode needs nothing, even once it started another one.
    own = controller.open_episode(player, player.episode_id)
    assert own.mode == "live" and own.share.endswith(f"#secret={secret}")
    first = player.episode_id
    controller.start(player, "easy", None, None, None)
    assert controller.open_episode(player, first).mode == "replay"


def test_the_export_route_needs_the_secret_or_the_token() -> None:
    from fastapi.testclient import TestClient

    from workflow_orchestrator.server.app import ServerSettings, build_app

    app = build_app(ServerSettings(enable_web=True, enable_archive=False, api_token="the-server-token"))
    bearer = {"Authorization": "Bearer the-server-token"}
    with TestClient(app, headers=bearer) as client:
        answer = client.post("/reset", json={"task_id": "easy"}).json()
        episode_id, secret = answer["observation"]["episode_id"], answer["episode_secret"]
        url = f"/web/export/{episode_id}.json"
        refused = client.get(url)
        assert refused.status_code == 403 and "episode_secret" in refused.json()["detail"]
        assert client.get(url, params={"secret": "a guess"}).status_code == 403
        assert client.get(url, headers={"X-Episode-Secret": secret}).json()["episode_id"] == episode_id
        for given in (secret, "the-server-token"):
            reply = client.get(url, params={"secret": given})
            assert reply.status_code == 200 and reply.json()["reset"] == {
                "task_id": "easy",
                "seed": answer["observation"]["seed"],
            }
        assert client.get("/web/export/nope.json", params={"secret": secret}).status_code == 404


def test_an_episode_that_left_the_store_is_exported_and_compared_from_the_archive(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from workflow_orchestrator.server.app import ServerSettings, build_app
    from workflow_orchestrator.server.dashboard.session import export_episode

    settings = ServerSettings(
        enable_web=True, archive_path=str(tmp_path / "archive.sqlite3"), max_episodes=1, max_episodes_per_client=1
    )
    app = build_app(settings)
    with TestClient(app) as client:
        answer = client.post("/reset", json={"task_id": "arena/medium", "seed": 7, "worker_count": 4}).json()
        played, secret = answer["observation"]["episode_id"], answer["episode_secret"]
        policy = make_policy("heuristic", seed=7)
        while not answer["done"]:
            answer = client.post(
                "/step", json={"episode_id": played, "action": policy.act(answer["observation"])}
            ).json()
        store = app.state.store
        exported_live = json.loads(json.dumps(export_episode(store.get(played))))
        store.get(played).archived.result(timeout=30)
        client.post("/reset", json={"task_id": "easy"})  # pushes it out of the store
        assert played not in store
        url = f"/web/export/{played}.json"
        assert client.get(url).status_code == 403
        assert client.get(url, params={"secret": "a guess"}).status_code == 403
        reply = client.get(url, params={"secret": secret})
        assert reply.status_code == 200
        document = reply.json()
        # The same document as while it was in the store.
        assert document == exported_live and document["replay_verified"]
        controller = DashboardController(store)
        viewer = DashboardSession()
        controller.start(viewer, "easy", None, None, None)
        refused = asyncio.run(controller.compare_async(viewer, played, "greedy"))
        assert isinstance(refused, str) and "episode_secret" in refused
        compared = asyncio.run(controller.compare_async(viewer, played, "greedy", secret))
        assert not isinstance(compared, str)
        assert compared.first.grade == document["grade"] and compared.first.trace == document["trace"]
        assert compared.second.label.startswith("policy greedy")
        mirrored = asyncio.run(controller.compare_async(viewer, played, played))
        assert not isinstance(mirrored, str) and mirrored.divergence is None
