"""Action semantics: validity codes, penalties, what invalid actions leave alone."""

from __future__ import annotations

import copy

import pytest

from tests.support.tasks import act, dispatch, registry_of, tiny_task
from workflow_orchestrator.server.core.model import EventKind, ScheduledEvent
from workflow_orchestrator.server.core.rewards import DEFAULT_REWARD_TABLE
from workflow_orchestrator.server.inprocess import WorkflowEnv


def _state_without_time(env: WorkflowEnv) -> dict:
    episode = env.episode
    return copy.deepcopy(
        {
            "status": episode.status,
            "agent_status": episode.agent_status,
            "agent_task": episode.agent_task,
            "attempts": episode.attempts,
            "budget": episode.budget_used,
            "active": episode.active_count,
        }
    )


@pytest.mark.parametrize(
    "action, code",
    [
        (act("delegate", "zzz", "solo"), "unknown_subtask"),
        (act("delegate", "a", "nobody"), "unknown_agent"),
        (act("delegate", "b", "pair"), "not_ready"),
        (act("delegate", "a", "pair"), "capability_mismatch"),
        (act("retry", "a", "solo"), "not_failed"),
        (act("abort", "a"), "not_running"),
        (act("synthesize"), "work_remaining"),
        (act("fly"), "unknown_action"),
        ({"action_type": "delegate", "subtask_id": "a"}, "missing_field"),
        ({"action_type": "delegate", "subtask_id": 5, "agent_name": "solo"}, "missing_field"),
        ({"action_type": "dispatch", "assignments": []}, "empty_dispatch"),
        ("not an object", "unknown_action"),
    ],
)
def test_invalid_action_changes_nothing_but_time(tiny_env: WorkflowEnv, action, code: str) -> None:
    before = _state_without_time(tiny_env)
    observation = tiny_env.step(action)
    assert [e["code"] for e in observation["errors"]] == [code]
    assert observation["errors"][0]["message"]
    assert _state_without_time(tiny_env) == before
    assert observation["time_used"] == 1  # the tick model: every action takes a tick
    penalty = DEFAULT_REWARD_TABLE.get("penalty." + code, DEFAULT_REWARD_TABLE["penalty.default"])
    assert observation["reward_breakdown"]["invalid_action"] == pytest.approx(penalty)
    assert tiny_env.episode.log.records[-1]["kind"] == "invalid_action"


def test_penalties_follow_the_error_code_not_the_message(tiny_env: WorkflowEnv) -> None:
    observation = tiny_env.step(act("delegate", "b", "pair"))
    assert observation["reward_breakdown"]["invalid_action"] == pytest.approx(-0.10)
    observation = tiny_env.step(act("delegate", "a", "pair"))
    assert observation["reward_breakdown"]["invalid_action"] == pytest.approx(-0.05)


def test_capacity_binds_and_dispatch_is_all_or_nothing() -> None:
    task = tiny_task(capacity=1)
    env = WorkflowEnv(registry=registry_of(task))
    env.reset("tiny")
    env.step(act("delegate", "a", "solo"))
    observation = env.step(dispatch(("b", "pair"), ("c", "flaky")))
    assert [e["code"] for e in observation["errors"]] == ["capacity_exceeded"]
    assert observation["reward_breakdown"]["invalid_action"] == pytest.approx(-0.15)
    assert observation["active_count"] == 0
    assert all(s["status"] == "ready" for s in observation["subtasks"] if s["id"] in ("b", "c"))


