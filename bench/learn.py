"""Learnability: ``python -m bench learn [--timesteps N] [--minutes M] [--plot PATH]``.

Trains sb3-contrib's MaskablePPO (the ``learn`` extra) on ``arena/medium`` and
``generated/easy``, each for at most ``--timesteps`` environment steps and
``--minutes`` of wall time (10 by default), and evaluates it on held-out seeds
(the evaluation range, never seen in training): the learning curve's points
on 50 seeds, then the final mean grade on 200 seeds next to the random, greedy
and heuristic built-in policies on the same 200 seeds. Writes a PNG of the
curves (``docs/learning.png`` by default) and prints one JSON object as its
last line.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

TASKS = ("arena/medium", "generated/easy")
REPO_ROOT = Path(__file__).resolve().parent.parent


def plot(results: list, path: Path) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    styles = {"random": ":", "greedy": "--", "heuristic": "-."}
    for axis, result in zip(axes[0], results, strict=True):
        steps = [point[0] for point in result.curve]
        scores = [point[1] for point in result.curve]
        axis.plot(steps, scores, marker="o", color="tab:blue", label="MaskablePPO (50 held-out seeds)")
        for name, score in result.baselines.items():
            axis.axhline(score, linestyle=styles.get(name, "-"), color="grey", label=f"{name} ({score:.3f})")
        axis.set_title(f"{result.task_id}: final {result.final_score:.3f} on 200 held-out seeds")
        axis.set_xlabel("environment steps trained")
        axis.set_ylabel("mean grade score")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench learn")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--timesteps", type=int, default=150_000)
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-time budget of training, per task")
    parser.add_argument("--evaluations", type=int, default=10, help="points of the learning curve")
    parser.add_argument("--plot", type=Path, default=REPO_ROOT / "docs" / "learning.png")
    args = parser.parse_args(argv)
    try:
        import sb3_contrib  # noqa: F401

        from workflow_orchestrator.learn import train_and_evaluate
    except ImportError as exc:
        raise SystemExit(f"bench learn needs the learn extra (bash .ci/install-extras learn): {exc}") from None
    results = []
    for task_id in args.tasks.split(","):
        result = train_and_evaluate(
            task_id, timesteps=args.timesteps, minutes=args.minutes, evaluations=args.evaluations
        )
        results.append(result)
        for steps, score in result.curve:
            print(f"{task_id}: {steps} steps -> {score:.4f} mean grade (50 held-out seeds)")
        others = ", ".join(f"{name} {score:.4f}" for name, score in result.baselines.items())
        print(
            f"{task_id}: MaskablePPO {result.final_score:.4f} on 200 held-out seeds after {result.timesteps} steps "
            f"({result.seconds} s); {others}"
        )
    plot(results, args.plot)
    print(f"plot: {args.plot}")
    summary = {
        r.task_id: {k: v for k, v in asdict(r).items() if k not in ("task_id", "evaluation_seeds")} for r in results
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
