"""The published XML action form, read into the typed JSON actions."""

from __future__ import annotations

from typing import Any

import pytest

from workflow_orchestrator.server.core.canvas import EditError, parse_xml_action


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("<action>add</action><operator>Plan</operator>", {"action_type": "add", "operator": "Plan"}),
        (
            "<action>add</action><structure>parallel</structure><operators>Programmer, Custom</operators>",
            {"action_type": "add", "structure": "parallel", "operators": ["Programmer", "Custom"]},
        ),
        (
            "<action>add</action><structure>conditional</structure><condition>Verify</condition>"
            "<true>Revise</true><false>Format</false>",
            {"action_type": "add", "structure": "conditional", "operators": ["Verify", "Revise", "Format"]},
        ),
        (
            "<action>add</action><structure>loop</structure><operators>Review, Revise</operators>"
            "<iterations>3</iterations>",
            {"action_type": "add", "structure": "loop", "operators": ["Review", "Revise"], "count": 3},
        ),
        ("<action>delete</action><target>2</target>", {"action_type": "delete", "target": 2}),
        (
            "<action>modify</action><node>1</node><operator>Custom</operator>",
            {"action_type": "modify", "target": 1, "operator": "Custom"},
        ),
        (
            "<action>set_prompt</action><target>1</target><prompt>concise</prompt>",
            {"action_type": "set_prompt", "target": 1, "prompt": "concise"},
        ),
        ("<action>execute</action>", {"action_type": "execute"}),
        ("<action>finish</action><answer>42</answer>", {"action_type": "finish", "answer": "42"}),
        ("I add a plan first. <add>Plan</add>", {"action_type": "add", "operators": ["Plan"]}),
        (
            "<add>[Programmer, Programmer]{step_by_step}</add>",
            {
                "action_type": "add",
                "operators": ["Programmer", "Programmer"],
                "structure": "parallel",
                "prompt": "step_by_step",
            },
        ),
        (
            "<add>(Test -> Revise) * 2</add>",
            {"action_type": "add", "operators": ["Test", "Revise"], "structure": "loop", "count": 2},
        ),
        ("<delete>3</delete>", {"action_type": "delete", "target": 3}),
        ("<modify>2: Verify</modify>", {"action_type": "modify", "target": 2, "operator": "Verify"}),
        ("<set_prompt>1: concise</set_prompt>", {"action_type": "set_prompt", "target": 1, "prompt": "concise"}),
        ("<execute/>", {"action_type": "execute"}),
        ("<finish>Norland</finish>", {"action_type": "finish", "answer": "Norland"}),
        ("<finish/>", {"action_type": "finish"}),
    ],
)
def test_the_published_forms(text: str, action: dict[str, Any]) -> None:
    assert parse_xml_action(text) == action


@pytest.mark.parametrize(
    "text", ["", "add Plan", "<action>jump</action>", "<delete>two</delete>", "<modify>Plan</modify>", "x" * 5000]
)
def test_text_that_is_no_action_is_refused(text: str) -> None:
    with pytest.raises(EditError) as caught:
        parse_xml_action(text)
    assert caught.value.code in ("bad_xml", "unknown_operator", "bad_structure")
