"""Canvas episodes on the seam: edits, execution, finish, the grade, the reward
modes, determinism, sealing, and policies that should score low."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from workflow_orchestrator.server.core import render_text
from workflow_orchestrator.server.core.canvas.episode import FIELDS
from workflow_orchestrator.server.core.canvas.grade import WEIGHTS
from workflow_orchestrator.server.core.policies import make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.vocabulary import (
    CANVAS_ERROR_CODES,
    CANVAS_EVENT_KINDS,
    CANVAS_GRADE_DIMENSIONS,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TASKS = ("canvas/math", "canvas/code", "canvas/qa", "canvas/mixed")


def add(*operators: str, structure: str | None = None, **extra: Any) -> dict[str, Any]:
    action: dict[str, Any] = {"action_type": "add"}
    if structure is None:
        action["operator"] = operators[0]
    else:
        action["structure"] = structure
        action["operators"] = list(operators)
    return action | extra


def play(env: WorkflowEnv, task_id: str, seed: int, actions: list[dict[str, Any]], **reset: Any) -> dict[str, Any]:
    observation = env.reset(task_id, seed=seed, **reset)
    for action in actions:
        observation = env.step(action)
    return observation


def play_policy(env: WorkflowEnv, name: str, task_id: str, seed: int) -> float:
    policy = make_policy(name, seed)
    observation = env.reset(task_id, seed=seed)
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    return float(observation["grade"]["score"])


def test_the_vocabulary_names_the_canvas_words() -> None:
    assert tuple(FIELDS) == CANVAS_EVENT_KINDS
    assert tuple(WEIGHTS) == CANVAS_GRADE_DIMENSIONS and sum(WEIGHTS.values()) == pytest.approx(1.0)


def test_an_episode_builds_executes_and_finishes() -> None:
    env = WorkflowEnv()
    observation = env.reset("canvas/code", seed=3)
    view = observation["canvas"]
    assert view["problem"]["type"] == "code" and "answer" not in view["problem"]
    assert {op["name"] for op in view["operators"]} >= {"Plan", "Programmer", "Test", "ScEnsemble", "Format"}
    assert observation["legal_actions"][-1] == {"action_type": "finish"}
    for action in (add("Plan"), add("Programmer"), add("Test", "Revise", "Format", structure="conditional")):
        observation = env.step(action)
        assert observation["errors"] == []
    assert observation["canvas"]["dsl"] == "Plan -> Programmer -> Test ? Revise : Format"
    assert {"action_type": "execute"} in observation["legal_actions"]
    observation = env.step({"action_type": "execute"})
    run = observation["canvas"]["last_execution"]
    assert run["current"] and run["tokens"] == observation["budget_used"] > 0
    assert run["verdict"].startswith("tests ")
    assert {"action_type": "execute"} not in observation["legal_actions"]
    observation = env.step({"action_type": "finish"})
    assert observation["done"] and observation["terminated"] and not observation["truncated"]
    grade = observation["grade"]
    assert set(grade["breakdown"]) == set(CANVAS_GRADE_DIMENSIONS)
    assert grade["activity_gate"] == 1.0 and 0.5 < grade["score"] <= 1.0
    assert observation["legal_actions"] == []
    text = render_text(observation)
    assert "DSL: Plan -> Programmer -> Test ? Revise : Format" in text and "Verifier: tests" in text


def test_invalid_actions_get_a_code_and_change_nothing() -> None:
    env = WorkflowEnv()
    env.reset("canvas/math", seed=1)
    env.step(add("Plan"))
    before = env.episode.canvas
    cases = [
        ({"action_type": "wait"}, "unknown_action"),
        (add("Wizard"), "unknown_operator"),
        (add("Plan", structure="tree"), "unknown_structure"),
        (add("Programmer", structure="parallel"), "bad_structure"),
        ({"action_type": "delete", "target": 5}, "unknown_target"),
        ({"action_type": "delete"}, "missing_field"),
        ({"action_type": "modify", "target": 1, "operator": "Plan"}, "unchanged"),
        ({"action_type": "set_prompt", "target": 1, "prompt": "shout"}, "unknown_prompt_style"),
        ({"action_type": "xml", "text": "<jump/>"}, "bad_xml"),
        ({"action_type": "xml"}, "missing_field"),
    ]
    for action, code in cases:
        observation = env.step(action)
        assert [e["code"] for e in observation["errors"]] == [code], action
        assert code in CANVAS_ERROR_CODES
        assert env.episode.canvas == before and observation["reward"] < 0
    assert env.episode.invalid_count == len(cases)


def test_the_canvas_is_bounded_and_execution_needs_a_canvas_and_budget() -> None:
    env = WorkflowEnv()
    observation = env.reset("canvas/math", seed=2)
    assert env.step({"action_type": "execute"})["errors"][0]["code"] == "empty_canvas"
    for _ in range(6):
        observation = env.step(add("Programmer", "Programmer", "Programmer", "Programmer", structure="parallel"))
    assert observation["errors"] == [] and not any(a["action_type"] == "add" for a in observation["legal_actions"])
    assert env.step(add("Plan"))["errors"][0]["code"] == "canvas_full"
    # Six parallel structures of four solvers cost more than the budget.
    observation = env.step({"action_type": "execute"})
    assert observation["errors"][0]["code"] == "over_budget" and observation["budget_used"] == 0


def test_re_executing_an_unchanged_canvas_gives_the_same_result_and_costs_nothing() -> None:
    env = WorkflowEnv()
    actions = [add("Plan"), add("AnswerGenerate"), add("Verify", "Revise", "Format", structure="conditional")]
    observation = play(env, "canvas/qa", 4, [*actions, {"action_type": "execute"}])
    first, used = observation["canvas"]["last_execution"], observation["budget_used"]
    observation = env.step({"action_type": "execute"})
    assert observation["canvas"]["last_execution"] == first and observation["budget_used"] == used
    # Another canvas executed, then this one again: charged again, the same result.
    env.step({"action_type": "delete", "target": 1})
    other = env.step({"action_type": "execute"})["budget_used"]
    env.step(add("Plan", position=1))
    observation = env.step({"action_type": "execute"})
    assert observation["canvas"]["last_execution"] == first and observation["budget_used"] == other + used


def test_finish_executes_a_changed_canvas_and_takes_its_answer() -> None:
    env = WorkflowEnv()
    observation = play(env, "canvas/math", 5, [add("Programmer"), add("Verify"), {"action_type": "finish"}])
    executed = [row for row in env.episode.log.records if row["kind"] == "executed"]
    finished = [row for row in env.episode.log.records if row["kind"] == "finished"]
    assert len(executed) == 1 and finished[0]["answer"] == executed[0]["answer"]
    assert observation["grade"]["activity_gate"] == 1.0


def test_a_wrong_answer_of_ones_own_scores_no_correctness() -> None:
    env = WorkflowEnv()
    actions = [add("AnswerGenerate"), add("Review"), {"action_type": "execute"}]
    own = play(env, "canvas/math", 5, [*actions, {"action_type": "finish", "answer": "no idea"}])["grade"]
    theirs = play(env, "canvas/math", 5, [*actions, {"action_type": "finish"}])["grade"]
    assert own["breakdown"]["correctness"] == 0.0 < theirs["breakdown"]["correctness"]
    right = env.episode.problem.answer
    assert env.episode.last_execution.answer != right  # (this seed's execution answers wrong)
    mine = play(env, "canvas/math", 5, [*actions, {"action_type": "finish", "answer": f" {right}. "}])["grade"]
    assert mine["breakdown"]["correctness"] == 1.0


def test_the_xml_action_plays_like_its_json() -> None:
    env = WorkflowEnv()
    xml = [
        {"action_type": "xml", "text": "<add>Plan</add>"},
        {"action_type": "xml", "text": "<action>add</action><operator>Programmer</operator>"},
        {"action_type": "xml", "text": "<add>Test ? Revise : Format</add>"},
        {"action_type": "xml", "text": "<finish/>"},
    ]
    typed = [add("Plan"), add("Programmer"), add("Test", "Revise", "Format", structure="conditional")]
    assert (
        play(env, "canvas/code", 7, xml)["grade"]["score"]
        == play(env, "canvas/code", 7, [*typed, {"action_type": "finish"}])["grade"]["score"]
    )


def test_rounds_run_out() -> None:
    env = WorkflowEnv()
    observation = play(env, "canvas/qa", 0, [add("Plan")] * 20)
    assert observation["truncated"] and not observation["terminated"] and observation["grade"]["score"] == 0.0
    assert env.step(add("Plan"))["errors"][0]["code"] == "episode_over"


@pytest.mark.parametrize("task_id", TASKS)
def test_degenerate_policies_score_low(task_id: str) -> None:
    env = WorkflowEnv()
    for seed in range(3):
        # Finish at once: no workflow.
        assert play(env, task_id, seed, [{"action_type": "finish"}])["grade"]["score"] == 0.0
        # Structure without a checker.
        no_check = [
            add("Plan"),
            add("Programmer", "AnswerGenerate", "Custom", structure="parallel"),
            add("ScEnsemble"),
            add("Format"),
            {"action_type": "finish"},
        ]
        assert play(env, task_id, seed, no_check)["grade"]["score"] == 0.0
        # The largest canvas, whatever it costs: over budget, never executed.
        big = [add("Programmer", "Programmer", "Custom", "AnswerGenerate", structure="parallel")] * 5
        observation = play(env, task_id, seed, [*big, add("Verify", "Revise", "Revise", structure="conditional")])
        observation = env.step({"action_type": "finish"})
        assert observation["errors"][0]["code"] == "over_budget" and not observation["done"]
        while not observation["done"]:
            observation = env.step({"action_type": "finish"})
        assert observation["grade"]["score"] == 0.0


@pytest.mark.parametrize("task_id", TASKS)
def test_the_ladder_holds_on_fresh_seeds(task_id: str) -> None:
    env = WorkflowEnv()
    seeds = range(900_000, 900_024)
    means = {
        name: statistics.mean(play_policy(env, name, task_id, seed) for seed in seeds)
        for name in ("noop", "random", "template", "heuristic")
    }
    assert means["noop"] < means["random"] < means["template"] <= means["heuristic"], means


def test_the_published_reward_mode() -> None:
    env = WorkflowEnv()
    published = [
        add("Plan"),
        add("Programmer", "AnswerGenerate", "Custom", structure="parallel"),
        add("ScEnsemble"),
        add("Test", "Revise", "Format", structure="conditional"),
        {"action_type": "finish"},
    ]
    observation = play(env, "canvas/code", 11, published, reward_mode="published")
    correct = env.episode.last_execution.correct
    assert observation["reward_breakdown"] == {"published": 1.0 if correct else 0.0}
    assert env.episode.rewards[:-1] == [0.0] * 4
    # Two of three rules met (no structure, fewer than five operators): S = 2/3 - wait, one of three.
    observation = play(
        env, "canvas/math", 11, [add("Programmer"), add("Verify"), {"action_type": "finish"}], reward_mode="published"
    )
    assert observation["reward"] == pytest.approx(-1 + 1 / 3)
    assert play(env, "canvas/math", 11, [{"action_type": "finish"}], reward_mode="published")["reward"] == -1.0
    with pytest.raises(ValueError, match="no 'published' reward mode"):
        env.reset("easy", reward_mode="published")


def test_the_grade_mode_sums_to_the_grade() -> None:
    env = WorkflowEnv()
    policy = make_policy("heuristic")
    observation = env.reset("canvas/mixed", seed=8, reward_mode="grade")
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    assert sum(env.episode.rewards) == pytest.approx(observation["grade"]["score"])


def test_sealing_redraws_the_hidden_parameters() -> None:
    plain = WorkflowEnv()
    sealed = WorkflowEnv(outcome_secret="s3cret")
    other = WorkflowEnv(outcome_secret="another")
    actions = [add("Programmer"), add("Verify"), {"action_type": "finish"}]
    grades = [play(env, "canvas/math", 5, actions)["grade"] for env in (plain, sealed, other)]
    assert len({g["breakdown"]["correctness"] for g in grades}) == 3
    assert grades[1]["best_score"] is None and grades[1]["hindsight_best_status"] == "sealed"
    again = play(WorkflowEnv(outcome_secret="s3cret"), "canvas/math", 5, actions)["grade"]
    assert again["breakdown"] == grades[1]["breakdown"]


PROBE = """
import json
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.core.policies import make_policy
out = {}
for task in ("canvas/math", "canvas/code", "canvas/qa", "canvas/mixed"):
    for name in ("random", "heuristic"):
        env, policy = WorkflowEnv(), make_policy(name, 3)
        obs = env.reset(task, seed=31)
        while not obs["done"]:
            obs = env.step(policy.act(obs))
        out[task + ":" + name] = [env.episode.log.digest(), obs["grade"]["score"]]
