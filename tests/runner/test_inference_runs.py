"""inference.py end to end: a scripted OpenAI-compatible server on loopback, the
in-process environment and the real environment server.

The fake model answers from a script (exact replies, HTTP errors, delays) and,
once the script is used up, plays the first start the state lists (or
synthesizes, or waits), so that an episode can be played to its end. Every
assertion about scores compares with an independent replay in this process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support.threaded_server import ThreadedServer
from workflow_orchestrator import inference
from workflow_orchestrator.runner import answers, episodes, players, settings
from workflow_orchestrator.runner.sessions import RemoteSession
from workflow_orchestrator.server.core.policies import POLICIES, make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv

REPO = Path(inference.__file__).resolve().parent
SCRIPT = REPO / "inference.py"

START_LINE = re.compile(r"^\[START\] task=(\S+) env=workflow_orchestrator model=(\S+)$")
STEP_LINE = re.compile(
    r"^\[STEP\] step=(\d+) action=([a-z]+\([^\s()]*\)) reward=(-?\d+\.\d\d) done=(true|false) error=(\S+)$"
)
END_LINE = re.compile(r"^\[END\] success=(true|false) steps=(\d+) score=(\d\.\d{3}) rewards=(\S*)$")


# --------------------------------------------------------------------------- the fake model server


@dataclass
class Reply:
    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] | None = None
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def legal_lines(prompt: str) -> list[str]:
    section = prompt.split("Legal actions:\n", 1)[1] if "Legal actions:\n" in prompt else ""
    lines = []
    for line in section.splitlines():
        if not line.startswith("- "):
            break
        lines.append(line[2:])
    return lines


def first_sensible_action(prompt: str) -> dict[str, Any]:
    """A plain player: the first start the state lists, else synthesize, else wait."""
    for line in legal_lines(prompt):
        if line.startswith(("delegate(", "retry(")):
            kind, args = line[:-1].split("(", 1)
            subtask, agent = args.split(",")
            return {"action_type": kind, "subtask_id": subtask, "agent_name": agent}
    if "synthesize()" in legal_lines(prompt):
        return {"action_type": "synthesize"}
    return {"action_type": "wait"}


def all_distinct_starts(prompt: str) -> list[dict[str, Any]]:
    """Starts with distinct subtasks and agents, in the listed order (a player for tool calls)."""
    starts, subtasks, agents = [], set(), set()
    free = int(re.search(r"Running (\d+)/(\d+)", prompt).group(2)) - int(re.search(r"Running (\d+)/", prompt).group(1))
    for line in legal_lines(prompt):
        if line.startswith(("delegate(", "retry(")) and len(starts) < free:
            kind, args = line[:-1].split("(", 1)
            subtask, agent = args.split(",")
            if subtask not in subtasks and agent not in agents:
                subtasks.add(subtask)
                agents.add(agent)
                starts.append({"action_type": kind, "subtask_id": subtask, "agent_name": agent})
    return starts


class FakeModel:
    """What the fake server answers; the test sets it up and reads what was asked."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.default: Callable[[str], Reply] = lambda prompt: Reply(json.dumps(first_sensible_action(prompt)))
        self.requests: list[dict[str, Any]] = []
        self.answered: list[Reply] = []  # the 200 replies, in order
        self.lock = threading.Lock()

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(body)
            if self.script:
                return self.script.pop(0)
        return self.default(body["messages"][-1]["content"])


def completion_body(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
            for i, (name, arguments) in enumerate(reply.tool_calls)
        ]
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
    }


def fake_openai_app(model: FakeModel) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        reply = model.next_reply(body)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status != 200:
            return JSONResponse(
                {"error": {"message": f"scripted {reply.status}", "type": "test"}},
                status_code=reply.status,
                headers=reply.headers,
            )
        with model.lock:
            model.answered.append(reply)
        return JSONResponse(completion_body(reply, body["model"]))

    return app


@pytest.fixture
def fake_model() -> Iterator[tuple[FakeModel, str]]:
    model = FakeModel()
    with ThreadedServer(fake_openai_app(model)) as server:
        yield model, f"http://127.0.0.1:{server.port}/v1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def env_server(live_server: Any) -> str:
    """The real environment server (``server --no-web`` in its own process), shared by the test session."""
    return str(live_server.url)


# --------------------------------------------------------------------------- helpers


def clean_environ() -> dict[str, str]:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("API_KEY", "HF_TOKEN", "MODEL_NAME", "API_BASE_URL", "ENV_URL")
    }
    environ["PYTHONUNBUFFERED"] = "1"
    return environ


