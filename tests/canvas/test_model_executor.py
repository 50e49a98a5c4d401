"""The ``openai`` executor with the real ``openai`` client against a scripted
OpenAI-compatible server on loopback: right, wrong and malformed answers, the
flow along the canvas, code run in the sandbox, the response cache replaying a
run with the server stopped, and selection at reset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_model import COMPLETION_TOKENS, PROMPT_TOKENS, ScriptedModel, system_of
from workflow_orchestrator.executors.cache import ResponseCache
from workflow_orchestrator.executors.model import (
    ModelExecutor,
    ModelSettings,
    extract_answer,
    extract_code,
    extract_verdict,
)
from workflow_orchestrator.executors.sandbox import Limits
from workflow_orchestrator.server.core.canvas import Problem, parse_dsl
from workflow_orchestrator.server.inprocess import WorkflowEnv

CALL = PROMPT_TOKENS + COMPLETION_TOKENS
MATH = Problem("math", "easy", "A shop packs 6 boxes of 7 rolls each. How many rolls?", "42")
CODE = Problem(
    "code",
    "easy",
    "Write double(x), which returns twice x.",
    "def double(x):\n    return 2 * x",
    entry_point="double",
    tests=("assert double(2) == 4", "assert double(-3) == -6"),
)
FAST = Limits(wall_seconds=3.0, cpu_seconds=2)


def role(messages: list[dict[str, Any]]) -> str:
    system = system_of(messages)
    for word, name in (
        ("You plan", "planner"),
        ("You solve", "solver"),
        ("You check", "checker"),
        ("You fix", "reviser"),
        ("You choose", "ensemble"),
        ("You put", "formatter"),
    ):
        if system.startswith(word):
            return name
    raise AssertionError(f"unexpected system prompt: {system}")


def responder(
    *,
    solver: str = "Six boxes of seven. <answer>42</answer>",
    checker: str = "Looks right.\nVERDICT: CORRECT",
    reviser: str = "<answer>42</answer>",
    ensemble: str = "<choice>A</choice>",
    formatter: str = "<answer>42</answer>",
) -> Any:
    replies = {
        "planner": "1. Multiply boxes by rolls.",
        "solver": solver,
        "checker": checker,
        "reviser": reviser,
        "ensemble": ensemble,
        "formatter": formatter,
    }

    def answer(messages: list[dict[str, Any]]) -> str:
        return replies[role(messages)]

    return answer


def executor(model: ScriptedModel, problem: Problem, cache: ResponseCache | None = None) -> ModelExecutor:
    settings = ModelSettings(
        model="scripted", api_base_url=model.base_url, api_key="test-key", cache_path=":memory:", max_retries=0
    )
    return ModelExecutor(problem, settings, cache=ResponseCache(":memory:") if cache is None else cache, limits=FAST)


def test_a_right_answer_flows_along_the_canvas_and_is_checked_against_the_answer() -> None:
    with ScriptedModel(responder()) as model:
        run = executor(model, MATH).execute(MATH, parse_dsl("Plan -> AnswerGenerate -> Verify ? Revise : Format"))
    assert run.answer == "42" and run.correct
    assert run.verdict == "Verify found no problem"
    # Plan, AnswerGenerate, Verify, Format: four calls, the usage the API reported.
    assert len(model.requests) == 4 and run.tokens == 4 * CALL
    assert run.latency >= 0 and run.expected_correctness is None
    assert run.outputs[1].endswith("answer 42")
    # The plan reaches the solver, the answer the checker.
    solver_prompt = model.requests[1]["messages"][1]["content"]
    assert "Multiply boxes by rolls" in solver_prompt
    assert "Proposed answer:\n42" in model.requests[2]["messages"][1]["content"]
    assert model.requests[0]["model"] == "scripted"


def test_a_wrong_answer_flagged_by_the_checker_is_revised() -> None:
    script = responder(
        solver="<answer>41</answer>", checker="6*7 is 42.\nVERDICT: WRONG", reviser="<answer>42</answer>"
    )
    with ScriptedModel(script) as model:
        run = executor(model, MATH).execute(MATH, parse_dsl("AnswerGenerate -> Review ? Revise : Format"))
    assert run.answer == "42" and run.correct
    assert run.verdict == "Review flagged a problem"
    assert "Feedback on it:\n6*7 is 42." in model.requests[-1]["messages"][1]["content"]


def test_a_wrong_answer_unchecked_is_wrong() -> None:
    with ScriptedModel(responder(solver="I think <answer>41</answer>")) as model:
        run = executor(model, MATH).execute(MATH, parse_dsl("AnswerGenerate"))
    assert run.answer == "41" and not run.correct
    assert run.verdict == "unverified: the workflow has no checker"


def test_malformed_answers_and_failed_calls_do_not_break_the_execution() -> None:
    script = responder(solver="Hmm.\n\nThe total is **forty-two**", checker="I am not sure.", formatter="")
    with ScriptedModel(script) as model:
        run = executor(model, MATH).execute(MATH, parse_dsl("AnswerGenerate -> Verify -> Format"))
    # No tag: the last line is the answer; no verdict: the check says so; an empty reply changes nothing.
    assert run.answer == "The total is **forty-two" and not run.correct
    assert "gave no verdict" in run.outputs[1]
    assert run.verdict == "unverified: the workflow has no checker"
    with ScriptedModel(lambda messages: 500) as model:
        run = executor(model, MATH).execute(MATH, parse_dsl("Plan -> AnswerGenerate"))
    assert run.answer is None and not run.correct and run.tokens == 0
    assert "model call failed" in run.outputs[0]
    assert run.verdict == "no answer: no solver answered"


def test_a_parallel_structure_samples_and_the_ensemble_chooses() -> None:
    answers = iter(["<answer>41</answer>", "<answer>42</answer>", "<answer>42</answer>"])

    def script(messages: list[dict[str, Any]]) -> str:
        kind = role(messages)
        if kind == "solver":
            return next(answers)
        return "no letter here" if kind == "ensemble" else "VERDICT: CORRECT"

    with ScriptedModel(script) as model:
        run = executor(model, MATH).execute(MATH, parse_dsl("[AnswerGenerate, Custom, AnswerGenerate] -> ScEnsemble"))
    # No readable choice: the plurality of the samples.
    assert run.answer == "42" and run.correct
    assert "plurality" in run.outputs[0]
    branch_temperatures = [r["temperature"] for r in model.requests[:3]]
    assert branch_temperatures == [0.7, 0.7, 0.7]
    assert "Candidate answers:\nA. 41\nB. 42\nC. 42" in model.requests[3]["messages"][1]["content"]


def test_programmer_runs_its_program_for_math() -> None:
    program = "```python\nprint(6 * 7)\n```"
    with ScriptedModel(responder(solver=program)) as model:
        run = executor(model, MATH).execute(MATH, parse_dsl("Programmer"))
    assert run.answer == "42" and run.correct


def test_code_is_checked_by_its_tests_in_the_sandbox() -> None:
    right = "```python\ndef double(x):\n    return 2 * x\n```"
    wrong = "```python\ndef double(x):\n    return x + 2\n```"
    endless = "```python\ndef double(x):\n    while True:\n        pass\n```"
    canvas = parse_dsl("Programmer -> Test ? Revise : Format")
    with ScriptedModel(responder(solver=right)) as model:
        run = executor(model, CODE).execute(CODE, canvas)
    assert run.correct and run.verdict == "tests passed 2/2"
    with ScriptedModel(responder(solver=wrong, reviser=wrong)) as model:
        run = executor(model, CODE).execute(CODE, canvas)
    assert not run.correct and run.verdict == "tests failed 1/2"
    assert "assert double(-3) == -6" in model.requests[-1]["messages"][1]["content"]
    with ScriptedModel(responder(solver=endless, reviser=endless)) as model:
        run = executor(model, CODE).execute(CODE, parse_dsl("Programmer -> Test"))
    assert not run.correct and run.verdict == "tests failed 2/2"


def test_the_cache_replays_a_run_with_the_server_stopped(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite"
    canvas = parse_dsl("Plan -> [AnswerGenerate, AnswerGenerate] -> ScEnsemble -> Verify ? Revise : Format")
    with ScriptedModel(responder()) as model:
        first = executor(model, MATH, ResponseCache(path)).execute(MATH, canvas)
        base_url = model.base_url
    calls = len(model.requests)
    assert calls == 6
    settings = ModelSettings(model="scripted", api_base_url=base_url, api_key="k", cache_path=str(path), max_retries=0)
    replay = ModelExecutor(MATH, settings, limits=FAST)
    again = replay.execute(MATH, canvas)
    assert again == first and replay.calls == 0 and first.answer == "42"
    # Another model is another key: it asks the (stopped) server, and fails without breaking.
    other = ModelExecutor(MATH, ModelSettings(**{**_fields(settings), "model": "other"}), limits=FAST)
    assert other.execute(MATH, canvas).answer is None and other.calls > 0


def _fields(settings: ModelSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


def test_reset_selects_the_model_executor_and_the_grade_reads_realised_correctness(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    said: dict[str, str] = {}

    def script(messages: list[dict[str, Any]]) -> str:
        kind = role(messages)
        return f"<answer>{said['answer']}</answer>" if kind == "solver" else "VERDICT: CORRECT"

    grades = {}
    with ScriptedModel(script) as model:
        monkeypatch.setenv("API_BASE_URL", model.base_url)
        monkeypatch.setenv("MODEL_NAME", "scripted")
        monkeypatch.setenv("API_KEY", "test-key")
        monkeypatch.setenv("WORKFLOW_ORCHESTRATOR_MODEL_CACHE", str(tmp_path / "cache.sqlite"))
        for seed, right in ((3, True), (4, False)):
            env = WorkflowEnv()
            env.reset("canvas/math", seed=seed, executor="openai")
            answer = env.episode.problem.answer
            said["answer"] = answer if right else f"{answer}1"
            for node in ("Plan", "AnswerGenerate", "Verify"):
                observation = env.step({"action_type": "add", "operator": node})
            observation = env.step({"action_type": "execute"})
            run = observation["canvas"]["last_execution"]
            assert run["answer"] == said["answer"] and run["verdict"] == "Verify found no problem"
            assert observation["budget_used"] == 3 * CALL
            grades[right] = env.step({"action_type": "finish"})["grade"]
    assert grades[True]["breakdown"]["correctness"] == 1.0
    assert grades[False]["breakdown"]["correctness"] == 0.0
    assert grades[True]["counts"]["tokens_used"] == 3 * CALL
    assert grades[True]["score"] > grades[False]["score"]


def test_a_simulated_reset_is_unchanged_and_other_families_have_no_executor() -> None:
    env = WorkflowEnv()
    plain = env.reset("canvas/math", seed=3)
    same = WorkflowEnv().reset("canvas/math", seed=3, executor="simulated")
    assert plain == same and env.episode.simulated
    with pytest.raises(ValueError, match="canvas tasks"):
        env.reset("easy", executor="openai")
    with pytest.raises(ValueError, match="unknown executor"):
        env.reset("canvas/math", executor="nonesuch")


def test_a_sealed_episode_keeps_the_executor_it_was_given() -> None:
    env = WorkflowEnv(outcome_secret="s")
    with ScriptedModel(responder()) as model:
        env.reset("canvas/math", seed=1, executor=lambda problem: executor(model, problem))
        assert isinstance(env.episode.executor, ModelExecutor)


def test_reading_replies() -> None:
    assert extract_answer("<think>maybe <answer>1</answer></think>Final answer: 7") == "7"
    assert extract_answer("a <answer> 5 </answer> then <answer>6</answer>") == "6"
    assert extract_answer("   ") is None
    assert extract_code("text\n```python\ndef f():\n    return 1\n```\nmore") == "def f():\n    return 1"
    assert extract_code("no code at all") is None
    assert extract_verdict("fine\nVERDICT: **WRONG**") is True
    assert extract_verdict("VERDICT: CORRECT") is False
    assert extract_verdict("maybe") is None
