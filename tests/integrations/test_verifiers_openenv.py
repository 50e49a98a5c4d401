"""verifiers' OpenEnv taskset plays this environment, unmodified, over the wire.

verifiers (``vf-eval``, its OpenEnv taskset and openenv 0.4.1's client) runs from
its own venv, outside the repository (``bash .ci/install-verifiers``): its pins
(openai<3, mcp 2) exclude this project's. The test starts the real server and a
small OpenAI-compatible model server (streaming, as verifiers' harness asks),
runs ``vf-eval`` against both, and compares the reward verifiers recorded with
the grade of the same episode played in this process: verifiers sums the
per-step rewards, so under ``reward_mode: grade`` its reward is the grade.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tests.support.server_fixtures import RunningServer
from tests.support.threaded_server import ThreadedServer
from workflow_orchestrator.server.inprocess import WorkflowEnv

# Where .ci/install-verifiers puts it.
VENV = Path(
    os.environ.get("WORKFLOW_ORCHESTRATOR_VERIFIERS_VENV")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workflow_orchestrator" / "verifiers-venv"
)
VF_EVAL = VENV / "bin" / "vf-eval"
# Short episodes: verifiers' harness takes a second or more a turn.
RESETS = [
    {"task_id": "easy", "seed": 1, "reward_mode": "grade"},
    {"task_id": "easy", "seed": 2, "reward_mode": "shaped"},
]

pytestmark = pytest.mark.skipif(
    not VF_EVAL.exists(),
    reason=f"verifiers is not installed in {VENV} (bash .ci/install-verifiers; its pins exclude this "
    "project's, so it has a venv of its own)",
)


def choose(observation: dict[str, Any]) -> dict[str, Any]:
    """The model's policy: deliver, else start work (a dispatch first), else wait."""
    legal = observation.get("legal_actions") or []
    for kind in ("synthesize", "dispatch", "delegate", "retry", "wait"):
        for action in legal:
            if action.get("action_type") == kind:
                return dict(action)
    return {"action_type": "wait"}


def model_app(prompts: list[dict[str, Any]]) -> FastAPI:
    """Chat completions that read the taskset's turn (the observation and the action schema, as JSON)
    and answer with one action as JSON; streamed when asked."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        content = body["messages"][-1]["content"]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        turn = json.loads(content)
        prompts.append(turn)
        answer = json.dumps(choose(turn["observation"]))
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        head = {"id": "chatcmpl-test", "created": 0, "model": body["model"]}
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return JSONResponse({**head, "object": "chat.completion", "choices": [choice], "usage": usage})
        chunk = {**head, "object": "chat.completion.chunk"}
        events = [
            {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": answer}}]},
            {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**chunk, "choices": [], "usage": usage},
        ]
        lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
        return StreamingResponse(iter(lines), media_type="text/event-stream")

    return app


def play_alone(reset: dict[str, Any]) -> tuple[float, float, int]:
    """The same episode in this process: its return, its grade and its step count."""
    env = WorkflowEnv()
    observation = env.reset(reset["task_id"], seed=reset["seed"], reward_mode=reset["reward_mode"])
    total, steps = 0.0, 0
    while not observation["done"]:
        observation = env.step(choose(observation))
        total += observation["reward"]
        steps += 1
    return total, env.grade()["score"], steps


def test_vf_eval_plays_and_scores_episodes_over_the_wire(live_server: RunningServer, tmp_path: Path) -> None:
    prompts: list[dict[str, Any]] = []
    with ThreadedServer(model_app(prompts)) as model:
        config = tmp_path / "eval.toml"
        config.write_text(
            "\n".join(
                [
                    'model = "tiny"',
                    "push = false",
                    f'output_dir = "{tmp_path / "out"}"',
                    "[env.taskset]",
                    'id = "openenv"',
                    f'base_url = "{live_server.url}"',
                    "resets = " + json.dumps(RESETS).replace(":", " ="),
                    "[env.player.runtime]",
                    'type = "subprocess"',
                    "[client]",
                    f'base_url = "http://127.0.0.1:{model.port}/v1"',
                    'api_key_var = "FAKE_MODEL_KEY"',
                ]
            )
        )
        environ = {**os.environ, "FAKE_MODEL_KEY": "test", "XDG_CACHE_HOME": str(tmp_path / "cache")}
        environ.pop("VIRTUAL_ENV", None)
        run = subprocess.run(
            [str(VF_EVAL), "@", str(config)], capture_output=True, text=True, timeout=600, env=environ, cwd=tmp_path
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [traces_file] = (tmp_path / "out").glob("*/traces.jsonl")
    episodes = [json.loads(line) for line in traces_file.read_text().splitlines() if line.strip()]
    assert len(episodes) == len(RESETS)
    by_reset = {json.dumps(episode["task"]["data"]["reset"], sort_keys=True): episode for episode in episodes}
    for reset in RESETS:
        episode = by_reset[json.dumps(reset, sort_keys=True)]
        assert episode["ok"], episode.get("errors")
        [trace] = episode["traces"]
        total, grade, steps = play_alone(reset)
        assert trace["rewards"]["openenv_reward"]["score"] == pytest.approx(total, abs=1e-6)
        if reset["reward_mode"] == "grade":
            assert total == pytest.approx(grade, abs=1e-9) and grade > 0.5
        assert len(trace["calls"]) == steps  # one model call per step
    # The model saw our observation and the action schema from /schema.
    assert all("legal_actions" in turn["observation"] and "properties" in turn["action_schema"] for turn in prompts)
