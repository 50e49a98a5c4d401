"""Evaluate a model, or a built-in policy, on workflow_orchestrator tasks.

An LLM behind any OpenAI-compatible API plays the chosen tasks and seeds,
against a running environment server (``ENV_URL``) or an in-process
environment; or a built-in policy plays them instead (``--policy``)::

    API_BASE_URL=https://router.huggingface.co/v1 HF_TOKEN=... MODEL_NAME=Qwen/Qwen3-32B \\
        python inference.py --tasks easy,hard --seeds 0-9 --concurrency 4 --output results.json
    python inference.py --policy heuristic --tasks hard --seeds 100-199
    python inference.py --policy all --tasks easy,medium,hard,expert --seeds 0-19 --update-baseline

Settings: ``API_BASE_URL``, ``API_KEY`` (``HF_TOKEN`` when unset),
``MODEL_NAME``, ``ENV_URL`` and ``WORKFLOW_ORCHESTRATOR_TOKEN`` (the server's
bearer token, when it has one); flags override them (``--help``).

stdout carries only these lines, one set per episode, in one block per
episode; everything else (progress, warnings, the summary table) goes to stderr::

    [START] task=<task_id> env=workflow_orchestrator model=<model or policy>
    [STEP] step=<n> action=<label> reward=<0.00> done=<true|false> error=<codes|null>
    [END] success=<true|false> steps=<n> score=<0.000> rewards=<r1,r2,...>

``label`` is ``delegate(subtask,agent)``, ``retry(subtask,agent)``,
``abort(subtask)``, ``wait()``, ``synthesize()``, or for several starts in one
step ``dispatch(s1:a1,s2:a2)`` (``dispatch(s1)`` when the environment picks the
agent). ``error`` lists comma-separated codes: the environment's codes for an
invalid action (``not_ready``, ``capability_mismatch``, ...) and this runner's
own: ``unparseable_answer`` and ``model_call_failed`` (a ``wait`` was played
instead of the model's answer), ``episode_timeout`` (the episode ran out of
wall time; it is played out with ``wait``), ``rejected_by_environment`` (the
server refused the action's shape; a ``wait`` was played). Rewards are the
environment's true, unclamped step rewards. ``success`` is true when the
workflow ended (terminated) rather than ran out of time or steps; ``score`` is
the grade of the episode, asked for by its ``episode_id``.

Exit codes: 0 every episode ran and was graded; 1 a fatal error (the
environment is unreachable, the model API refuses the key or the model, or
refuses five requests in a row) or some episode could not be finished; 2 a usage error (no API key, no model
name, an unknown task or policy).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import importlib
import importlib.util
import json
import logging
import math
import os
import random
import re
import shlex
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

import httpx
import openai
from openai import AsyncOpenAI

from workflow_orchestrator.server.core import ActionError, WorkflowEnv, parse_action, render_text
from workflow_orchestrator.server.core.policies import POLICIES, make_policy
from workflow_orchestrator.server.tasks import MAX_SEED, UnknownTaskError, default_registry

logger = logging.getLogger("inference")

ENV_NAME = "workflow_orchestrator"
DEFAULT_TASKS = ("easy", "medium", "hard", "expert")
DEFAULT_API_BASE_URL = "https://router.huggingface.co/v1"
BASELINE_FILE = Path(__file__).resolve().with_name("baseline_scores.json")
BASELINE_COMMAND = "python inference.py --policy all --tasks easy,medium,hard,expert --seeds 0-19 --update-baseline"
ACTION_TYPES = ("delegate", "dispatch", "retry", "wait", "synthesize", "abort")
# The wire limits of models.py: longer ids are never real ids, longer batches are refused.
MAX_ID_LENGTH = 64
MAX_BATCH = 64
# Every task ends by its time or step limit; this only stops a misbehaving server.
MAX_EPISODE_STEPS = 10_000
WAIT: dict[str, Any] = {"action_type": "wait"}
MAX_REFUSALS_IN_A_ROW = 5
ORACLE = "oracle"
ORACLE_MODULE = "workflow_orchestrator.server.oracle"
# The oracle's search time per episode: enough to prove the scenarios' plans optimal.
ORACLE_SECONDS = 60.0

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A setting the user has to fix; exit code 2 with a one-line message."""


class FatalError(Exception):
    """Nothing more can be evaluated (unreachable environment, refused key); exit code 1."""


class ModelCallFailed(Exception):
    """One model call gave no answer after its retries; the step plays a fallback."""


class EpisodeFailure(Exception):
    """One episode could not go on (the environment failed, or a player cannot play its task)."""