def test_dispatch_rejects_duplicates_and_busy_agents(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    observation = tiny_env.step(dispatch(("b", "pair"), ("b", "pair")))
    assert [e["code"] for e in observation["errors"]] == ["duplicate_subtask"]
    observation = tiny_env.step(dispatch(("b", "pair"), ("c", "pair")))
    assert [e["code"] for e in observation["errors"]] == ["duplicate_agent"]
    observation = tiny_env.step(dispatch(("c", "flaky")))
    assert observation["errors"] == []
    observation = tiny_env.step(act("delegate", "b", "flaky"))
    assert [e["code"] for e in observation["errors"]] == ["agent_busy"]


def test_parallel_dispatch_runs_both_in_one_tick(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    observation = tiny_env.step(dispatch(("b", "pair"), ("c", "flaky")))
    assert observation["reward_breakdown"]["parallelism"] == pytest.approx(0.10)
    assert observation["reward_breakdown"]["delegation"] == pytest.approx(0.10)
    running = {s["id"] for s in observation["subtasks"] if s["status"] == "in_progress"}
    assert running == {"c"}  # b (speed 1) finished within the tick; c (speed 2) has one left
    assert next(s for s in observation["subtasks"] if s["id"] == "c")["time_left"] == 1


def test_permanent_failure_is_labelled_and_retry_with_another_agent_recovers(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    observation = tiny_env.step(act("delegate", "c", "pair"))
    c = next(s for s in observation["subtasks"] if s["id"] == "c")
    assert c["status"] == "failed"
    assert c["failures"] == [{"agent": "pair", "kind": "permanent", "cause": "outcome", "at": 2}]
    assert "different" in observation["hint"]
    observation = tiny_env.step(act("retry", "c", "flaky"))
    assert observation["errors"] == []
    observation = tiny_env.step(act("wait"))
    assert observation["reward_breakdown"]["recovery"] == pytest.approx(0.10)


def test_failure_left_alone_for_two_steps_is_penalised(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    tiny_env.step(act("delegate", "c", "pair"))
    assert tiny_env.step(act("wait"))["reward_breakdown"]["neglect"] == 0.0
    assert tiny_env.step(act("wait"))["reward_breakdown"]["neglect"] == pytest.approx(-0.08)


def test_failure_no_able_agent_can_take_up_costs_nothing() -> None:
    """Neglect charges only what the policy could have retried: here the one other agent
    able to do ``c`` is offline, so waiting for it is not neglect (issue 13: a heuristic
    must not pay more than a policy that retries on the agent known to fail)."""
    env = WorkflowEnv(registry=registry_of(tiny_task(events=(ScheduledEvent(1, EventKind.OFFLINE, "flaky"),))))
    env.reset("tiny")
    env.step(act("delegate", "a", "solo"))
    observation = env.step(act("delegate", "c", "pair"))
    assert next(s for s in observation["subtasks"] if s["id"] == "c")["status"] == "failed"
    for _ in range(3):
        observation = env.step(act("wait"))
        assert observation["reward_breakdown"]["neglect"] == 0.0


def test_dropout_fails_the_running_subtask_transiently(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    for _ in range(3):
        tiny_env.step(act("wait"))
    # t=4: flaky starts c (2 ticks); it drops out at the start of tick 6 (t=5).
    observation = tiny_env.step(act("delegate", "c", "flaky"))
    assert observation["errors"] == []
    observation = tiny_env.step(act("wait"))
    c = next(s for s in observation["subtasks"] if s["id"] == "c")
    assert c["status"] == "failed"
    assert c["failures"][-1]["kind"] == "transient" and c["failures"][-1]["cause"] == "dropout"
    flaky = next(a for a in observation["agents"] if a["name"] == "flaky")
    assert flaky["status"] == "offline"
    observation = tiny_env.step(act("retry", "c", "flaky"))
    assert [e["code"] for e in observation["errors"]] == ["agent_offline"]
    kinds = [r["kind"] for r in tiny_env.episode.log.records]
    assert "agent_offline" in kinds and kinds.count("failed") == 1


def test_abort_frees_the_agent_and_retry_respects_dependencies(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    tiny_env.step(act("delegate", "c", "flaky"))
    observation = tiny_env.step(act("abort", "c"))
    assert observation["errors"] == []
    c = next(s for s in observation["subtasks"] if s["id"] == "c")
    assert c["status"] == "failed" and c["failures"][-1]["kind"] == "aborted"
    assert next(a for a in observation["agents"] if a["name"] == "flaky")["status"] == "idle"
    assert observation["budget_used"] == pytest.approx(2.0)  # solo 1 tick + flaky 1 tick
    observation = tiny_env.step(act("retry", "c", "flaky"))
    assert observation["errors"] == []


def test_delegate_of_a_failed_subtask_asks_for_retry(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    tiny_env.step(act("delegate", "c", "pair"))
    observation = tiny_env.step(act("delegate", "c", "flaky"))
    assert [e["code"] for e in observation["errors"]] == ["is_failed"]


def test_synthesize_terminates_and_later_steps_say_the_episode_is_over(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    tiny_env.step(dispatch(("b", "pair"), ("c", "flaky")))
    tiny_env.step(act("wait"))
    observation = tiny_env.step(act("synthesize"))
    assert observation["terminated"] and not observation["truncated"] and observation["done"]
    assert observation["grade"]["counts"]["subtasks_completed"] == 3
    assert observation["reward_breakdown"]["finish"] == pytest.approx(0.10)
    steps = tiny_env.episode.step_count
    observation = tiny_env.step(act("wait"))
    assert [e["code"] for e in observation["errors"]] == ["episode_over"]
    assert tiny_env.episode.step_count == steps


def test_time_limit_truncates(tiny_env: WorkflowEnv) -> None:
    observation = tiny_env.observation
    for _ in range(10):
        observation = tiny_env.step(act("wait"))
    assert observation["truncated"] and not observation["terminated"]
    assert tiny_env.episode.log.records[-1] == {
        "kind": "episode_end",
        "t": 10,
        "step": 10,
        "reason": "truncated",
        "completed": 0,
        "total": 3,
    }


def test_legal_actions_are_concrete_and_all_accepted(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    legal = tiny_env.observation["legal_actions"]
    assert {"action_type": "delegate", "subtask_id": "b", "agent_name": "pair"} in legal
    assert {"action_type": "delegate", "subtask_id": "c", "agent_name": "flaky"} in legal
    for action in legal:
        probe = WorkflowEnv(registry=tiny_env.registry)
        probe.reset("tiny")
        probe.step(act("delegate", "a", "solo"))
        assert probe.step(dict(action))["errors"] == [], action


def test_a_late_completion_in_the_step_its_deadline_passes_is_a_missed_deadline(tiny_env: WorkflowEnv) -> None:
    tiny_env.step(act("delegate", "a", "solo"))
    for _ in range(3):
        tiny_env.step(act("wait"))
    observation = tiny_env.step(act("delegate", "b", "pair"))  # t=4 -> completes at t=5, deadline 4
    b = next(s for s in observation["subtasks"] if s["id"] == "b")
    assert b["status"] == "completed" and b["completed_at"] == 5
    assert observation["reward_breakdown"]["deadline_missed"] == pytest.approx(-0.10)
    missed = [r for r in tiny_env.episode.log.records if r["kind"] == "deadline_missed"]
    assert [(r["subtask"], r["deadline"]) for r in missed] == [("b", 4)]


def test_render_text_shows_every_legal_action_with_its_arguments() -> None:
    from workflow_orchestrator.server.core import render_text

    env = WorkflowEnv()
    text = render_text(env.reset("arena/easy", seed=3))
    dispatch_lines = [line for line in text.splitlines() if line.startswith("- dispatch(")]
    assert dispatch_lines and all(line != "- dispatch()" for line in dispatch_lines)
    text = render_text(env.reset("hard"))
    assert "- delegate(alert_triage,triage_analyst)" in text


def test_a_wait_after_an_aborted_attempt_lasts_one_time_unit_in_event_time() -> None:
    env = WorkflowEnv()
    observation = env.reset("arena/easy", seed=5)
    first = observation["arena"]["ready"][0]
    assert env.step({"action_type": "dispatch", "task_ids": [first]})["errors"] == []
    assert env.step(act("abort", first))["errors"] == []
    observation = env.step(act("wait"))
    assert observation["errors"] == []
    assert observation["time_used"] == 1  # the aborted attempt's completion is not an event
    assert {"action_type": "wait"} in observation["legal_actions"]


def test_parsed_actions_are_shared_values_that_read_like_fresh_ones() -> None:
    from workflow_orchestrator.server.core.actions import Action, Assignment, parse_action

    delegate = {"action_type": "delegate", "subtask_id": "a", "agent_name": "solo"}
    assert parse_action(delegate) is parse_action(dict(delegate))
    assert parse_action(delegate) == Action.delegate("a", "solo")
    batch = {"action_type": "dispatch", "assignments": [{"subtask_id": "a"}], "task_ids": ["b"]}
    parsed = parse_action(batch)
    assert parsed is parse_action(copy.deepcopy(batch))
    assert parsed.assignments == (Assignment("a"), Assignment("b"))
    # An empty agent name counts as absent, so it is the same action as one without it.
    assert parse_action({"action_type": "retry", "subtask_id": "a", "agent_name": ""}) is parse_action(
        {"action_type": "retry", "subtask_id": "a"}
    )


def test_the_shared_actions_stay_bounded_when_every_action_names_new_ids() -> None:
    from workflow_orchestrator.server.core import actions
    from workflow_orchestrator.server.core.actions import MAX_SHARED_ACTIONS, Action, Assignment, parse_action

    for index in range(3 * MAX_SHARED_ACTIONS + 5):
        name = f"s{index}"
        single = parse_action({"action_type": "retry", "subtask_id": name, "agent_name": "solo"})
        batch = parse_action({"action_type": "dispatch", "task_ids": [name]})
        assert single == Action.retry(name, "solo")
        assert batch.assignments == (Assignment(name),)
    for cache in (actions._SINGLE, actions._DISPATCHES, actions._ASSIGNMENTS):
        assert 0 < len(cache) <= MAX_SHARED_ACTIONS


def test_busy_time_is_counted_for_reward_models_that_read_it() -> None:
    from workflow_orchestrator.server.core.episode import Episode
    from workflow_orchestrator.server.core.families import compile_task
    from workflow_orchestrator.server.core.rewards import ScenarioRewards

    class Custom:  # says nothing about busy time, so gets it counted
        channels = ("busy",)

        def step_reward(self, episode, facts):  # type: ignore[no-untyped-def]
            return {"busy": float(facts.busy_time)}

    custom = Episode(compile_task(tiny_task()), reward_model=Custom())
    custom.step(act("delegate", "a", "solo"))
    assert custom.facts.busy_time == 1 and custom.last_breakdown == {"busy": 1.0}
    scenario = Episode(compile_task(tiny_task()), reward_model=ScenarioRewards())
    scenario.step(act("delegate", "a", "solo"))
    assert scenario.facts.busy_time == 0  # the scenario table does not read it
