"""A whole run: check the environment, plan the episodes (players x tasks x
seeds), play them with the ``Runner``, and report; and ``play_policies``, the
same runner for the tables of the built-in policies and the oracle (the
evaluation table, the ladder, the benchmarks)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from workflow_orchestrator.server.tasks import TaskRegistry

from .episodes import EpisodeJob, EpisodeResult, Runner
from .errors import EXIT_FAILURE, EXIT_OK, EpisodeFailure, UsageError
from .reports import (
    Progress,
    now_iso,
    results_document,
    summarize,
    summary_table,
    update_baseline,
    write_json_atomically,
    write_trajectories,
)
from .settings import ORACLE_SECONDS, RunSettings

logger = logging.getLogger(__name__)


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
    if settings.outcome_secret is not None and settings.output is None:
        # With no results file to hold it, the secret is the only way to replay the run.
        stderr.write(f"sealed run: reproduce it with --outcome-secret {settings.outcome_secret}\n")
    async with Runner(settings, stdout, stderr) as runner:
        known = await runner.check_environment()
        unknown = [t for t in settings.tasks if t not in known]
        if unknown:
            raise UsageError(f"unknown task {', '.join(unknown)}; the environment has: {', '.join(known)}")
        jobs = plan_jobs(settings)
        progress = Progress(len(jobs), stderr, settings.progress)
        results = await runner.run(jobs, progress.advance)
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