class ActionRejected(Exception):
    """The environment refused the shape of an action (a 4xx on /step)."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class RunSettings:
    policies: tuple[str, ...]  # built-in policy names; empty: the LLM plays
    model: str | None
    api_base_url: str
    api_key: str | None = field(repr=False)
    env_url: str | None
    env_token: str | None = field(repr=False)
    tasks: tuple[str, ...]
    seeds: tuple[int | None, ...]
    seeds_text: str
    worker_count: int | None
    concurrency: int
    tool_calls: bool
    temperature: float
    max_tokens: int
    request_timeout_s: float
    episode_timeout_s: float
    max_retries: int
    retry_backoff_s: float
    history: int
    output: Path | None
    trajectories: Path | None
    update_baseline: bool
    baseline_file: Path
    progress: bool
    command: str

    @property
    def uses_model(self) -> bool:
        return not self.policies

    def public(self) -> dict[str, Any]:
        """The settings worth recording next to results (no secrets)."""
        out: dict[str, Any] = {
            "tasks": list(self.tasks),
            "seeds": self.seeds_text,
            "environment": self.env_url or "in-process",
            "concurrency": self.concurrency,
            "command": self.command,
        }
        if self.worker_count is not None:
            out["worker_count"] = self.worker_count
        if self.uses_model:
            out.update(
                api_base_url=self.api_base_url,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                tool_calls=self.tool_calls,
                request_timeout_s=self.request_timeout_s,
                episode_timeout_s=self.episode_timeout_s,
                max_retries=self.max_retries,
                history=self.history,
            )
        return out


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"3"``, ``"1,4,9"``, ``"100-199"`` or a mix (``"0-4,10"``), in the order given, without repeats."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise UsageError(f"--seeds: {part!r} is not a seed or a range such as 100-199") from None
        if first > last:
            raise UsageError(f"--seeds: the range {part!r} is empty")
        if first < 0 or last > MAX_SEED:
            raise UsageError(f"--seeds: seeds go from 0 to {MAX_SEED}, got {part!r}")
        if last - first >= 100_000:
            raise UsageError(f"--seeds: the range {part!r} has more than 100000 seeds")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise UsageError("--seeds: give seeds such as 0-19 or 1,2,3")
    return tuple(dict.fromkeys(seeds))


def parse_task_list(text: str) -> tuple[str, ...]:
    tasks = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not tasks:
        raise UsageError("--tasks: give task ids such as easy,medium,hard,expert")
    return tasks


def oracle_available() -> bool:
    return importlib.util.find_spec(ORACLE_MODULE) is not None


def resolve_policy_names(name: str) -> tuple[str, ...]:
    """``all`` is every built-in policy, and the oracle when this installation has it."""
    if name == "all":
        return (*POLICIES, ORACLE) if oracle_available() else tuple(POLICIES)
    if name in POLICIES:
        return (name,)
    if name == ORACLE:
        if not oracle_available():
            raise UsageError("the oracle is not part of this installation of the environment")
        return (ORACLE,)
    raise UsageError(f"unknown policy {name!r}; choose from: {', '.join([*POLICIES, ORACLE, 'all'])}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inference.py",
        description="Evaluate an LLM (any OpenAI-compatible API) or a built-in policy on workflow_orchestrator.",
        epilog="Environment variables: API_BASE_URL, API_KEY (or HF_TOKEN), MODEL_NAME, ENV_URL, "
        "WORKFLOW_ORCHESTRATOR_TOKEN. Flags override them.",
    )
    who = parser.add_argument_group("who plays")
    who.add_argument("--policy", help="a built-in policy instead of the LLM: " + ", ".join([*POLICIES, ORACLE, "all"]))
    who.add_argument("--model", help="model name (default: $MODEL_NAME)")
    who.add_argument(
        "--api-base-url", help=f"OpenAI-compatible base URL (default: $API_BASE_URL or {DEFAULT_API_BASE_URL})"
    )
    who.add_argument("--api-key", help="API key (default: $API_KEY, else $HF_TOKEN); prefer the variables")
    what = parser.add_argument_group("what it plays")
    what.add_argument("--env-url", help="environment server URL (default: $ENV_URL; unset: an in-process environment)")
    what.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated task ids (default %(default)s)")
    what.add_argument(
        "--seeds", help="seeds: a list and/or ranges, e.g. 0-19 or 1,5,9 (default: each task's canonical seed)"
    )
    what.add_argument("--worker-count", type=int, help="worker count for generated tasks")
    how = parser.add_argument_group("how the model is asked")
    how.add_argument(
        "--tool-calls", action="store_true", help="answer through OpenAI tool calling instead of JSON text"
    )
    how.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default %(default)s)")
    how.add_argument("--max-tokens", type=int, default=2048, help="answer length limit (default %(default)s)")
    how.add_argument("--request-timeout", type=float, default=60.0, help="seconds per model call (default %(default)s)")
    how.add_argument(
        "--episode-timeout", type=float, default=1800.0, help="wall seconds per episode (default %(default)s)"
    )
    how.add_argument("--max-retries", type=int, default=4, help="retries of a failed model call (default %(default)s)")
    how.add_argument(
        "--retry-backoff",
        type=float,
        default=1.0,
        help="first retry delay in seconds, doubled each time (default %(default)s)",
    )
    how.add_argument("--history", type=int, default=8, help="recent steps shown to the model (default %(default)s)")
    how.add_argument("--concurrency", type=int, default=1, help="episodes played at once (default %(default)s)")
    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, help="write a results JSON here")
    out.add_argument("--save-trajectories", type=Path, help="write one JSON line per episode with every step here")
    out.add_argument(
        "--update-baseline", action="store_true", help="record the mean grades per task in the baseline file"
    )
    out.add_argument(
        "--baseline-file",
        type=Path,
        default=BASELINE_FILE,
        help="baseline file (default: baseline_scores.json beside this script)",
    )
    out.add_argument(
        "--baseline-table", action="store_true", help="print the baseline file as a Markdown table and exit"
    )
    out.add_argument("--no-progress", action="store_true", help="no progress report on stderr")
    verbosity = out.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log every step and model call on stderr")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    return parser


def redacted_command(argv: Sequence[str]) -> str:
    words = list(argv)
    for i, word in enumerate(words):
        if word == "--api-key" and i + 1 < len(words):
            words[i + 1] = "REDACTED"
        elif word.startswith("--api-key="):
            words[i] = "--api-key=REDACTED"
    return shlex.join(["python", "inference.py", *words])


def settings_from(args: argparse.Namespace, argv: Sequence[str], environ: Mapping[str, str]) -> RunSettings:
    policies = resolve_policy_names(args.policy) if args.policy else ()
    model = args.model or environ.get("MODEL_NAME") or None
    api_key = args.api_key or environ.get("API_KEY") or environ.get("HF_TOKEN") or None
    if not policies:
        if not api_key:
            raise UsageError("no API key: set API_KEY (or HF_TOKEN), or choose a built-in policy with --policy")
        if not model:
            raise UsageError("no model: set MODEL_NAME or pass --model, or choose a built-in policy with --policy")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.max_tokens < 1 or args.max_retries < 0 or args.history < 0:
        raise UsageError("--max-tokens must be positive, --max-retries and --history not negative")
    if args.request_timeout <= 0 or args.episode_timeout <= 0 or args.retry_backoff < 0:
        raise UsageError("timeouts must be positive and --retry-backoff not negative")
    if args.update_baseline and args.seeds is None:
        raise UsageError("--update-baseline needs --seeds, so that the recorded figures say what they average")
    seeds: tuple[int | None, ...] = parse_seeds(args.seeds) if args.seeds is not None else (None,)
    env_url = (args.env_url or environ.get("ENV_URL") or "").strip() or None
    return RunSettings(
        policies=policies,
        model=model,
        api_base_url=args.api_base_url or environ.get("API_BASE_URL") or DEFAULT_API_BASE_URL,
        api_key=api_key,
        env_url=env_url.rstrip("/") if env_url else None,
        env_token=environ.get("WORKFLOW_ORCHESTRATOR_TOKEN") or None,
        tasks=parse_task_list(args.tasks),
        seeds=seeds,
        seeds_text=args.seeds.strip() if args.seeds is not None else "canonical",
        worker_count=args.worker_count,
        concurrency=args.concurrency,
        tool_calls=args.tool_calls,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        request_timeout_s=args.request_timeout,
        episode_timeout_s=args.episode_timeout,
        max_retries=args.max_retries,
        retry_backoff_s=args.retry_backoff,
        history=args.history,
        output=args.output,
        trajectories=args.save_trajectories,
        update_baseline=args.update_baseline,
        baseline_file=args.baseline_file,
        progress=not args.no_progress,
        command=redacted_command(argv),
    )


# --------------------------------------------------------------------------- reading model answers

_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning|reflection)>.*?</\1\s*>", re.S | re.I)
_THINK_CLOSE = re.compile(r"</(?:think|thinking|reasoning|reflection)\s*>", re.I)
_LABEL_CALL = re.compile(r"\b(delegate|dispatch|retry|wait|synthesize|abort)\s*\(([^()]*)\)", re.I)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_SUBTASK_KEYS = ("subtask_id", "subtask", "task")
_AGENT_KEYS = ("agent_name", "agent", "worker")


def _clean_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip().strip("`'\"").strip()
    return value[:MAX_ID_LENGTH] or None


def _first_id(data: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        if key in data:
            value = _clean_id(data[key])
            if value is not None:
                return value
    return None


def normalize_action(data: Any) -> dict[str, Any] | None:
    """A model's action object as the environment's action, or None when it names none.

    Accepts the documented shape and common variants of it: a wrapper
    (``{"action": {...}}``), ``type`` or ``action`` for ``action_type``,
    ``subtask``/``agent`` for the id fields, pairs for dispatch assignments.
    Drops keys the environment does not know (they would make the server
    refuse the whole action).
    """
    if not isinstance(data, Mapping):
        return None
    inner = data.get("action")
    if isinstance(inner, Mapping):
        data = inner
    raw_type = data.get("action_type", data.get("type", data.get("action")))
    if not isinstance(raw_type, str):
        return None
    action_type = raw_type.strip().lower()
    if action_type not in ACTION_TYPES:
        return None
    action: dict[str, Any] = {"action_type": action_type}
    if action_type in ("delegate", "retry", "abort"):
        subtask_id = _first_id(data, _SUBTASK_KEYS)
        if subtask_id is not None:
            action["subtask_id"] = subtask_id
        agent_name = _first_id(data, _AGENT_KEYS) if action_type != "abort" else None
        if agent_name is not None:
            action["agent_name"] = agent_name
    elif action_type == "dispatch":
        assignments: list[dict[str, str]] = []
        for item in data.get("assignments") or ():
            if isinstance(item, Mapping):
                subtask_id, agent_name = _first_id(item, _SUBTASK_KEYS), _first_id(item, _AGENT_KEYS)
            elif isinstance(item, (list, tuple)) and item:
                subtask_id = _clean_id(item[0])
                agent_name = _clean_id(item[1]) if len(item) > 1 else None
            else:
                subtask_id, agent_name = _clean_id(item), None
            if subtask_id is None:
                continue
            assignment = {"subtask_id": subtask_id}
            if agent_name is not None:
                assignment["agent_name"] = agent_name
            assignments.append(assignment)
        task_ids = [i for i in (_clean_id(x) for x in data.get("task_ids") or ()) if i is not None]
        if assignments:
            action["assignments"] = assignments[:MAX_BATCH]
        if task_ids:
            action["task_ids"] = task_ids[:MAX_BATCH]
    return action


def _balanced_objects(text: str) -> list[str]:
    """Every outermost ``{...}`` span of the text, braces inside quoted strings ignored."""
    spans: list[str] = []
    depth, start, quote, escaped = 0, -1, "", False
    for i, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'" and depth > 0:
            quote = char
        elif char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def _load_object(span: str) -> Any:
    """JSON, then JSON without trailing commas, then a Python literal (single quotes)."""
    for attempt in (span, _TRAILING_COMMA.sub(r"\1", span)):
        try:
            return json.loads(attempt)
        except ValueError:
            pass
    try:
        return ast.literal_eval(span)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _action_from_label(text: str) -> dict[str, Any] | None:
    """The compact form of the observation's legal actions: ``delegate(s,a)``, ``wait()``, ``dispatch(s:a,t:b)``."""
    matches = list(_LABEL_CALL.finditer(text))
    if not matches:
        return None
    match = matches[-1]
    action_type = match.group(1).lower()
    args = [a.strip().strip("`'\"") for a in match.group(2).split(",") if a.strip()]
    if action_type == "dispatch":
        pairs = [arg.partition(":") for arg in args]
        return normalize_action(
            {"action_type": "dispatch", "assignments": [[s.strip(), a.strip() or None] for s, _, a in pairs]}
        )
    fields: dict[str, Any] = {"action_type": action_type}
    if args:
        fields["subtask_id"] = args[0]
    if len(args) > 1:
        fields["agent_name"] = args[1]
    return normalize_action(fields)


