"""A whole run: check the environment, plan the episodes (players x tasks x
seeds), play them with the ``Runner``, and report; and ``play_policies``, the
same runner for the tables of the built-in policies and the oracle (the
evaluation table, the ladder, the benchmarks)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from workflow_orchestrator.server.tasks import TaskRegistry

from .episodes import EpisodeJob, EpisodeResult, Runner
from .errors import EXIT_FAILURE, EXIT_OK, EpisodeFailure, UsageError
from .reports import (
    Progress,
    now_iso,
    results_document,
    summarize,
    summary_table,
    token_totals,
    update_baseline,
    write_json_atomically,
    write_trajectories,
)
from .settings import ENV_NAME, ORACLE_SECONDS, RunSettings

logger = logging.getLogger(__name__)


def plan_jobs(settings: RunSettings) -> list[EpisodeJob]:
    players: list[tuple[str, str | None]] = (
        [(name, name) for name in settings.policies] if settings.policies else [(settings.model or "", None)]
    )
    return [
        EpisodeJob(model=model, policy=policy, task_id=task_id, seed=seed, repeat=repeat)
        for model, policy in players
        for task_id in settings.tasks
        for seed in settings.seeds
        for repeat in range(settings.repeats)
    ]


# An episode of a run: its player, task, seed as asked for (None: the task's canonical seed) and repeat.
EpisodeKey = tuple[str, str, int | None, int]
# The results file is rewritten at most this often while a run plays, and at its end.
SAVE_INTERVAL_S = 2.0


def job_key(job: EpisodeJob) -> EpisodeKey:
    return (job.model, job.task_id, job.seed, job.repeat)


def _recorded_key(settings: RunSettings, episode: Mapping[str, Any]) -> EpisodeKey:
    seed = None if settings.seeds == (None,) else episode["seed"]
    return (episode["model"], episode["task_id"], seed, int(episode.get("repeat", 0)))


@dataclass(slots=True)
class Recorded:
    """What an earlier, interrupted run of the same settings finished: its start, its
    outcome secret, and the records (and trajectories) of its finished episodes."""

    started_at: str | None = None
    outcome_secret: str | None = None
    episodes: dict[EpisodeKey, dict[str, Any]] = field(default_factory=dict)
    trajectories: dict[EpisodeKey, dict[str, Any]] = field(default_factory=dict)


def _without_command(public: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in public.items() if key not in ("command", "sealed")}


def read_recorded(settings: RunSettings) -> Recorded:
    """The finished episodes of the ``--output`` file to resume (none when it does not exist yet).

    An episode counts as finished when it was graded, and, with ``--save-trajectories``,
    when its trajectory is in that file too; the others are played again."""
    assert settings.output is not None
    try:
        document = json.loads(settings.output.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Recorded()
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume: cannot read {settings.output}: {exc}") from exc
    if not isinstance(document, dict) or document.get("env") != ENV_NAME or "episodes" not in document:
        raise UsageError(f"--resume: {settings.output} is not a results file of this environment")
    recorded_settings = _without_command(document.get("settings") or {})
    if recorded_settings != _without_command(settings.public()):
        raise UsageError(
            f"--resume: {settings.output} records a run with other settings: {json.dumps(recorded_settings)}"
        )
    if bool((document.get("settings") or {}).get("sealed")) != (settings.outcome_secret is not None):
        raise UsageError(f"--resume: {settings.output} records a run sealed differently")
    recorded = Recorded(started_at=document.get("started_at"), outcome_secret=document.get("outcome_secret"))
    for episode in document["episodes"]:
        if episode.get("error") is None and episode.get("score") is not None:
            recorded.episodes[_recorded_key(settings, episode)] = episode
    if settings.trajectories is not None:
        try:
            lines = settings.trajectories.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                trajectory = json.loads(line)
            except ValueError:
                continue  # a line torn by the interruption
            key = _recorded_key(settings, trajectory)
            if key in recorded.episodes:
                recorded.trajectories[key] = trajectory
        for key in [k for k in recorded.episodes if k not in recorded.trajectories]:
            del recorded.episodes[key]
    return recorded


def play_policies(
    policies: Sequence[str],
    tasks: Sequence[str],
    seeds: Mapping[str, Sequence[int]],
    *,
    registry: TaskRegistry | None = None,
    oracle_seconds: float = ORACLE_SECONDS,
    shipped_plans: bool = True,
) -> list[EpisodeResult]:
    """Every policy (a built-in one, or ``oracle``) on every task over that task's
    seeds, in this process and with nothing printed; the results in that order.

    The oracle plays the shipped plan of a task and seed when it is current
    (``shipped_plans``), else the best plan it finds in ``oracle_seconds``.
    Raises ``EpisodeFailure`` when an episode could not be played to its end.
    """
    settings = RunSettings.in_process(policies, tasks, oracle_seconds=oracle_seconds, shipped_plans=shipped_plans)
    jobs = [
        EpisodeJob(model=name, policy=name, task_id=task_id, seed=seed)
        for name in policies
        for task_id in tasks
        for seed in seeds[task_id]
    ]

    async def play() -> list[EpisodeResult]:
        async with Runner(settings, None, sys.stderr, registry) as runner:
            return await runner.run(jobs)

    results = asyncio.run(play())
    for result in results:
        if result.error is not None:
            raise EpisodeFailure(f"{result.model} on {result.task_id} seed {result.seed}: {result.error}")
    return results


async def evaluate(settings: RunSettings, stdout: TextIO, stderr: TextIO) -> int:
    started_at = now_iso()
    recorded = read_recorded(settings) if settings.resume else Recorded()
    if recorded.started_at is not None:
        started_at = recorded.started_at
    if settings.outcome_secret is not None and recorded.outcome_secret is not None:
        # A sealed run goes on under the secret its first episodes were played with.
        settings = dataclasses.replace(settings, outcome_secret=recorded.outcome_secret)
    if settings.outcome_secret is not None and settings.output is None:
        # With no results file to hold it, the secret is the only way to replay the run.
        stderr.write(f"sealed run: reproduce it with --outcome-secret {settings.outcome_secret}\n")
    all_jobs = plan_jobs(settings)
    episodes: dict[EpisodeKey, dict[str, Any]] = {}
    trajectories: dict[EpisodeKey, dict[str, Any]] = {}
    for job in all_jobs:
        key = job_key(job)
        if key in recorded.episodes:
            episodes[key] = recorded.episodes[key]
            if key in recorded.trajectories:
                trajectories[key] = recorded.trajectories[key]
    jobs = [job for job in all_jobs if job_key(job) not in episodes]
    if settings.resume and episodes:
        logger.warning("resuming %s: %d episode(s) finished, %d to play", settings.output, len(episodes), len(jobs))

    def in_order(records: Mapping[EpisodeKey, dict[str, Any]]) -> list[dict[str, Any]]:
        return [records[job_key(job)] for job in all_jobs if job_key(job) in records]

    def save(complete: bool) -> None:
        if settings.output is not None:
            document = results_document(settings, in_order(episodes), started_at, complete=complete)
            write_json_atomically(settings.output, document)

    last_save = -math.inf
    trajectory_file: TextIO | None = None
    if settings.trajectories is not None:
        # Trajectories are appended as episodes end, and written in order at the end.
        write_trajectories(settings.trajectories, in_order(trajectories))
        trajectory_file = settings.trajectories.open("a", encoding="utf-8")

    try:
        async with Runner(settings, stdout, stderr) as runner:
            known = await runner.check_environment()
            unknown = [t for t in settings.tasks if t not in known]
            if unknown:
                raise UsageError(f"unknown task {', '.join(unknown)}; the environment has: {', '.join(known)}")
            progress = Progress(len(jobs), stderr, settings.progress)

            def finished(result: EpisodeResult) -> None:
                nonlocal last_save
                progress.advance(result)
                key = _recorded_key(settings, result.summary())
                episodes[key] = result.summary()
                if trajectory_file is not None:
                    trajectories[key] = result.trajectory()
                    trajectory_file.write(json.dumps(trajectories[key]) + "\n")
                    trajectory_file.flush()
                if time.monotonic() - last_save >= SAVE_INTERVAL_S:
                    save(complete=False)
                    last_save = time.monotonic()

            await runner.run(jobs, finished)
    except BaseException:
        # Interrupted or stopped: what finished is on disk for --resume.
        if len(episodes) > len(recorded.episodes):
            save(complete=False)
        raise
    finally:
        if trajectory_file is not None:
            trajectory_file.close()
    merged = in_order(episodes)
    if settings.progress:
        stderr.write(summary_table(summarize(merged, settings.repeats, settings.pass_threshold), token_totals(merged)))
        stderr.write("\n")
    save(complete=True)
    if settings.trajectories is not None:
        write_trajectories(settings.trajectories, in_order(trajectories))
    failed = [e for e in merged if e["error"] is not None]
    if settings.update_baseline:
        if failed:
            logger.error("the baseline was not updated: %d episode(s) failed", len(failed))
        else:
            update_baseline(settings.baseline_file, settings, merged)
            logger.info("updated %s", settings.baseline_file)
    return EXIT_FAILURE if failed else EXIT_OK