def llm_args(base_url: str, *extra: str) -> list[str]:
    return [
        "--api-base-url",
        base_url,
        "--api-key",
        "test-key",
        "--model",
        "fake-model",
        "--retry-backoff",
        "0.01",
        "--no-progress",
        *extra,
    ]


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = inference.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_script(
    *argv: str, environ: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ if environ is not None else clean_environ(),
        timeout=timeout,
    )


@dataclass
class PrintedEpisode:
    task_id: str
    model: str
    steps: list[tuple[int, str, float, bool, str]]
    success: bool
    step_count: int
    score: float
    rewards: list[float]


def parse_stdout(stdout: str) -> list[PrintedEpisode]:
    """The printed episodes; fails on any other line and on a set that is torn or interleaved."""
    episodes: list[PrintedEpisode] = []
    current: PrintedEpisode | None = None
    for line in stdout.splitlines():
        if match := START_LINE.match(line):
            assert current is None, f"a [START] inside an episode: {line}"
            current = PrintedEpisode(match[1], match[2], [], False, 0, 0.0, [])
        elif match := STEP_LINE.match(line):
            assert current is not None, f"a [STEP] outside an episode: {line}"
            current.steps.append((int(match[1]), match[2], float(match[3]), match[4] == "true", match[5]))
        elif match := END_LINE.match(line):
            assert current is not None, f"an [END] outside an episode: {line}"
            current.success, current.step_count, current.score = match[1] == "true", int(match[2]), float(match[3])
            current.rewards = [float(r) for r in match[4].split(",")] if match[4] else []
            episodes.append(current)
            current = None
        else:
            raise AssertionError(f"stdout has a line that is not [START]/[STEP]/[END]: {line!r}")
    assert current is None, "the last episode has no [END]"
    for episode in episodes:
        assert [s[0] for s in episode.steps] == list(range(1, len(episode.steps) + 1))
        assert episode.step_count == len(episode.steps)
        assert episode.rewards == [s[2] for s in episode.steps]
        assert all(not s[3] for s in episode.steps[:-1])
    return episodes


def replay(task_id: str, seed: int, actions: list[dict[str, Any]]) -> tuple[float, list[float], bool]:
    """The score, step rewards and termination of these actions, played in this process."""
    env = WorkflowEnv()
    env.reset(task_id, seed=seed)
    rewards = []
    observation: dict[str, Any] = {}
    for action in actions:
        observation = env.step(action)
        rewards.append(observation["reward"])
    assert observation["done"], "the recorded actions do not finish the episode"
    return env.grade()["score"], rewards, bool(observation["terminated"])


def policy_scores(name: str, task_id: str, seeds: list[int]) -> list[float]:
    env = WorkflowEnv()
    scores = []
    for seed in seeds:
        policy = make_policy(name, seed)
        observation = env.reset(task_id, seed=seed)
        while not observation["done"]:
            observation = env.step(policy.act(observation))
        scores.append(env.grade()["score"])
    return scores


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- built-in policies


def test_policy_run_prints_only_protocol_lines_and_writes_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output, trajectories = tmp_path / "results.json", tmp_path / "steps.jsonl"
    code, out, err = run_main(
        capsys,
        "--policy",
        "random",
        "--tasks",
        "easy,hard",
        "--seeds",
        "0-2",
        "--output",
        str(output),
        "--save-trajectories",
        str(trajectories),
    )
    assert code == 0, err
    printed = parse_stdout(out)
    assert [(e.task_id, e.model) for e in printed] == [("easy", "random")] * 3 + [("hard", "random")] * 3
    results = json.loads(output.read_text())
    episodes = results["episodes"]
    assert [(e["task_id"], e["seed"]) for e in episodes] == [(t, s) for t in ("easy", "hard") for s in range(3)]
    for shown, episode, trajectory in zip(printed, episodes, read_jsonl(trajectories), strict=True):
        for key in ("task_id", "seed", "score", "normalized_score", "steps", "tokens", "wall_s"):
            assert key in episode
        # The grade's normalised score: these seeds' best achievable scores are shipped.
        # (Each seed's task: easy and medium vary with the seed.)
        compiled = WorkflowEnv().registry.resolve(episode["task_id"], episode["seed"]).compiled
        best = compiled.best_scores[episode["seed"]].score
        assert episode["normalized_score"] == pytest.approx(episode["score"] / best, abs=1e-6)
        assert episode["tokens"] == 0
        expected_score = policy_scores("random", episode["task_id"], [episode["seed"]])[0]
        assert episode["score"] == pytest.approx(expected_score)
        assert shown.score == pytest.approx(expected_score, abs=5e-4)
        actions = [step["action"] for step in trajectory["trajectory"]]
        score, rewards, terminated = replay(episode["task_id"], episode["seed"], actions)
        assert score == pytest.approx(episode["score"])
        # The true, unclamped rewards, rounded only on the printed line.
        assert [step["reward"] for step in trajectory["trajectory"]] == pytest.approx(rewards)
        assert shown.rewards == pytest.approx(rewards, abs=5e-3)
        assert shown.success is terminated is episode["success"]
        assert [s[1] for s in shown.steps] == [step["label"] for step in trajectory["trajectory"]]
        assert trajectory["trajectory"][0]["observation_text"].startswith(f"Task {episode['task_id']}")
    summary = {(row["model"], row["task_id"]): row for row in results["summary"]}
    for task_id in ("easy", "hard"):
        scores = [e["score"] for e in episodes if e["task_id"] == task_id]
        assert summary[("random", task_id)]["mean_score"] == pytest.approx(statistics.fmean(scores), abs=1e-6)
        assert summary[("random", task_id)]["episodes"] == 3


