"""Settings of a run: the command line, the environment variables it reads
(``API_BASE_URL``, ``API_KEY``/``HF_TOKEN``, ``MODEL_NAME``, ``ENV_URL``,
``WORKFLOW_ORCHESTRATOR_TOKEN``), the resolved ``RunSettings``, and the one
reading of seed lists (``parse_seeds``) every tool of the project uses."""

from __future__ import annotations

import argparse
import importlib.util
import math
import re
import secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflow_orchestrator.executors import EXECUTOR_NAMES
from workflow_orchestrator.server.core.policies import POLICIES
from workflow_orchestrator.server.tasks import MAX_SEED
from workflow_orchestrator.vocabulary import REWARD_MODES

from .errors import UsageError

ENV_NAME = "workflow_orchestrator"
DEFAULT_TASKS = ("easy", "medium", "hard", "expert")
DEFAULT_API_BASE_URL = "https://router.huggingface.co/v1"
# The package's root folder, where inference.py and baseline_scores.json are.
BASELINE_FILE = Path(__file__).resolve().parent.parent / "baseline_scores.json"
BASELINE_COMMAND = "python inference.py --policy all --tasks easy,medium,hard,expert --seeds 0-19 --update-baseline"
ORACLE = "oracle"
ORACLE_MODULE = "workflow_orchestrator.oracle"
# The oracle's search time per episode: enough to prove the scenarios' plans optimal.
ORACLE_SECONDS = 60.0
# One item of a seed list: a seed, or a range of them (ASCII digits only).
_SEED_ITEM = re.compile(r"(?P<low>[0-9]+)(?:\s*-\s*(?P<high>[0-9]+))?")
# pass^k: a seed is solved when every repeat scores at least this.
DEFAULT_PASS_THRESHOLD = 0.8
# A longer range is a typing mistake, not an evaluation.
MAX_SEEDS_IN_A_RANGE = 100_000


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
    # The oracle's search time per episode, and whether it plays the shipped plan
    # of a task and seed when there is a current one (the tables do; inference
    # searches afresh, as its results say how the plan was made).
    oracle_seconds: float = ORACLE_SECONDS
    shipped_plans: bool = False
    # Seals the in-process episodes (WorkflowEnv's outcome_secret): fresh per run
    # with --sealed, given with --outcome-secret to reproduce a sealed run.
    outcome_secret: str | None = field(default=None, repr=False)
    # The per-step reward the environment reports (shown to the model and in the step lines).
    reward_mode: str = "shaped"
    # Plays of each task and seed, and the score every one of them must reach for pass^k.
    repeats: int = 1
    pass_threshold: float = DEFAULT_PASS_THRESHOLD
    # Continue the run recorded in ``output`` (and ``trajectories``): play only the episodes missing there.
    resume: bool = False
    # How canvas tasks execute their canvases: the seeded simulator, or each operator a call to the model.
    canvas_executor: str = "simulated"

    @classmethod
    def in_process(
        cls,
        policies: Sequence[str],
        tasks: Sequence[str],
        *,
        oracle_seconds: float = ORACLE_SECONDS,
        shipped_plans: bool = True,
    ) -> RunSettings:
        """Built-in policies (and the oracle) played in this process, one episode at a time,
        with nothing printed: the settings of the policy tables."""
        return cls(
            policies=tuple(policies),
            model=None,
            api_base_url=DEFAULT_API_BASE_URL,
            api_key=None,
            env_url=None,
            env_token=None,
            tasks=tuple(tasks),
            seeds=(None,),
            seeds_text="per task",
            worker_count=None,
            concurrency=1,
            tool_calls=False,
            temperature=0.0,
            max_tokens=1,
            request_timeout_s=60.0,
            episode_timeout_s=math.inf,
            max_retries=0,
            retry_backoff_s=0.0,
            history=0,
            output=None,
            trajectories=None,
            update_baseline=False,
            baseline_file=BASELINE_FILE,
            progress=False,
            command="",
            oracle_seconds=oracle_seconds,
            shipped_plans=shipped_plans,
        )

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
        if self.outcome_secret is not None:
            out["sealed"] = True  # the secret itself is recorded in the results file only
        if self.reward_mode != "shaped":
            out["reward_mode"] = self.reward_mode
        if self.canvas_executor != "simulated":
            out["canvas_executor"] = self.canvas_executor
        if self.repeats > 1:
            out["repeats"] = self.repeats
            out["pass_threshold"] = self.pass_threshold
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
    """The seeds of a ``--seeds`` option, the one reading every tool of the project uses.

    The rule: a comma-separated list of items, each a seed (``7``) or an
    inclusive range ``low-high`` (``100-199``), e.g. ``0-19,25``. Spaces
    around numbers and empty items are ignored. Seeds are whole numbers from 0
    to ``MAX_SEED``; a range goes upward and holds at most 100000 seeds. The
    seeds come back in the order given, each once. Anything else, or no seed
    at all, raises ``UsageError`` with a message that says what is wrong.
    """
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = _SEED_ITEM.fullmatch(part)
        if match is None:
            raise UsageError(f"--seeds: {part!r} is not a seed or a range such as 100-199")
        first = int(match["low"])
        last = int(match["high"]) if match["high"] is not None else first
        if first > last:
            raise UsageError(f"--seeds: the range {part!r} is empty")
        if last > MAX_SEED:
            raise UsageError(f"--seeds: seeds go from 0 to {MAX_SEED}, got {part!r}")
        if last - first >= MAX_SEEDS_IN_A_RANGE:
            raise UsageError(f"--seeds: the range {part!r} has more than {MAX_SEEDS_IN_A_RANGE} seeds")
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
    what.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="K",
        help="play each task and seed K times and report pass^k: the fraction of seeds whose K plays all score "
        "at least --pass-threshold (default %(default)s). Built-in policies are deterministic, so their "
        "repeats are equal; a model's differ at a temperature above 0, and so do sealed runs' outcomes",
    )
    what.add_argument(
        "--pass-threshold",
        type=float,
        default=DEFAULT_PASS_THRESHOLD,
        help="the score every repeat of a seed must reach for pass^k (default %(default)s)",
    )
    seal = what.add_mutually_exclusive_group()
    seal.add_argument(
        "--sealed",
        action="store_true",
        help="seal the episodes with a fresh outcome secret (recorded in the --output file): "
        "outcomes and hidden facts then cannot be predicted from the seeds. In-process runs only; "
        "a server seals with its own secret (server --outcome-secret)",
    )
    seal.add_argument(
        "--outcome-secret", metavar="SECRET", help="seal with this secret, e.g. to reproduce a sealed run"
    )
    what.add_argument(
        "--canvas-executor",
        choices=EXECUTOR_NAMES,
        default="simulated",
        help="how canvas tasks run their canvases: the seeded simulator (default), or openai: every operator a "
        "call to the model of --model/--api-base-url/--api-key, code run in a sandbox, answers checked for "
        "real (in-process runs only; responses cached in $WORKFLOW_ORCHESTRATOR_MODEL_CACHE)",
    )
    what.add_argument(
        "--reward-mode",
        choices=REWARD_MODES,
        default="shaped",
        help="the per-step reward shown and logged: the shaped table, the change of the grade, or the grade "
        "at the end (default %(default)s; scores are grades in every mode)",
    )
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
        "--resume",
        action="store_true",
        help="continue the run recorded in the --output file (and --save-trajectories): play only the episodes "
        "not finished there, with the same settings, and write the merged results",
    )
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
        elif word == "--outcome-secret" and i + 1 < len(words):
            words[i + 1] = "REDACTED"  # recorded beside the results, not in the command
        elif word.startswith("--outcome-secret="):
            words[i] = "--outcome-secret=REDACTED"
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
    if args.repeats < 1:
        raise UsageError("--repeats must be at least 1")
    if not 0.0 <= args.pass_threshold <= 1.0:
        raise UsageError("--pass-threshold is a score, from 0 to 1")
    if args.resume and args.output is None:
        raise UsageError("--resume continues the run recorded in the --output file: give --output")
    seeds: tuple[int | None, ...] = parse_seeds(args.seeds) if args.seeds is not None else (None,)
    env_url = (args.env_url or environ.get("ENV_URL") or "").strip() or None
    if args.canvas_executor != "simulated":
        if env_url:
            raise UsageError("--canvas-executor openai runs in-process episodes; a server executes canvases simulated")
        if not model or not api_key:
            raise UsageError("--canvas-executor openai calls a model for every operator: give a model and an API key")
    outcome_secret = secrets.token_hex(16) if args.sealed else args.outcome_secret or None
    if outcome_secret is not None:
        if env_url:
            raise UsageError(
                "--sealed and --outcome-secret seal in-process runs; a server seals every episode with its own "
                "secret: start it with --outcome-secret or $WORKFLOW_ORCHESTRATOR_OUTCOME_SECRET"
            )
        if ORACLE in policies:
            raise UsageError("the oracle knows unsealed outcomes only: leave it out of a sealed run")
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
        reward_mode=args.reward_mode,
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
        outcome_secret=outcome_secret,
        repeats=args.repeats,
        pass_threshold=args.pass_threshold,
        resume=args.resume,
        canvas_executor=args.canvas_executor,
    )
