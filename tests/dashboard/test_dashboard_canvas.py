"""The dashboard's view of a canvas episode (tasks canvas/*), without a browser:
the canvas as a graph that changes every edit, the feedback, the form built
from legal_actions, the grade's help texts, and replay, compare and export of
canvas episodes (sealed ones too)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from workflow_orchestrator.server.core.dimensions import CANVAS_DIMENSIONS
from workflow_orchestrator.server.dashboard import canvas, views
from workflow_orchestrator.server.dashboard.blocks import form_updates, page_pictures
from workflow_orchestrator.server.dashboard.session import (
    DashboardController,
    DashboardSession,
    FormError,
    Snapshot,
    action_menu,
    build_action,
    compare_episodes,
    edit_value,
    export_episode,
)
from workflow_orchestrator.server.environment import EpisodeStore, StoreLimits
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.vocabulary import CANVAS_GRADE_DIMENSIONS

# Every kind of node: a parallel structure, an operator, a loop and a conditional.
EDITS: list[dict[str, Any]] = [
    {"action_type": "add", "operator": "Plan"},
    {"action_type": "add", "structure": "parallel", "operators": ["Programmer", "Programmer", "Programmer"]},
    {"action_type": "add", "operator": "ScEnsemble"},
    {"action_type": "add", "structure": "loop", "operators": ["Test", "Revise"], "count": 2},
    {"action_type": "add", "structure": "conditional", "operators": ["Review", "Revise", "Format"]},
    {"action_type": "set_prompt", "target": 1, "prompt": "concise"},
]


def controller(secret: str | None = None) -> DashboardController:
    return DashboardController(EpisodeStore(default_registry(), StoreLimits(), outcome_secret=secret))


def contrast(first: str, second: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_canvas_graph_changes_with_every_edit() -> None:
    env = WorkflowEnv()
    observation = env.reset("canvas/code", seed=3)
    drawn = [canvas.canvas_svg(observation)]
    assert 'data-nodes="0"' in drawn[0] and "empty canvas" in drawn[0]
    for edit in EDITS:
        observation = env.step(edit)
        assert observation["errors"] == [], observation["errors"]
        drawn.append(canvas.canvas_svg(observation))
    assert len(set(drawn)) == len(drawn)
    last = drawn[-1]
    view = observation["canvas"]
    assert f'data-dsl="{views.esc(view["dsl"])}"' in last
    assert 'data-kinds="operator,parallel,operator,loop,conditional"' in last
    # One box per operator (a loop's body once), each by its role.
    assert last.count('class="wo-op"') == sum(len(node["operators"]) for node in view["nodes"])
    assert 'data-operator="Programmer" data-role="solver"' in last
    assert "repeat x2" in last and ">flagged<" in last and ">else<" in last
    assert ">node 1<" in last and ">prompt concise<" in last
    assert 'data-state="not executed"' in last
    executed = canvas.canvas_svg(env.step({"action_type": "execute"}))
    assert 'data-state="executed"' in executed
    assert 'data-state="changed since executed"' in canvas.canvas_svg(env.step({"action_type": "delete", "target": 5}))


def test_labels_are_at_least_11_px_and_every_box_reads() -> None:
    env = WorkflowEnv()
    env.reset("canvas/qa", seed=1)
    for edit in EDITS:
        observation = env.step(edit)
    drawn = canvas.canvas_svg(observation)
    assert min(int(size) for size in re.findall(r'font-size="(\d+)"', drawn)) >= 11
    # The SVG is drawn at its own size (it scrolls sideways rather than shrink).
    width = re.search(r'viewBox="0 0 (\d+) ', drawn).group(1)  # type: ignore[union-attr]
    assert f'width="{width}"' in drawn
    for role, (fill, ink, _stroke) in canvas.ROLE_COLOURS.items():
        assert contrast(fill, ink) >= 4.5, role
    assert set(canvas.ROLE_COLOURS) == {op["role"] for op in observation["canvas"]["operators"]}


def test_the_form_offers_exactly_the_legal_actions() -> None:
    env = WorkflowEnv()
    env.reset("canvas/math", seed=2)
    for edit in EDITS[:3]:
        observation = env.step(edit)
    menu = action_menu(observation)
    assert menu.canvas and menu.kinds == ("add", "delete", "modify", "set_prompt", "execute", "finish")
    offered = [json.loads(value) for choices in menu.edits.values() for _, value in choices]
    offered += [{"action_type": "execute"}, {"action_type": "finish"}]
    assert sorted(map(edit_value, offered)) == sorted(map(edit_value, observation["legal_actions"]))
    label, value = menu.edits["modify"][0]
    assert label.startswith("node 1: Plan → ")
    assert build_action(menu, "modify", value, None, None) == json.loads(value)
    assert build_action(menu, "execute", None, None, None) == {"action_type": "execute"}
    assert build_action(menu, "finish", None, None, None, "  ") == {"action_type": "finish"}
    assert build_action(menu, "finish", None, None, None, " 42 ") == {"action_type": "finish", "answer": "42"}
    with pytest.raises(FormError):
        build_action(menu, "delete", edit_value({"action_type": "delete", "target": 9}), None, None)
    # The form: the kind, the edits of that kind, no agent or dispatch, the answer for finish only.
    kind, edits, agent, dispatch, answer = form_updates(menu, "delete")
    assert kind["value"] == "delete" and edits["visible"] and edits["value"] == menu.edits["delete"][0][1]
    assert not agent["visible"] and not dispatch["visible"] and not answer["visible"]
    assert form_updates(menu, "finish")[4]["visible"] and not form_updates(menu, "finish")[1]["visible"]


def test_a_canvas_episode_draws_at_every_step_and_its_grade_explains_itself() -> None:
    control = controller()
    session = DashboardSession(policy_name="template")
    snapshot = control.start(session, "canvas", "code", 4, None)
    pictures: list[str] = []
    while True:
        pictures = page_pictures(snapshot, [])
        assert 'class="wo-canvas"' in pictures[2] and f'data-step="{snapshot.observation["step_count"]}"' in pictures[2]
        assert 'id="wo-problem"' in pictures[3] and 'id="wo-execution"' in pictures[4]
        assert 'id="wo-operators"' in pictures[5] and 'id="wo-canvas-rules"' in pictures[6]
        assert "t=None" not in pictures[0] and "rounds left" in pictures[0]
        if control.is_finished(session):
            break
        snapshot = control.policy_step(session, "template")
    assert 'data-state="current"' in pictures[4] and "Verdict" in pictures[4]
    grade = snapshot.grade
    assert grade is not None and 'id="wo-summary-score"' in pictures[0]
    for name in grade["breakdown"]:
        assert views.esc(CANVAS_DIMENSIONS[name]) in pictures[8]
    assert "validity gate" in pictures[8] and 'id="wo-final-dsl"' in pictures[8]
    assert "add Plan" in pictures[9] and "finish" in pictures[9]
    assert set(CANVAS_DIMENSIONS) == set(CANVAS_GRADE_DIMENSIONS)


@pytest.mark.parametrize("secret", [None, "an outcome secret"])
def test_replay_compare_and_export_reproduce_a_canvas_episode(secret: str | None) -> None:
    control = controller(secret)
    owner = DashboardSession(policy_name="heuristic")
    control.start(owner, "canvas", "math", 3, None)
    while not control.is_finished(owner):
        control.policy_step(owner, "heuristic")
    assert owner.episode_id is not None
    stored = control.store.get(owner.episode_id)
    score = stored.env.grade()["score"]
    viewer = DashboardSession()
    control.start(viewer, "canvas", "qa", 1, None)
    replay = control.open_episode(viewer, owner.episode_id, None, stored.secret)
    assert replay.mode == "replay" and "reproduces the stored event log exactly" in replay.notice
    end = control.seek(viewer, 10_000)
    assert end.grade is not None and end.grade["score"] == score
    assert 'class="wo-canvas"' in page_pictures(end, [])[2]
    assert export_episode(stored)["replay_verified"] is True
    compared = compare_episodes(control.store, owner.episode_id, "heuristic")
    assert not isinstance(compared, str)
    assert compared.divergence is None and compared.second.grade is not None
    assert compared.second.grade["score"] == score
    shown = views.compare_html(compared.first, compared.second, compared.divergence, canvas.canvas_svg)
    assert shown.count('class="wo-canvas"') == 2 and "wo-gantt" not in shown


def test_an_invalid_edit_shows_its_error_beside_the_problem() -> None:
    env = WorkflowEnv()
    env.reset("canvas/math", seed=0)
    observation = env.step({"action_type": "execute"})
    shown = canvas.problem_html(observation)
    assert "empty_canvas" in shown and "Last action was invalid" in shown
    snapshot = Snapshot("live", "x", observation, [], env.episode.trace, [], None)  # type: ignore[union-attr]
    assert "execute" in views.history_html(snapshot.trace, [0.0]) and "empty_canvas" in views.history_html(
        snapshot.trace, [0.0]
    )