def test_concurrent_episodes_print_whole_blocks_and_match_a_serial_run(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--policy", "heuristic", "--tasks", "easy,medium,hard,expert", "--seeds", "0-2"]
    code, serial_out, _ = run_main(capsys, *args, "--no-progress")
    assert code == 0
    code, parallel_out, parallel_err = run_main(capsys, *args, "--concurrency", "5")
    assert code == 0
    serial, parallel = parse_stdout(serial_out), parse_stdout(parallel_out)
    assert len(parallel) == 12
    key = lambda e: (e.task_id, e.score, tuple(e.rewards), tuple(s[1] for s in e.steps))  # noqa: E731
    assert sorted(map(key, serial)) == sorted(map(key, parallel))
    # Progress and the summary table go to stderr, one progress line per episode.
    assert len(re.findall(r"^\[\d+/12\] heuristic ", parallel_err, re.M)) == 12
    assert "| heuristic | hard | 3 |" in parallel_err


def test_policy_all_and_the_baseline_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: tuple[FakeModel, str]
) -> None:
    baseline = tmp_path / "baseline.json"
    code, out, err = run_main(
        capsys,
        "--policy",
        "all",
        "--tasks",
        "easy,hard",
        "--seeds",
        "0-3",
        "--update-baseline",
        "--baseline-file",
        str(baseline),
        "--no-progress",
    )
    assert code == 0, err
    players = set(settings.resolve_policy_names("all"))
    assert players >= set(POLICIES)
    assert {e.model for e in parse_stdout(out)} == players
    document = json.loads(baseline.read_text())
    assert set(document["rows"]) == players
    for name, row in document["rows"].items():
        assert row["kind"] == "policy" and row["settings"]["seeds"] == "0-3" and row["date"]
        for task_id in ("easy", "hard"):
            assert row["episodes"][task_id] == 4
            if name in POLICIES:
                expected = statistics.fmean(policy_scores(name, task_id, [0, 1, 2, 3]))
                assert row["scores"][task_id] == pytest.approx(expected, abs=1e-6)
    # A model's row joins the policies' rows, with its settings.
    model, base_url = fake_model
    code, _, err = run_main(
        capsys,
        *llm_args(base_url, "--tasks", "easy", "--seeds", "0", "--update-baseline", "--baseline-file", str(baseline)),
    )
    assert code == 0, err
    document = json.loads(baseline.read_text())
    assert set(document["rows"]) == {*players, "fake-model"}
    row = document["rows"]["fake-model"]
    assert row["kind"] == "model" and row["settings"]["temperature"] == 0.0
    assert "test-key" not in baseline.read_text()
    assert "--api-key REDACTED" in row["settings"]["command"]
    code, table, _ = run_main(capsys, "--baseline-table", "--baseline-file", str(baseline))
    assert code == 0
    assert table.splitlines()[0] == "| policy or model | easy | hard | seeds |"
    heuristic_line = next(line for line in table.splitlines() if line.startswith("| heuristic |"))
    assert f"{document['rows']['heuristic']['scores']['hard']:.3f}" in heuristic_line


def test_committed_baseline_is_what_the_command_produces() -> None:
    """baseline_scores.json holds every built-in policy's grades, as the recorded command makes them.
    When the simulation or a grader changes, rerun the command in the file's ``command``."""
    document = json.loads((REPO / "baseline_scores.json").read_text())
    rows = document["rows"]
    for name in POLICIES:
        assert name in rows, f"no baseline row for policy {name!r}; run: {document['command']}"
        row = rows[name]
        seeds = list(settings.parse_seeds(row["settings"]["seeds"]))
        assert row["settings"]["environment"] == "in-process"
        for task_id, recorded in row["scores"].items():
            assert statistics.fmean(policy_scores(name, task_id, seeds)) == pytest.approx(recorded, abs=1e-6), (
                f"baseline of {name} on {task_id} is stale; run: {document['command']}"
            )
    if settings.oracle_available():
        assert settings.ORACLE in rows, f"no baseline row for the oracle; run: {document['command']}"
    if settings.ORACLE in rows:
        # The oracle's search starts from the built-in policies' plans: it never does worse on any task.
        for task_id, best in rows[settings.ORACLE]["scores"].items():
            for name in POLICIES:
                assert best >= rows[name]["scores"][task_id] - 1e-6, (name, task_id)