print(json.dumps(out, sort_keys=True))
"""


def test_episodes_are_the_same_in_any_process() -> None:
    runs = [
        subprocess.run(
            [sys.executable, "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
            env={"PYTHONHASHSEED": str(hash_seed), "PATH": "/usr/bin:/bin"},
            check=True,
        ).stdout
        for hash_seed in (1, 2)
    ]
    assert runs[0] == runs[1] and json.loads(runs[0])


@pytest.mark.parametrize(
    "dsl",
    [
        "Programmer",
        "Plan -> [Programmer, AnswerGenerate, Custom] -> ScEnsemble -> Test ? Revise : Format",
        "Decompose{step_by_step} -> AnswerGenerate -> (Review -> Revise) * 2 -> Format",
        "AnswerGenerate -> [Custom, Custom, Custom, Custom] -> Aggregate -> Verify ? Custom : Format",
    ],
)
def test_realised_answers_are_right_as_often_as_the_grade_expects(dsl: str) -> None:
    """The feedback's draws and the grade's exact expectation come from one model."""
    from workflow_orchestrator.server.core.canvas import SimulatedExecutor, parse_dsl
    from workflow_orchestrator.server.tasks.canvas import generate_problem

    canvas = parse_dsl(dsl)
    expected, realised = [], []
    for seed in range(600):
        problem = generate_problem("mixed", seed)
        executor = SimulatedExecutor(problem, seed * 7919 + 1)
        expected.append(executor.expected(canvas).correctness)
        realised.append(executor.execute(problem, canvas).correct)
    assert abs(statistics.mean(expected) - statistics.mean(realised)) < 0.05