def extract_action(text: str | None) -> dict[str, Any] | None:
    """The action in a model's free-text answer, or None.

    Survives reasoning in think tags (closed, or only a closing tag as some
    servers send), code fences and prose around the JSON. The last action
    object wins: models reason first and answer last.
    """
    if not text:
        return None
    closes = list(_THINK_CLOSE.finditer(text))
    answer = text[closes[-1].end() :] if closes else text
    answer = _THINK_BLOCK.sub(" ", answer)
    for candidate in (answer, text):
        for span in reversed(_balanced_objects(candidate)):
            action = normalize_action(_load_object(span))
            if action is not None:
                return action
        action = _action_from_label(candidate)
        if action is not None:
            return action
    return None


def action_from_tool_calls(calls: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
    """The action named by tool calls ``(function name, JSON arguments)``.

    Several delegate/retry/dispatch calls in one answer start together, as
    one dispatch; otherwise the first call that names an action counts.
    """
    actions: list[dict[str, Any]] = []
    for name, arguments in calls:
        parsed = _load_object(arguments) if arguments and arguments.strip() else {}
        if not isinstance(parsed, Mapping):
            parsed = {}
        action = normalize_action({**parsed, "action_type": name})
        if action is not None:
            actions.append(action)
    if not actions:
        return None
    starts = ("delegate", "retry", "dispatch")
    if len(actions) == 1 or not all(a["action_type"] in starts for a in actions):
        return actions[0]
    assignments: list[dict[str, str]] = []
    for action in actions:
        if action["action_type"] == "dispatch":
            assignments.extend(action.get("assignments", []))
            assignments.extend({"subtask_id": t} for t in action.get("task_ids", []))
        elif "subtask_id" in action:
            assignments.append({k: action[k] for k in ("subtask_id", "agent_name") if k in action})
    return {"action_type": "dispatch", "assignments": assignments[:MAX_BATCH]}


def action_label(action: Mapping[str, Any]) -> str:
    """The compact, space-free form of an action for the [STEP] line."""
    try:
        label = parse_action(action).label()
    except ActionError:
        args = [str(action[k]) for k in ("subtask_id", "agent_name") if action.get(k)]
        label = f"{action.get('action_type', '?')}({','.join(args)})"
    return re.sub(r"\s+", "_", label)


# --------------------------------------------------------------------------- prompting

SYSTEM_RULES = """\
You orchestrate a workflow: subtasks that form a dependency graph (a DAG), run by simulated worker agents. \
Each turn you see the current state and choose one action.

How the world works:
- A subtask is ready when every subtask it depends on is completed; only ready subtasks can be started \
(failed ones are started again with retry).
- An agent can take a subtask only if its capabilities include the subtask's type. An agent works on one \
subtask at a time; an offline agent takes nothing. At most `capacity` subtasks run at once.
- A subtask takes (agent speed x subtask work) time units, at least 1. An agent costs its cost per time \
unit it works, whether the attempt succeeds or fails; the budget, when there is one, caps the total.
- An attempt may fail; the failure shows when its time is up. A permanent failure means that agent can \
never do that subtask: retry it with a different capable agent. A transient failure may succeed on a retry, \
with the same or another agent. Reliability is the declared chance that an attempt succeeds.
- Agents may go offline, come back or slow down during the episode, and capacity may change; an agent going \
offline fails the subtask it was running.
- Time: in "tick" time every action, valid or not, takes one time unit, and then the world advances one \
unit. In "event" time decisions take no time and wait jumps to the next completion, failure or scheduled \
change; a step limit bounds the episode.
- A deadline is the latest time by which its subtask must be completed.
- An invalid action changes nothing (in tick time it still uses its time unit), comes back as an error code, \
and is penalised. Missed deadlines are penalised too, and depending on the task, failed subtasks left alone for \
two or more steps or capacity left idle while work is ready.
- The episode ends when you synthesize after every subtask is completed (tick time) or when every subtask is \
completed (event time), or when the time or step limit runs out. Unfinished work scores little.

Actions:
{"action_type": "delegate", "subtask_id": "<ready subtask>", "agent_name": "<idle capable agent>"}
{"action_type": "retry", "subtask_id": "<failed subtask>", "agent_name": "<idle capable agent>"}
{"action_type": "dispatch", "assignments": [{"subtask_id": "<id>", "agent_name": "<agent>"}, ...]} \
starts several ready or failed subtasks in one action, each on a different agent; all of them start or none does.
(In retry and in a dispatch assignment agent_name may be left out: the environment then picks an idle capable \
agent, the cheapest not known to fail that subtask permanently.)
{"action_type": "wait"} lets time pass.
{"action_type": "synthesize"} ends the workflow; valid only when every subtask is completed.
{"action_type": "abort", "subtask_id": "<running subtask>"} stops it and frees its agent; the subtask becomes \
failed and can be retried.
The state lists every single action that is valid now; any set of those starts on distinct agents, within \
the free capacity, is a valid dispatch. Starting independent work together saves time.

A shaped reward follows every step; what counts is the final grade of the episode, a score from 0 to 1."""

JSON_ANSWER = (
    "Answer with exactly one JSON object, the action, and nothing else. "
    'Example: {"action_type": "delegate", "subtask_id": "build", "agent_name": "ci_runner"}'
)
TOOL_ANSWER = (
    "Answer by calling exactly one of the tools, the action. Several delegate or retry calls in one answer "
    "start those subtasks together, as one dispatch."
)


def task_rules_text(observation: Mapping[str, Any]) -> str:
    """The task's stated rules (what its grade rewards), from the observation."""
    rules = observation.get("rules") or {}
    lines = [f"This task: {observation.get('task_id')} ({observation.get('time_model')} time)."]
    weights = rules.get("grade_weights") or {}
    if weights:
        ranked = sorted(weights.items(), key=lambda item: -item[1])
        lines.append("Its grade weighs: " + ", ".join(f"{name} {weight:g}" for name, weight in ranked) + ".")
    for conflict in rules.get("conflicts") or []:
        lines.append(
            f"Conflicting findings: {', '.join(conflict['tracks'])} feed {conflict['at']}; "
            "credit needs each of them completed by a different agent."
        )
    patience = rules.get("patience")
    if patience:
        lines.append(
            f"Monitoring: after {patience['after']} completes, wait {patience['waits']} time(s) before you synthesize."
        )
    pillars = rules.get("pillars") or {}
    if pillars:
        described = "; ".join(f"{name}: {', '.join(members)}" for name, members in pillars.items())
        lines.append(f"Keep the pillars balanced (the grade counts the least completed one): {described}.")
    return "\n".join(lines)


def system_prompt(observation: Mapping[str, Any], tool_calls: bool) -> str:
    return "\n\n".join((SYSTEM_RULES, task_rules_text(observation), TOOL_ANSWER if tool_calls else JSON_ANSWER))


def user_prompt(observation: Mapping[str, Any], history: Sequence[str], tool_calls: bool) -> str:
    parts = []
    if history:
        parts.append("Your recent steps:\n" + "\n".join(history))
    parts.append("Current state:\n" + render_text(dict(observation)))
    parts.append("Choose the next action. " + ("Call one tool." if tool_calls else "Reply with the JSON object only."))
    return "\n\n".join(parts)


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_SUBTASK = {"type": "string", "description": "subtask id"}
_AGENT = {"type": "string", "description": "agent name"}
ACTION_TOOLS: list[dict[str, Any]] = [
    _tool(
        "delegate",
        "Start a ready subtask on an idle agent whose capabilities include its type.",
        {"subtask_id": _SUBTASK, "agent_name": _AGENT},
        ["subtask_id", "agent_name"],
    ),
    _tool(
        "retry",
        "Start a failed subtask again on an idle capable agent (after a permanent failure, a different one).",
        {"subtask_id": _SUBTASK, "agent_name": _AGENT},
        ["subtask_id", "agent_name"],
    ),
    _tool(
        "dispatch",
        "Start several ready or failed subtasks at once, each on a different agent; all start or none does.",
        {
            "assignments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"subtask_id": _SUBTASK, "agent_name": _AGENT},
                    "required": ["subtask_id", "agent_name"],
                },
            }
        },
        ["assignments"],
    ),
    _tool("wait", "Let time pass (in event time: until the next event).", {}, []),
    _tool("synthesize", "End the workflow; valid only when every subtask is completed.", {}, []),
    _tool(
        "abort",
        "Stop a running subtask and free its agent; the subtask becomes failed.",
        {"subtask_id": _SUBTASK},
        ["subtask_id"],
    ),
]