def test_oracle_plays_its_best_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    oracle = pytest.importorskip(settings.ORACLE_MODULE)
    from workflow_orchestrator.server.tasks import default_registry

    output = tmp_path / "results.json"
    code, out, err = run_main(
        capsys, "--policy", "oracle", "--tasks", "hard,expert", "--seeds", "3", "--output", str(output), "--no-progress"
    )
    assert code == 0, err
    assert [e.model for e in parse_stdout(out)] == ["oracle", "oracle"]
    for episode in json.loads(output.read_text())["episodes"]:
        task_id = episode["task_id"]
        solved = oracle.solve(default_registry().resolve(task_id, seed=3).compiled, 3, seconds=60)
        assert episode["score"] == pytest.approx(solved.best_score)
        assert episode["score"] >= policy_scores("heuristic", task_id, [3])[0] - 1e-9
    assert "oracle" in settings.resolve_policy_names("all")


# --------------------------------------------------------------------------- the model


NOISY_STYLES = (
    "{action}",
    '<think>The state lists what is legal. Waiting would be {{"action_type": "wait"}}.</think>\n{action}',
    "Looking at the ready work, the best move:\n```json\n{action}\n```\nThis keeps the critical path busy.",
    "Action: {action} -- done.",
)


def test_model_answers_in_json_with_noise_play_a_full_episode(
    capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str], tmp_path: Path
) -> None:
    model, base_url = fake_model
    sent: list[dict[str, Any]] = []

    def noisy(prompt: str) -> Reply:
        action = first_sensible_action(prompt)
        sent.append(action)
        return Reply(NOISY_STYLES[len(sent) % len(NOISY_STYLES)].format(action=json.dumps(action)))

    model.default = noisy
    output = tmp_path / "results.json"
    code, out, err = run_main(capsys, *llm_args(base_url, "--tasks", "easy", "--seeds", "3", "--output", str(output)))
    assert code == 0, err
    (episode,) = parse_stdout(out)
    assert episode.model == "fake-model"
    assert [s[1] for s in episode.steps] == [answers.action_label(a) for a in sent]
    assert all(s[4] == "null" for s in episode.steps)
    score, rewards, terminated = replay("easy", 3, sent)
    assert episode.score == pytest.approx(score, abs=5e-4) and episode.success is terminated is True
    assert score > 0.5
    result = json.loads(output.read_text())["episodes"][0]
    assert result["tokens"] == 110 * len(sent)
    # What the model was asked: the rules, the rendered state, the settings.
    first = model.requests[0]
    assert first["model"] == "fake-model" and first["temperature"] == 0.0 and "tools" not in first
    system, user = first["messages"][0]["content"], first["messages"][1]["content"]
    assert "permanent failure" in system and "exactly one JSON object" in system
    assert "Task easy (seed 3, tick time)" in user and "- delegate(technical_design,tech_lead)" in user
    later = model.requests[2]["messages"][1]["content"]
    assert "step 1: delegate(technical_design,tech_lead)" in later and "step 2:" in later


