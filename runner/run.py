"""A whole run: check the environment, plan the episodes (players x tasks x
seeds), play them with the ``Runner``, and report."""

from __future__ import annotations

import logging
from typing import TextIO

from .episodes import EpisodeJob, Runner
from .errors import EXIT_FAILURE, EXIT_OK, UsageError
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
from .settings import RunSettings

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


async def evaluate(settings: RunSettings, stdout: TextIO, stderr: TextIO) -> int:
    started_at = now_iso()
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