# --------------------------------------------------------------------------- players


@dataclass(slots=True)
class Decision:
    action: dict[str, Any]
    issue: str | None = None  # this runner's error code when the action is a fallback
    detail: str | None = None
    answer: str | None = None
    prompt: str | None = None  # the user message the model was sent
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


class Player(Protocol):
    async def decide(self, observation: Mapping[str, Any], deadline: float) -> Decision: ...

    def observe(self, decision: Decision, label: str, observation: Mapping[str, Any]) -> None: ...


class PolicyPlayer:
    """A built-in policy, seeded with the episode's seed."""

    def __init__(self, name: str, seed: int) -> None:
        self.policy = make_policy(name, seed)

    async def decide(self, observation: Mapping[str, Any], deadline: float) -> Decision:
        return Decision(self.policy.act(dict(observation)))

    def observe(self, decision: Decision, label: str, observation: Mapping[str, Any]) -> None:
        """Built-in policies read only the current observation."""


class OraclePlayer:
    """The oracle: it knows every seeded outcome, searches this task and seed for the
    best plan it can find, and plays that plan. Over ENV_URL the plan is computed
    here, so the server must run the same simulation."""

    def __init__(self, task_id: str, seed: int, worker_count: int | None) -> None:
        self.task_id = task_id
        self.seed = seed
        self.worker_count = worker_count
        self.plan: list[dict[str, Any]] | None = None
        self.played = 0

    def _solve(self, seconds: float) -> list[dict[str, Any]]:
        oracle = importlib.import_module(ORACLE_MODULE)
        compiled = default_registry().resolve(self.task_id, seed=self.seed, worker_count=self.worker_count).compiled
        try:
            result = oracle.solve(compiled, self.seed, seconds=seconds)
        except NotImplementedError as exc:
            raise EpisodeFailure(f"the oracle cannot play {self.task_id}: {exc}") from None
        return [dict(action) for action in result.plan]

    async def decide(self, observation: Mapping[str, Any], deadline: float) -> Decision:
        if self.plan is None:
            seconds = max(0.1, min(ORACLE_SECONDS, deadline - time.monotonic()))
            # The search is CPU work: off the event loop, so that other episodes go on.
            self.plan = await asyncio.to_thread(self._solve, seconds)
        if self.played >= len(self.plan):
            return Decision(dict(WAIT))
        self.played += 1
        return Decision(self.plan[self.played - 1])

    def observe(self, decision: Decision, label: str, observation: Mapping[str, Any]) -> None:
        """The plan is fixed in advance: the seeded outcomes are known."""