def test_unparseable_answer_becomes_a_logged_wait(
    capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    model.script = [Reply("I am not sure what to do here."), Reply('{"action_type": "delegate", "subtask_id": ')]
    code, out, err = run_main(capsys, *llm_args(base_url, "--tasks", "easy", "--seeds", "0"))
    assert code == 0, err
    (episode,) = parse_stdout(out)
    assert episode.steps[0][1:] == ("wait()", episode.steps[0][2], False, "unparseable_answer")
    assert episode.steps[1][4] == "unparseable_answer"
    assert episode.steps[2][1] == "delegate(technical_design,tech_lead)" and episode.steps[2][4] == "null"
    assert err.count("unparseable_answer") == 2 and "I am not sure" in err
    # The model hears about it on the next turn.
    assert "your answer was not used: unparseable_answer" in model.requests[1]["messages"][1]["content"]


def test_invalid_actions_show_their_error_codes(
    capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    model.script = [
        Reply('{"action_type": "delegate", "subtask_id": "implement_backend", "agent_name": "backend_dev"}'),
        Reply('{"action_type": "synthesize"}'),
    ]
    code, out, err = run_main(capsys, *llm_args(base_url, "--tasks", "easy", "--seeds", "0"))
    assert code == 0, err
    (episode,) = parse_stdout(out)
    assert episode.steps[0][1] == "delegate(implement_backend,backend_dev)" and episode.steps[0][4] == "not_ready"
    assert episode.steps[1][1] == "synthesize()" and episode.steps[1][4] == "work_remaining"
    env = WorkflowEnv()
    env.reset("easy", seed=0)
    penalty = env.step({"action_type": "delegate", "subtask_id": "implement_backend", "agent_name": "backend_dev"})
    assert episode.steps[0][2] == pytest.approx(penalty["reward"]) and penalty["reward"] < 0


def test_tool_calls_mode(capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str], tmp_path: Path) -> None:
    model, base_url = fake_model

    def tool_player(prompt: str) -> Reply:
        starts = all_distinct_starts(prompt)
        if starts:
            return Reply(None, [(a["action_type"], {k: a[k] for k in ("subtask_id", "agent_name")}) for a in starts])
        action = first_sensible_action(prompt)
        return Reply(None, [(action["action_type"], {})])

    model.default = tool_player
    trajectories = tmp_path / "steps.jsonl"
    code, out, err = run_main(
        capsys,
        *llm_args(
            base_url, "--tool-calls", "--tasks", "medium", "--seeds", "2", "--save-trajectories", str(trajectories)
        ),
    )
    assert code == 0, err
    (episode,) = parse_stdout(out)
    first = model.requests[0]
    assert sorted(t["function"]["name"] for t in first["tools"]) == sorted(answers.ACTION_TYPES)
    assert "calling exactly one of the tools" in first["messages"][0]["content"]
    # After checkout, lint, unit tests and the scan start together: several tool calls, one dispatch.
    assert any(s[1].startswith("dispatch(") and s[1].count(":") >= 2 for s in episode.steps)
    assert all("unparseable" not in s[4] for s in episode.steps)
    (saved,) = read_jsonl(trajectories)
    actions = [step["action"] for step in saved["trajectory"]]
    score, _, _ = replay("medium", 2, actions)
    assert episode.score == pytest.approx(score, abs=5e-4) and score > 0.5
    # The trajectory keeps the exact messages, for reading or for training on.
    assert saved["system_prompt"] == first["messages"][0]["content"]
    assert [step["prompt"] for step in saved["trajectory"]] == [r["messages"][1]["content"] for r in model.requests]
    assert json.loads(saved["trajectory"][0]["answer"])[0]["name"] == "delegate"


def test_http_errors_are_retried_with_backoff(
    capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    model.script = [Reply(status=500), Reply(status=429, headers={"Retry-After": "0"}), Reply(status=503)]
    code, out, err = run_main(capsys, *llm_args(base_url, "--tasks", "easy", "--seeds", "0"))
    assert code == 0, err
    (episode,) = parse_stdout(out)
    assert episode.steps[0][1] == "delegate(technical_design,tech_lead)" and episode.steps[0][4] == "null"
    assert len(model.requests) == len(episode.steps) + 3
    assert len(re.findall(r"retry \d of 4", err)) == 3


def test_slow_answers_and_spent_retries_fall_back(
    capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    slow = Reply('{"action_type": "wait"}', delay_s=1.2)
    model.script = [slow, slow, Reply(status=500), Reply(status=500), Reply(status=400)]
    started = time.monotonic()
    code, out, err = run_main(
        capsys, *llm_args(base_url, "--tasks", "easy", "--seeds", "0", "--request-timeout", "0.4", "--max-retries", "1")
    )
    assert code == 0, err
    assert time.monotonic() - started < 10
    (episode,) = parse_stdout(out)
    # Two timeouts, two 500s (each one retry), then a 400 that is not retried.
    assert [s[4] for s in episode.steps[:3]] == ["model_call_failed"] * 3
    assert [s[1] for s in episode.steps[:3]] == ["wait()"] * 3
    assert episode.steps[3][4] == "null"
    assert "HTTP 400" in err and "after 2 attempts" in err


def test_episode_timeout_plays_the_episode_out(
    capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    model.default = lambda prompt: Reply(json.dumps(first_sensible_action(prompt)), delay_s=0.3)
    code, out, err = run_main(
        capsys, *llm_args(base_url, "--tasks", "easy", "--seeds", "0", "--episode-timeout", "1.0")
    )
    assert code == 0, err
    (episode,) = parse_stdout(out)
    issues = [s[4] for s in episode.steps]
    assert "episode_timeout" in issues and issues[0] == "null"
    # Once the time is up, every later step is a wait that says so.
    first_timeout = issues.index("episode_timeout")
    assert all(i.startswith("episode_timeout") for i in issues[first_timeout:])
    assert episode.step_count == 15 and episode.success is False  # easy's time limit


def test_refused_key_stops_the_run(capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str]) -> None:
    model, base_url = fake_model
    model.default = lambda prompt: Reply(status=401)
    code, out, err = run_main(capsys, *llm_args(base_url, "--tasks", "easy,hard", "--seeds", "0-4"))
    assert code == 1
    assert len(model.requests) == 1
    assert err.strip().splitlines()[-1].startswith("inference.py: the model API refused the request: HTTP 401")
    (episode,) = parse_stdout(out)  # the episode under way still ends its lines
    assert episode.step_count == 0 and episode.success is False


def test_requests_refused_again_and_again_stop_the_run(
    capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    model.default = lambda prompt: Reply(status=400)
    code, out, err = run_main(capsys, *llm_args(base_url, "--tasks", "easy", "--seeds", "0-3"))
    assert code == 1
    assert len(model.requests) == players.MAX_REFUSALS_IN_A_ROW  # 400 is never retried
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(f"inference.py: the model API refused {players.MAX_REFUSALS_IN_A_ROW} requests in a row: HTTP 400")
    )
    (episode,) = parse_stdout(out)
    assert [s[4] for s in episode.steps] == ["model_call_failed"] * (players.MAX_REFUSALS_IN_A_ROW - 1)


def test_an_unreachable_model_api_stops_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    started = time.monotonic()
    code, out, err = run_main(capsys, *llm_args(base_url, "--tasks", "easy,hard", "--seeds", "0-4"))
    assert code == 1
    assert time.monotonic() - started < 60
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            f"inference.py: cannot reach the model API at {base_url}/ "
            f"({players.MAX_UNREACHABLE_IN_A_ROW} attempts in a row)"
        )
    )
    (episode,) = parse_stdout(out)
    assert episode.step_count < players.MAX_UNREACHABLE_IN_A_ROW


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "heuristic", "--tasks", "easy,nonsense"], "unknown task nonsense"),
        (["--policy", "clever"], "unknown policy 'clever'"),
        (["--policy", "heuristic", "--seeds", "9-1"], "is empty"),
        (["--policy", "heuristic", "--update-baseline"], "needs --seeds"),
        (["--policy", "heuristic", "--concurrency", "0"], "at least 1"),
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run_main(capsys, *argv, "--no-progress")
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- as a script


