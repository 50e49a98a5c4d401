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
agent); on canvas tasks ``add(Plan)``, ``add(parallel:A,B)``,
``add(loop:Test,Revise*2)``, ``delete(3)``, ``modify(2:Custom)``,
``set_prompt(1:concise)``, ``execute()``, ``finish(answer)``.

On canvas tasks (``canvas/math``, ``canvas/code``, ``canvas/qa``,
``canvas/mixed``) the model is told the canvas's rules and sees the state in
the published feedback layout; it answers with one action in the published XML
form (``<action>add</action><operator>Plan</operator>``, ``<add>Plan</add>``,
``<action>finish</action><answer>42</answer>``, ...) or as a JSON object, in
text (no tools are sent, even with ``--tool-calls``). Where a workflow of named
agents plays ``wait`` instead of an answer that cannot be used, a canvas plays
``execute`` (no canvas action lets a round pass; executing an unchanged canvas
is free). ``error`` lists comma-separated codes: the environment's codes for an
invalid action (``not_ready``, ``capability_mismatch``, ...) and this runner's
own: ``unparseable_answer`` and ``model_call_failed`` (a ``wait`` was played
instead of the model's answer), ``episode_timeout`` (the episode ran out of
wall time; it is played out with ``wait``), ``rejected_by_environment`` (the
server refused the action's shape; a ``wait`` was played). Rewards are the
environment's true, unclamped step rewards. ``success`` is true when the
workflow ended (terminated) rather than ran out of time or steps; ``score`` is
the grade of the episode, asked for by its ``episode_id``.

The summary (stderr, and in the ``--output`` file) gives per model and task the
mean score with its 95% percentile bootstrap interval (2,000 resamples from a
fixed seed, so the same episodes give the same interval), the mean normalised
scores against the hindsight best and the planner (null, with the reason, when
an episode lacks the reference), and the prompt and completion tokens, per
episode, per task and in total. ``--repeats K`` plays each task and seed K
times and adds pass^k: the fraction of seeds whose K plays all score at least
``--pass-threshold`` (0.8). The ``--output`` file is rewritten as episodes end;
``--resume`` continues an interrupted run from it (and from
``--save-trajectories``), playing only the episodes not finished there.

Exit codes: 0 every episode ran and was graded; 1 a fatal error (the
environment is unreachable, the model API refuses the key or the model, or
refuses five requests in a row) or some episode could not be finished; 2 a usage error (no API key, no model
name, an unknown task or policy).

The runner itself is the package ``workflow_orchestrator.runner``; this script
reads the command line, runs it and exits with its code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

from workflow_orchestrator.runner.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, FatalError, UsageError
from workflow_orchestrator.runner.reports import baseline_table
from workflow_orchestrator.runner.run import evaluate
from workflow_orchestrator.runner.settings import ENV_NAME, build_parser, settings_from

__all__ = ["ENV_NAME", "main"]

RUNNER_LOGGER = "workflow_orchestrator.runner"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    # Other libraries (HTTP clients, asyncio) log only warnings; -v opens this runner's own log.
    library_level = logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=library_level, format="inference: %(message)s", stream=sys.stderr, force=True)
    logging.getLogger(RUNNER_LOGGER).setLevel(logging.DEBUG if args.verbose else library_level)
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