@dataclass(slots=True)
class Completion:
    text: str
    tool_calls: list[tuple[str, str]]
    prompt_tokens: int
    completion_tokens: int


class ModelClient:
    """Chat completions with a timeout per call and retries with backoff on transient errors.

    401/403/404 (a refused key, an unknown model) are fatal for the whole run:
    every later call would fail the same way. Other 4xx answers are not
    retried: the step plays a fallback.
    """

    def __init__(self, client: AsyncOpenAI, settings: RunSettings) -> None:
        self.client = client
        self.model = settings.model or ""
        self.temperature = settings.temperature
        self.max_tokens = settings.max_tokens
        self.request_timeout_s = settings.request_timeout_s
        self.max_retries = settings.max_retries
        self.backoff_s = settings.retry_backoff_s
        self.tools = ACTION_TOOLS if settings.tool_calls else None
        self._jitter = random.Random()
        # Refusals (4xx) in a row over the whole run: a request the API will never
        # accept (an unsupported parameter, say) must not turn a run into waits.
        self.refusals_in_a_row = 0

    async def complete(self, messages: list[dict[str, Any]], deadline: float) -> Completion:
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ModelCallFailed("the episode's time ran out")
            timeout = min(self.request_timeout_s, remaining)
            try:
                completion = await asyncio.wait_for(self._create(messages, timeout), timeout + 1.0)
                self.refusals_in_a_row = 0
                return completion
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                raise FatalError(f"the model API refused the request: {_describe_api_error(exc)}") from None
            except openai.APIStatusError as exc:
                if not (exc.status_code in (408, 409, 429) or exc.status_code >= 500):
                    self.refusals_in_a_row += 1
                    if self.refusals_in_a_row >= MAX_REFUSALS_IN_A_ROW:
                        raise FatalError(
                            f"the model API refused {self.refusals_in_a_row} requests in a row: "
                            f"{_describe_api_error(exc)}"
                        ) from None
                    raise ModelCallFailed(_describe_api_error(exc)) from None
                reason, retry_after = _describe_api_error(exc), _retry_after_s(exc)
            except (TimeoutError, openai.APIConnectionError) as exc:
                reason, retry_after = (
                    (
                        _describe_api_error(exc)
                        if isinstance(exc, openai.APIError)
                        else f"no answer within {timeout:.1f} s"
                    ),
                    None,
                )
            if attempt >= self.max_retries:
                raise ModelCallFailed(f"{reason} (after {attempt + 1} attempts)")
            delay = self.backoff_s * 2**attempt * (0.5 + 0.5 * self._jitter.random())
            if retry_after is not None:
                delay = max(delay, min(retry_after, 60.0))
            if time.monotonic() + delay >= deadline:
                raise ModelCallFailed(f"{reason}; no time left to retry")
            attempt += 1
            logger.warning("model call failed (%s); retry %d of %d in %.1f s", reason, attempt, self.max_retries, delay)
            await asyncio.sleep(delay)

    async def _create(self, messages: list[dict[str, Any]], timeout: float) -> Completion:
        extra: dict[str, Any] = {}
        if self.tools is not None:
            extra = {"tools": self.tools, "tool_choice": "auto"}
        response = await self.client.chat.completions.create(
            model=self.model,
            messages=messages,  # type: ignore[arg-type]
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            timeout=timeout,
            **extra,
        )
        usage = response.usage
        prompt_tokens = (usage.prompt_tokens or 0) if usage else 0
        completion_tokens = (usage.completion_tokens or 0) if usage else 0
        if not response.choices:
            return Completion("", [], prompt_tokens, completion_tokens)
        message = response.choices[0].message
        calls = [
            (call.function.name, call.function.arguments or "")
            for call in (message.tool_calls or [])
            if getattr(call, "function", None) is not None
        ]
        return Completion(message.content or "", calls, prompt_tokens, completion_tokens)


def _describe_api_error(exc: openai.APIError) -> str:
    status = getattr(exc, "status_code", None)
    message = " ".join(str(exc.message or type(exc).__name__).split())[:200]
    return f"HTTP {status}: {message}" if status else message


def _retry_after_s(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class ModelPlayer:
    """The LLM: a system prompt with the rules, the rendered state and recent steps each turn.

    Each call is self-contained (system, then one user message), so the prompt
    stays the same size however long the episode is.
    """

    def __init__(self, client: ModelClient, settings: RunSettings, first_observation: Mapping[str, Any]) -> None:
        self.client = client
        self.tool_calls = settings.tool_calls
        self.history_size = settings.history
        self.system = system_prompt(first_observation, settings.tool_calls)
        self.history: list[str] = []

    def messages(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        recent = self.history[-self.history_size :] if self.history_size else []
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": user_prompt(observation, recent, self.tool_calls)},
        ]

    async def decide(self, observation: Mapping[str, Any], deadline: float) -> Decision:
        started = time.monotonic()
        messages = self.messages(observation)
        prompt = messages[-1]["content"]
        try:
            completion = await self.client.complete(messages, deadline)
        except ModelCallFailed as exc:
            return Decision(
                dict(WAIT),
                issue="model_call_failed",
                detail=str(exc),
                prompt=prompt,
                latency_s=time.monotonic() - started,
            )
        latency = time.monotonic() - started
        action = action_from_tool_calls(completion.tool_calls) if completion.tool_calls else None
        if action is None:
            action = extract_action(completion.text)
        answer = completion.text
        if completion.tool_calls:
            answer = json.dumps([{"name": n, "arguments": a} for n, a in completion.tool_calls]) + (
                f"\n{completion.text}" if completion.text else ""
            )
        decision = Decision(
            dict(WAIT),
            answer=answer[:8000],
            prompt=prompt,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_s=latency,
        )
        if action is None:
            decision.issue = "unparseable_answer"
            decision.detail = "no action found in: " + " ".join(answer.split())[:160]
        else:
            decision.action = action
        return decision

    def observe(self, decision: Decision, label: str, observation: Mapping[str, Any]) -> None:
        line = f"step {observation.get('step_count')}: {label} -> reward {observation.get('reward') or 0.0:+.2f}"
        if decision.issue:
            line += f" (your answer was not used: {decision.issue}; wait was played)"
        errors = observation.get("errors") or []
        if errors:
            line += "; invalid: " + "; ".join(f"{e.get('code')}: {e.get('message', '')}" for e in errors)
        self.history.append(line)


# --------------------------------------------------------------------------- environments


class EpisodeSession(Protocol):
    episode_id: str | None

    async def reset(self, task_id: str, seed: int | None, worker_count: int | None) -> dict[str, Any]: ...

    async def step(self, action: Mapping[str, Any]) -> dict[str, Any]: ...

    async def grade(self) -> dict[str, Any]: ...


class LocalSession:
    """One episode in this process."""

    def __init__(self) -> None:
        self.env = WorkflowEnv()
        self.episode_id: str | None = None

    async def reset(self, task_id: str, seed: int | None, worker_count: int | None) -> dict[str, Any]:
        try:
            observation = self.env.reset(task_id, seed=seed, worker_count=worker_count)
        except (UnknownTaskError, ValueError) as exc:
            raise EpisodeFailure(str(exc)) from None
        self.episode_id = f"local-{task_id}-{observation['seed']}"
        return observation

    async def step(self, action: Mapping[str, Any]) -> dict[str, Any]:
        return self.env.step(action)

    async def grade(self) -> dict[str, Any]:
        return self.env.grade()


class RemoteSession:
    """One episode on a server: reset returns its episode_id, which step and the grader then name."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.episode_id: str | None = None

    async def reset(self, task_id: str, seed: int | None, worker_count: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"task_id": task_id}
        if seed is not None:
            body["seed"] = seed
        if worker_count is not None:
            body["worker_count"] = worker_count
        observation = _envelope_observation(await self._post("/reset", body, repeatable=True))
        episode_id = observation.get("episode_id")
        if not isinstance(episode_id, str) or not episode_id:
            raise EpisodeFailure("POST /reset returned no episode_id; this runner needs a server that keeps episodes")
        self.episode_id = episode_id
        return observation

    async def step(self, action: Mapping[str, Any]) -> dict[str, Any]:
        body = {"action": dict(action), "episode_id": self.episode_id}
        return _envelope_observation(await self._post("/step", body, repeatable=False))

    async def grade(self) -> dict[str, Any]:
        return await self._post("/grader", {"episode_id": self.episode_id}, repeatable=True)

    async def _post(self, path: str, body: dict[str, Any], repeatable: bool) -> dict[str, Any]:
        """POST with retries where they are safe: always when no connection was made,
        otherwise only for requests that may be repeated (a step may not: it would act twice)."""
        for attempt in range(4):
            last = attempt == 3
            try:
                response = await self.client.post(path, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last:
                    raise EpisodeFailure(f"POST {path}: cannot connect: {exc}") from None
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            except httpx.HTTPError as exc:
                if last or not repeatable:
                    raise EpisodeFailure(f"POST {path}: {type(exc).__name__}: {exc}") from None
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if response.status_code >= 500 or response.status_code == 429:
                if last or not repeatable:
                    raise EpisodeFailure(f"POST {path}: HTTP {response.status_code}: {_error_message(response)}")
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if response.status_code == 422 and path == "/step":
                raise ActionRejected(_error_message(response))
            if response.status_code >= 400:
                raise EpisodeFailure(f"POST {path}: HTTP {response.status_code}: {_error_message(response)}")
            try:
                data = response.json()
            except ValueError:
                raise EpisodeFailure(f"POST {path}: the answer is not JSON") from None
            if not isinstance(data, dict):
                raise EpisodeFailure(f"POST {path}: the answer is not a JSON object")
            return data
        raise AssertionError("unreachable")


def _envelope_observation(envelope: dict[str, Any]) -> dict[str, Any]:
    """openenv's ``{"observation", "reward", "done"}`` as one observation dict, as the core builds it."""
    observation = envelope.get("observation")
    if not isinstance(observation, dict):
        raise EpisodeFailure("the server's answer has no observation")
    observation["reward"] = envelope.get("reward") or 0.0
    observation["done"] = bool(envelope.get("done"))
    return observation


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:300]
    return str(body)[:300]