def test_missing_api_key_is_one_line_and_exit_2() -> None:
    result = run_script("--tasks", "easy", "--model", "m")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "inference.py: no API key: set API_KEY (or HF_TOKEN), or choose a built-in policy with --policy"
    )


def test_import_needs_no_settings() -> None:
    code = (
        "import workflow_orchestrator.inference as module, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import inference\n"
        "print(module.ENV_NAME, inference.ENV_NAME)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(REPO)],
        capture_output=True,
        text=True,
        env=clean_environ(),
        cwd="/",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["workflow_orchestrator", "workflow_orchestrator"]


def test_unreachable_environment_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "--policy", "noop", "--env-url", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and out == ""
    assert err.startswith("inference.py: cannot reach the environment at http://127.0.0.1:")


def test_model_against_the_environment_server(
    env_server: str, fake_model: tuple[FakeModel, str], tmp_path: Path
) -> None:
    """Over ENV_URL with episodes at once: each episode is graded by its own episode_id."""
    model, base_url = fake_model
    environ = clean_environ() | {
        "ENV_URL": env_server,
        "API_BASE_URL": base_url,
        "HF_TOKEN": "test-key",
        "MODEL_NAME": "fake-model",
    }
    trajectories, output = tmp_path / "steps.jsonl", tmp_path / "results.json"
    result = run_script(
        "--tasks",
        "easy,medium,hard",
        "--seeds",
        "0-1",
        "--concurrency",
        "3",
        "--retry-backoff",
        "0.01",
        "--save-trajectories",
        str(trajectories),
        "--output",
        str(output),
        environ=environ,
    )
    assert result.returncode == 0, result.stderr
    printed = parse_stdout(result.stdout)
    assert len(printed) == 6
    episodes = read_jsonl(trajectories)
    assert len({e["episode_id"] for e in episodes}) == 6
    assert not any(e["episode_id"].startswith("local-") for e in episodes)
    for episode in episodes:
        actions = [step["action"] for step in episode["trajectory"]]
        score, rewards, _ = replay(episode["task_id"], episode["seed"], actions)
        assert episode["score"] == pytest.approx(score), episode["task_id"]
        assert [s["reward"] for s in episode["trajectory"]] == pytest.approx(rewards)
        assert episode["grade"]["episode_id"] == episode["episode_id"]
    printed_scores = sorted((e.task_id, round(e.score, 3)) for e in printed)
    assert printed_scores == sorted((e["task_id"], round(e["score"], 3)) for e in episodes)
    assert json.loads(output.read_text())["settings"]["environment"] == env_server


def test_an_action_the_server_refuses_becomes_a_wait(
    env_server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shape the wire refuses (an id longer than the wire allows) is answered with a wait, not a crash."""

    class Oversized:
        async def decide(self, observation: Any, deadline: float) -> players.Decision:
            if observation["step_count"] == 0:
                return players.Decision({"action_type": "abort", "subtask_id": "x" * 100})
            return players.Decision({"action_type": "wait"})

        def observe(self, *args: Any) -> None:
            pass

    monkeypatch.setattr(episodes.Runner, "new_player", lambda self, job, observation: Oversized())
    code, out, err = run_main(
        capsys, "--policy", "noop", "--tasks", "easy", "--seeds", "0", "--env-url", env_server, "--no-progress"
    )
    assert code == 0, err
    (episode,) = parse_stdout(out)
    assert episode.steps[0][1] == "wait()" and episode.steps[0][4] == "rejected_by_environment"
    assert episode.step_count == 15 and "refused" in err


def test_policies_score_the_same_on_the_server_and_in_process(
    env_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--policy", "greedy", "--tasks", "medium,expert", "--seeds", "5-7", "--no-progress"]
    code, remote_out, err = run_main(capsys, *args, "--env-url", env_server, "--concurrency", "3")
    assert code == 0, err
    code, local_out, _ = run_main(capsys, *args)
    assert code == 0
    key = lambda e: (e.task_id, e.score, tuple(e.rewards))  # noqa: E731
    assert sorted(map(key, parse_stdout(remote_out))) == sorted(map(key, parse_stdout(local_out)))


def test_the_server_serves_the_recorded_baseline(env_server: str) -> None:
    served = httpx.post(env_server + "/baseline", timeout=10)
    assert served.status_code == 200
    assert served.json() == json.loads((REPO / "baseline_scores.json").read_text())


class LosesFirstStepAnswer(httpx.AsyncBaseTransport):
    """Forwards every request to the server, but loses the answer to the first /step (as a dropped connection)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.steps_sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == "/step":
            self.steps_sent += 1
            if self.steps_sent == 1:
                await response.aread()
                await response.aclose()
                raise httpx.ReadError("connection lost before the answer", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_remote_step_whose_answer_was_lost_is_sent_again_and_applied_once(env_server: str) -> None:
    transport = LosesFirstStepAnswer()

    async def play() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with httpx.AsyncClient(base_url=env_server, transport=transport, timeout=30) as client:
            session = RemoteSession(client)
            await session.reset("easy", 3, None)
            first = await session.step({"action_type": "wait"})
            second = await session.step({"action_type": "wait"})
            state = (await client.get("/state", params={"episode_id": session.episode_id})).json()
            return first, second, state

    first, second, state = asyncio.run(play())
    assert transport.steps_sent == 3  # the lost one, its retry, the next step
    assert (first["step_count"], second["step_count"], state["step_count"]) == (1, 2, 2)


# --------------------------------------------------------------------------- reports: repeats, resume, tokens


def test_repeats_play_each_seed_k_times_and_report_pass_hat_k(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "results.json"
    argv = ["--policy", "heuristic", "--tasks", "easy", "--seeds", "0-2", "--repeats", "2", "--output", str(output)]
    code, out, err = run_main(capsys, *argv, "--pass-threshold", "0.5")
    assert code == 0, err
    document = json.loads(output.read_text())
    episodes = document["episodes"]
    assert [(e["seed"], e["repeat"]) for e in episodes] == [(s, r) for s in range(3) for r in range(2)]
    # A built-in policy is deterministic: its repeats are the same episode.
    for first, second in zip(episodes[::2], episodes[1::2], strict=True):
        assert first["score"] == second["score"]
    (row,) = document["summary"]
    solved = [s for s in range(3) if episodes[2 * s]["score"] >= 0.5]
    assert row["pass_hat_k"] == pytest.approx(len(solved) / 3) and row["repeats"] == 2
    assert document["settings"]["repeats"] == 2 and document["settings"]["pass_threshold"] == 0.5
    assert "(k=2, ≥ 0.5)" in err
    code, _, err = run_main(capsys, *argv, "--pass-threshold", "1.01")
    assert code == 2 and "--pass-threshold" in err


def _comparable(document: dict[str, Any]) -> dict[str, Any]:
    """A results document without what differs from one run to the next (times, episode ids)."""
    clean = json.loads(json.dumps(document))
    for key in ("started_at", "finished_at"):
        clean.pop(key)
    clean["settings"].pop("command")
    for episode in clean["episodes"]:
        episode.pop("wall_s"), episode.pop("episode_id")
    for row in clean["summary"]:
        row.pop("mean_wall_s")
    return clean


def _comparable_trajectory(line: dict[str, Any]) -> dict[str, Any]:
    clean = {k: v for k, v in line.items() if k not in ("wall_s", "episode_id")}
    clean["trajectory"] = [{k: v for k, v in s.items() if k != "latency_s"} for s in clean["trajectory"]]
    return clean


def test_an_interrupted_run_resumed_reports_what_an_uninterrupted_run_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def argv(name: str) -> list[str]:
        return [
            "--policy",
            "all",
            "--tasks",
            "easy,hard",
            "--seeds",
            "0-2",
            "--repeats",
            "2",
            "--output",
            str(tmp_path / f"{name}.json"),
            "--save-trajectories",
            str(tmp_path / f"{name}.jsonl"),
        ]

    code, whole_out, err = run_main(capsys, *argv("whole"))
    assert code == 0, err
    whole = json.loads((tmp_path / "whole.json").read_text())
    total = len(whole["episodes"])

    # Stop the run after a few episodes, as Ctrl-C would.
    play = episodes.Runner.play
    played = 0

    async def interrupted(self: episodes.Runner, job: episodes.EpisodeJob) -> episodes.EpisodeResult:
        nonlocal played
        if played == 5:
            raise KeyboardInterrupt
        played += 1
        return await play(self, job)

    monkeypatch.setattr(episodes.Runner, "play", interrupted)
    assert run_main(capsys, *argv("resumed"))[0] == 130
    partial = json.loads((tmp_path / "resumed.json").read_text())
    assert partial["complete"] is False and len(partial["episodes"]) == 5
    monkeypatch.setattr(episodes.Runner, "play", play)
    # A torn last trajectory line, and one episode whose trajectory never got written: both are played again.
    lines = (tmp_path / "resumed.jsonl").read_text().splitlines()
    (tmp_path / "resumed.jsonl").write_text("\n".join(lines[:3] + [lines[4], lines[4][:40]]) + "\n")

    code, resumed_out, err = run_main(capsys, *argv("resumed"), "--resume")
    assert code == 0, err
    assert len(parse_stdout(resumed_out)) == total - 4
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["complete"] is True and resumed["started_at"] == partial["started_at"]
    assert _comparable(resumed) == _comparable(whole)
    assert [_comparable_trajectory(t) for t in read_jsonl(tmp_path / "resumed.jsonl")] == [
        _comparable_trajectory(t) for t in read_jsonl(tmp_path / "whole.jsonl")
    ]
    # Nothing left to play: the file stays as it is.
    code, out, err = run_main(capsys, *argv("resumed"), "--resume")
    assert (
        code == 0
        and out == ""
        and _comparable(json.loads((tmp_path / "resumed.json").read_text())) == (_comparable(whole))
    )


def test_resume_refuses_a_file_of_other_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    assert run_main(capsys, "--policy", "noop", "--tasks", "easy", "--seeds", "0", "--output", str(output))[0] == 0
    code, _, err = run_main(
        capsys, "--policy", "noop", "--tasks", "easy", "--seeds", "0-1", "--output", str(output), "--resume"
    )
    assert code == 2 and "other settings" in err
    code, _, err = run_main(capsys, "--policy", "noop", "--resume")
    assert code == 2 and "--output" in err


def test_token_usage_per_episode_per_task_and_in_total(
    capsys: pytest.CaptureFixture[str], fake_model: tuple[FakeModel, str], tmp_path: Path
) -> None:
    model, base_url = fake_model
    output = tmp_path / "results.json"
    code, _, err = run_main(capsys, *llm_args(base_url, "--tasks", "easy", "--seeds", "3-4", "--output", str(output)))
    assert code == 0, err
    document = json.loads(output.read_text())
    calls = len(model.answered)
    episodes_steps = [e["steps"] for e in document["episodes"]]
    assert sum(episodes_steps) == calls
    for episode in document["episodes"]:
        steps = episode["steps"]
        assert (episode["prompt_tokens"], episode["completion_tokens"]) == (100 * steps, 10 * steps)
    (row,) = document["summary"]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (100 * calls, 10 * calls)
    assert document["totals"] == {"prompt_tokens": 100 * calls, "completion_tokens": 10 * calls, "tokens": 110 * calls}
