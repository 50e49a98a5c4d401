"""The canvas and its DSL: structures within the grammar, the DSL round-trips,
edits never raise anything but EditError and never leave the grammar."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_orchestrator.server.core.canvas import EditError, Node, apply_edit, parse_dsl, render_dsl
from workflow_orchestrator.server.core.canvas.operators import (
    CHECKERS,
    GRAMMAR,
    OPERATOR_NAMES,
    PROMPT_STYLES,
)

names = st.sampled_from(OPERATOR_NAMES)
styles = st.sampled_from(PROMPT_STYLES)

nodes = st.one_of(
    st.builds(lambda n, s: Node("operator", (n,), 1, s), names, styles),
    st.builds(
        lambda ops, s: Node("parallel", tuple(ops), 1, s),
        st.lists(names, min_size=GRAMMAR.min_parallel, max_size=GRAMMAR.max_parallel),
        styles,
    ),
    st.builds(lambda c, t, f, s: Node("conditional", (c, t, f), 1, s), st.sampled_from(CHECKERS), names, names, styles),
    st.builds(
        lambda ops, n, s: Node("loop", tuple(ops), n, s),
        st.lists(names, min_size=1, max_size=GRAMMAR.max_loop_body),
        st.integers(GRAMMAR.min_loop_count, GRAMMAR.max_loop_count),
        styles,
    ),
)
canvases = st.lists(nodes, max_size=GRAMMAR.max_nodes).map(tuple)


def well_formed(canvas: tuple[Node, ...]) -> bool:
    return len(canvas) <= GRAMMAR.max_nodes and parse_dsl(render_dsl(canvas)) == canvas


@given(canvases)
@settings(max_examples=150, deadline=None)
def test_the_dsl_round_trips(canvas: tuple[Node, ...]) -> None:
    assert parse_dsl(render_dsl(canvas)) == canvas
    # Spacing does not matter.
    assert parse_dsl(render_dsl(canvas).replace(" ", "")) == canvas


def test_the_published_dsl_forms() -> None:
    canvas = parse_dsl("Plan -> [Programmer, Custom] -> ScEnsemble -> Verify ? Revise : Format -> (Test -> Revise) * 2")
    assert [node.kind for node in canvas] == ["operator", "parallel", "operator", "conditional", "loop"]
    assert canvas[4].operators == ("Test", "Revise") and canvas[4].count == 2
    assert render_dsl(parse_dsl("Plan{concise}->Programmer")) == "Plan{concise} -> Programmer"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Plan ->", "bad_structure"),
        ("Nonsense", "unknown_operator"),
        ("[Plan]", "bad_structure"),
        ("Programmer ? Revise : Format", "bad_structure"),
        ("(Review -> Revise) * 9", "bad_structure"),
        ("Plan{loud}", "unknown_prompt_style"),
        (" -> ".join(["Plan"] * (GRAMMAR.max_nodes + 1)), "canvas_full"),
        ("Plan $ Custom", "bad_structure"),
    ],
)
def test_bad_dsl_is_refused_with_a_code(text: str, code: str) -> None:
    with pytest.raises(EditError) as caught:
        parse_dsl(text)
    assert caught.value.code == code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10) | st.text(max_size=8) | names | styles,
    lambda children: st.lists(children, max_size=5),
    max_leaves=8,
)
edit_actions = st.fixed_dictionaries(
    {"action_type": st.sampled_from(["add", "delete", "modify", "set_prompt", "bogus"])},
    optional={
        "operator": names | st.text(max_size=5) | st.integers(),
        "operators": st.lists(names, max_size=5) | json_values,
        "structure": st.sampled_from(["parallel", "conditional", "loop", "operator", "tree"]) | json_values,
        "count": json_values,
        "position": json_values,
        "target": json_values,
        "prompt": json_values,
    },
)


@given(st.lists(edit_actions, max_size=25))
@settings(max_examples=150, deadline=None)
def test_no_edit_sequence_raises_or_corrupts_the_canvas(actions: list[dict[str, Any]]) -> None:
    canvas: tuple[Node, ...] = ()
    for action in actions:
        try:
            after = apply_edit(canvas, action)
        except EditError as error:
            assert error.code and error.message
            continue
        assert well_formed(after)
        canvas = after