# --------------------------------------------------------------------------- one episode


@dataclass(slots=True)
class StepRecord:
    step: int
    action: dict[str, Any]
    label: str
    reward: float
    done: bool
    errors: list[str]
    issue: str | None
    reward_breakdown: dict[str, float]
    answer: str | None = None
    prompt: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    observation_text: str | None = None

    @property
    def error_field(self) -> str:
        codes = ([self.issue] if self.issue else []) + self.errors
        return ",".join(codes) if codes else "null"


@dataclass(slots=True)
class EpisodeResult:
    model: str
    task_id: str
    seed: int | None
    episode_id: str | None = None
    score: float | None = None
    normalized_score: float | None = None
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    steps: list[StepRecord] = field(default_factory=list)
    grade: dict[str, Any] | None = None
    wall_s: float = 0.0
    error: str | None = None
    system_prompt: str | None = None

    @property
    def rewards(self) -> list[float]:
        return [s.reward for s in self.steps]

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.steps)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.steps)

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task_id": self.task_id,
            "seed": self.seed,
            "episode_id": self.episode_id,
            "score": self.score,
            "normalized_score": self.normalized_score,
            "success": self.success,
            "terminated": self.terminated,
            "truncated": self.truncated,
            "steps": len(self.steps),
            "total_reward": round(sum(self.rewards), 6),
            "tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "fallbacks": sum(1 for s in self.steps if s.issue),
            "invalid_actions": sum(1 for s in self.steps if s.errors),
            "wall_s": round(self.wall_s, 3),
            "error": self.error,
            "grade": self.grade,
        }

    def trajectory(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "system_prompt": self.system_prompt,
            "trajectory": [
                {
                    "step": s.step,
                    "action": s.action,
                    "label": s.label,
                    "reward": s.reward,
                    "reward_breakdown": s.reward_breakdown,
                    "done": s.done,
                    "errors": s.errors,
                    "issue": s.issue,
                    "prompt": s.prompt,
                    "answer": s.answer,
                    "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens,
                    "latency_s": round(s.latency_s, 3),
                    "observation_text": s.observation_text,
                }
                for s in self.steps
            ],
        }


def _token(value: Any) -> str:
    """A value for a key=value field: never empty, never with spaces."""
    return re.sub(r"\s+", "_", str(value)) or "-"


class EpisodeLines:
    """The [START]/[STEP]/[END] lines of one episode: written as they come when
    episodes run one at a time, as one block at the end when several run at once."""

    def __init__(self, stream: TextIO, live: bool) -> None:
        self.stream = stream
        self.live = live
        self.lines: list[str] = []

    def emit(self, line: str) -> None:
        if self.live:
            self.stream.write(line + "\n")
            self.stream.flush()
        else:
            self.lines.append(line)

    def start(self, task_id: str, model: str) -> None:
        self.emit(f"[START] task={_token(task_id)} env={ENV_NAME} model={_token(model)}")

    def step(self, record: StepRecord) -> None:
        self.emit(
            f"[STEP] step={record.step} action={record.label} reward={record.reward:.2f} "
            f"done={str(record.done).lower()} error={record.error_field}"
        )

    def end(self, result: EpisodeResult) -> None:
        rewards = ",".join(f"{r:.2f}" for r in result.rewards)
        score = result.score if result.score is not None else 0.0
        self.emit(
            f"[END] success={str(result.success).lower()} steps={len(result.steps)} score={score:.3f} rewards={rewards}"
        )
        if not self.live:
            self.stream.write("\n".join(self.lines) + "\n")
            self.stream.flush()


@dataclass(frozen=True, slots=True)
class EpisodeJob:
    model: str  # the model name, or the built-in policy's name
    policy: str | None
    task_id: str
    seed: int | None


class Runner:
    """Plays episodes, at most ``concurrency`` at once."""

    def __init__(self, settings: RunSettings, stdout: TextIO, stderr: TextIO) -> None:
        self.settings = settings
        self.stdout = stdout
        self.stderr = stderr
        self.http: httpx.AsyncClient | None = None
        self.model_client: ModelClient | None = None
        self.keep_observation_text = settings.trajectories is not None

    async def __aenter__(self) -> Runner:
        settings = self.settings
        if settings.env_url:
            headers = {"Authorization": f"Bearer {settings.env_token}"} if settings.env_token else None
            self.http = httpx.AsyncClient(
                base_url=settings.env_url,
                timeout=httpx.Timeout(60.0, connect=10.0),
                headers=headers,
                limits=httpx.Limits(max_connections=max(10, settings.concurrency * 2)),
            )
        if settings.uses_model:
            client = AsyncOpenAI(
                api_key=settings.api_key,
                base_url=settings.api_base_url,
                max_retries=0,  # retries are ours: with backoff, bounded by the episode's time
                timeout=settings.request_timeout_s,
            )
            self.model_client = ModelClient(client, settings)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.model_client is not None:
            await self.model_client.client.close()

    async def check_environment(self) -> list[str]:
        """The environment's task ids (GET /tasks on a server); fatal when it cannot be reached."""
        if self.http is None:
            return default_registry().task_ids()
        try:
            response = await self.http.get("/tasks")
        except httpx.HTTPError as exc:
            raise FatalError(f"cannot reach the environment at {self.settings.env_url}: {exc}") from None
        if response.status_code == 401:
            raise FatalError(
                f"the environment at {self.settings.env_url} wants a token: set WORKFLOW_ORCHESTRATOR_TOKEN"
            )
        if response.status_code != 200:
            raise FatalError(
                f"GET {self.settings.env_url}/tasks answered HTTP {response.status_code}: {_error_message(response)}"
            )
        try:
            return [str(task["task_id"]) for task in response.json()["tasks"]]
        except (ValueError, KeyError, TypeError):
            raise FatalError(
                f"GET {self.settings.env_url}/tasks did not list tasks; is this a workflow_orchestrator server?"
            ) from None

    def new_session(self) -> EpisodeSession:
        return RemoteSession(self.http) if self.http is not None else LocalSession()

    def new_player(self, job: EpisodeJob, observation: Mapping[str, Any]) -> Player:
        seed = int(observation.get("seed") or 0)
        if job.policy == ORACLE:
            return OraclePlayer(job.task_id, seed, self.settings.worker_count)
        if job.policy is not None:
            return PolicyPlayer(job.policy, seed)
        assert self.model_client is not None
        return ModelPlayer(self.model_client, self.settings, observation)

    async def play(self, job: EpisodeJob) -> EpisodeResult:
        """One episode: reset, steps until done, the grade by episode_id; its lines on stdout."""
        started = time.monotonic()
        deadline = started + self.settings.episode_timeout_s
        lines = EpisodeLines(self.stdout, live=self.settings.concurrency == 1)
        result = EpisodeResult(model=job.model, task_id=job.task_id, seed=job.seed)
        lines.start(job.task_id, job.model)
        session = self.new_session()
        try:
            observation = await session.reset(job.task_id, job.seed, self.settings.worker_count)
            result.episode_id = session.episode_id
            result.seed = observation.get("seed", job.seed)
            player = self.new_player(job, observation)
            if isinstance(player, ModelPlayer):
                result.system_prompt = player.system
            while not observation.get("done"):
                if len(result.steps) >= MAX_EPISODE_STEPS:
                    raise EpisodeFailure(f"the episode did not end within {MAX_EPISODE_STEPS} steps")
                observation = await self.take_step(session, player, observation, deadline, job, result)
                lines.step(result.steps[-1])
            result.terminated = bool(observation.get("terminated"))
            result.truncated = bool(observation.get("truncated"))
            result.success = result.terminated
            grade = await session.grade()
            result.grade = grade
            result.score = float(grade["score"])
            normalized = grade.get("normalized_score")
            result.normalized_score = float(normalized) if normalized is not None else None
        except FatalError as exc:
            # The run stops; the episode's lines still end, so that a reader never sees a torn set.
            result.error = str(exc)
            result.wall_s = time.monotonic() - started
            lines.end(result)
            raise
        except (EpisodeFailure, ActionRejected) as exc:
            result.error, result.success = str(exc), False
            logger.error("%s %s seed %s: episode abandoned: %s", job.model, job.task_id, job.seed, exc)
        except (KeyError, TypeError, ValueError) as exc:
            # An answer of the environment without the fields every answer has.
            result.error, result.success = f"malformed answer from the environment: {type(exc).__name__}: {exc}", False
            logger.error(
                "%s %s seed %s: episode abandoned: %s",
                job.model,
                job.task_id,
                job.seed,
                result.error,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
        result.wall_s = time.monotonic() - started
        lines.end(result)
        return result

    async def take_step(
        self,
        session: EpisodeSession,
        player: Player,
        observation: Mapping[str, Any],
        deadline: float,
        job: EpisodeJob,
        result: EpisodeResult,
    ) -> dict[str, Any]:
        """Decide, act (a wait instead of what the environment refuses), record; the next observation."""
        shown = render_text(dict(observation)) if self.keep_observation_text else None
        if time.monotonic() >= deadline:
            decision = Decision(dict(WAIT), issue="episode_timeout")
        else:
            decision = await player.decide(observation, deadline)
        where = f"{job.model} {job.task_id} seed {result.seed} step {len(result.steps) + 1}"
        if decision.issue and decision.issue != "episode_timeout":
            logger.warning("%s: %s; playing wait (%s)", where, decision.issue, decision.detail or "")
        try:
            after = await session.step(decision.action)
        except ActionRejected as exc:
            logger.warning("%s: the environment refused %s (%s); playing wait", where, decision.action, exc)
            decision.action, decision.issue = dict(WAIT), "rejected_by_environment"
            after = await session.step(decision.action)
        label = action_label(decision.action)
        record = StepRecord(
            step=len(result.steps) + 1,
            action=decision.action,
            label=label,
            reward=float(after.get("reward") or 0.0),
            done=bool(after.get("done")),
            errors=[str(e.get("code")) for e in after.get("errors") or []],
            issue=decision.issue,
            reward_breakdown=dict(after.get("reward_breakdown") or {}),
            answer=decision.answer,
            prompt=decision.prompt,
            prompt_tokens=decision.prompt_tokens,
            completion_tokens=decision.completion_tokens,
            latency_s=decision.latency_s,
            observation_text=shown,
        )
        result.steps.append(record)
        logger.debug("%s: %s reward %.2f", where, label, record.reward)
        player.observe(decision, label, after)
        return after

    async def run(self, jobs: Sequence[EpisodeJob], progress: Progress) -> list[EpisodeResult]:
        results: list[EpisodeResult | None] = [None] * len(jobs)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(jobs)):
            queue.put_nowait(index)

        async def worker() -> None:
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                result = await self.play(jobs[index])
                results[index] = result
                progress.advance(result)

        workers = [asyncio.create_task(worker()) for _ in range(min(self.settings.concurrency, len(jobs)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return [r for r in results if r is not None]


# --------------------------------------------------------------------------- progress and summaries


class Progress:
    """Progress on stderr: a bar redrawn in place on a terminal, one line per episode otherwise."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self.done = 0
        self.scores: list[float] = []
        self.started = time.monotonic()
        self.tty = enabled and stream.isatty()

    def advance(self, result: EpisodeResult) -> None:
        self.done += 1
        if result.score is not None:
            self.scores.append(result.score)
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        mean = f"{statistics.fmean(self.scores):.3f}" if self.scores else "-"
        if self.tty:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} mean score {mean} {elapsed:.0f}s"
            )
            if self.done == self.total:
                self.stream.write("\n")
        elif self.total <= 100 or self.done % math.ceil(self.total / 20) == 0 or self.done == self.total:
            # Without a terminal, a line per episode; in long runs about twenty lines in all.
            outcome = f"score {result.score:.3f}" if result.score is not None else f"error: {result.error}"
            self.stream.write(
                f"[{self.done}/{self.total}] {result.model} {result.task_id} seed {result.seed}: "
                f"{outcome}, {len(result.steps)} steps, {result.wall_s:.1f}s\n"
            )
        self.stream.flush()


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 6) if values else None


def summarize(results: Sequence[EpisodeResult]) -> list[dict[str, Any]]:
    """Means per model and task, in the order the episodes were asked for."""
    groups: dict[tuple[str, str], list[EpisodeResult]] = {}
    for result in results:
        groups.setdefault((result.model, result.task_id), []).append(result)
    rows = []
    for (model, task_id), group in groups.items():
        graded = [r for r in group if r.score is not None]
        scores = [r.score for r in graded if r.score is not None]
        normalized = [r.normalized_score for r in graded if r.normalized_score is not None]
        rows.append(
            {
                "model": model,
                "task_id": task_id,
                "episodes": len(group),
                "errors": len(group) - len(graded),
                "mean_score": _mean(scores),
                "std_score": round(statistics.pstdev(scores), 6) if scores else None,
                # Only when every graded episode has one: a mean over some of them would mislead.
                "mean_normalized_score": _mean(normalized) if graded and len(normalized) == len(graded) else None,
                "success_rate": _mean([1.0 if r.success else 0.0 for r in group]),
                "mean_steps": _mean([float(len(r.steps)) for r in group]),
                "mean_tokens": _mean([float(r.prompt_tokens + r.completion_tokens) for r in group]),
                "mean_wall_s": _mean([r.wall_s for r in group]),
            }
        )
    return rows


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    header = "| model | task | episodes | mean score | normalized | success | steps | tokens |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        score = "-" if row["mean_score"] is None else f"{row['mean_score']:.3f}"
        norm = "-" if row["mean_normalized_score"] is None else f"{row['mean_normalized_score']:.3f}"
        lines.append(
            f"| {row['model']} | {row['task_id']} | {row['episodes']} | {score} | {norm} | "
            f"{row['success_rate']:.2f} | {row['mean_steps']:.1f} | {row['mean_tokens']:.0f} |"
        )
    return "\n".join(lines)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomically(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def results_document(settings: RunSettings, results: Sequence[EpisodeResult], started_at: str) -> dict[str, Any]:
    return {
        "env": ENV_NAME,
        "models": list(dict.fromkeys(r.model for r in results)),
        "started_at": started_at,
        "finished_at": _now_iso(),
        "settings": settings.public(),
        "episodes": [r.summary() for r in results],
        "summary": summarize(results),
    }


def write_trajectories(path: Path, results: Sequence[EpisodeResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for result in results:
            handle.write(json.dumps(result.trajectory()) + "\n")


def update_baseline(path: Path, settings: RunSettings, results: Sequence[EpisodeResult]) -> dict[str, Any]:
    """Replace the rows of the models and policies just run; keep every other row."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        previous = {}
    date = _now_iso()
    document: dict[str, Any] = {
        "description": (
            "Mean grade per task of the built-in policies and of models run with inference.py; "
            "each row records how it was produced."
        ),
        "command": BASELINE_COMMAND,
        "updated_at": date,
        "rows": previous.get("rows") if isinstance(previous.get("rows"), dict) else {},
    }
    for model in dict.fromkeys(r.model for r in results):
        rows = [row for row in summarize(results) if row["model"] == model]
        document["rows"][model] = {
            "kind": "model" if settings.uses_model else "policy",
            "model": model,
            "date": date,
            "settings": settings.public(),
            "scores": {row["task_id"]: row["mean_score"] for row in rows},
            "normalized_scores": {row["task_id"]: row["mean_normalized_score"] for row in rows},
            "episodes": {row["task_id"]: row["episodes"] for row in rows},
        }
    write_json_atomically(path, document)
    return document


def baseline_table(document: Mapping[str, Any]) -> str:
    """The baseline file as a Markdown table: one row per policy or model, one column per task."""
    rows = document.get("rows") or {}
    tasks: list[str] = []
    for row in rows.values():
        tasks.extend(t for t in row.get("scores", {}) if t not in tasks)
    lines = ["| policy or model | " + " | ".join(tasks) + " | seeds |", "|---" * (len(tasks) + 2) + "|"]
    for name, row in rows.items():
        cells = []
        for task_id in tasks:
            score = row.get("scores", {}).get(task_id)
            cells.append("-" if score is None else f"{score:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row.get('settings', {}).get('seeds', '-')} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point


def plan_jobs(settings: RunSettings) -> list[EpisodeJob]:
    players: list[tuple[str, str | None]] = (
        [(name, name) for name in settings.policies] if settings.policies else [(settings.model or "", None)]
    )
    return [
        EpisodeJob(model=model, policy=policy, task_id=task_id, seed=seed)
        for model, policy in players
        for task_id in settings.tasks
        for seed in settings.seeds
    ]


async def evaluate(settings: RunSettings, stdout: TextIO, stderr: TextIO) -> int:
    started_at = _now_iso()
    async with Runner(settings, stdout, stderr) as runner:
        known = await runner.check_environment()
        unknown = [t for t in settings.tasks if t not in known]
        if unknown:
            raise UsageError(f"unknown task {', '.join(unknown)}; the environment has: {', '.join(known)}")
        jobs = plan_jobs(settings)
        progress = Progress(len(jobs), stderr, settings.progress)
        results = await runner.run(jobs, progress)
    rows = summarize(results)
    if settings.progress:
        stderr.write(summary_table(rows) + "\n")
    if settings.output is not None:
        write_json_atomically(settings.output, results_document(settings, results, started_at))
    if settings.trajectories is not None:
        write_trajectories(settings.trajectories, results)
    failed = [r for r in results if r.error is not None]
    if settings.update_baseline:
        if failed:
            logger.error("the baseline was not updated: %d episode(s) failed", len(failed))
        else:
            update_baseline(settings.baseline_file, settings, results)
            logger.info("updated %s", settings.baseline_file)
    return EXIT_FAILURE if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    # Other libraries (HTTP clients, asyncio) log only warnings; -v opens this runner's own log.
    library_level = logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=library_level, format="inference: %(message)s", stream=sys.stderr, force=True)
    logger.setLevel(logging.DEBUG if args.verbose else library_level)
    if args.baseline_table:
        try:
            document = json.loads(args.baseline_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"inference.py: cannot read {args.baseline_file}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(baseline_table(document))
        return EXIT_OK
    try:
        settings = settings_from(args, argv, os.environ)
        return asyncio.run(evaluate(settings, sys.stdout, sys.stderr))
    except UsageError as exc:
        print(f"inference.py: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FatalError as exc:
        print(f"inference.py: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("inference.py: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): stop quietly, and keep the
        # interpreter from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
