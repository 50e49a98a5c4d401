"""Terminal grades: a score in [0, 1] read from the event log.

Each dimension is a number in [0, 1]; the score is their weighted sum with the
task's weights. "Doing no harm" dimensions (:data:`GATED_DIMENSIONS`) are
scaled by an activity gate, ``min(1, completed fraction / task.activity_gate)``,
so that doing nothing earns nothing.

Dimensions
----------
completion            completed subtasks / all subtasks
recovery              subtasks that failed and were later completed / subtasks that failed
                      (1 when nothing failed)
recovery_speed        mean over failures of 1 / (steps until the subtask was started again by
                      an agent not known to fail it permanently); a failure never so retried
                      counts 0 (1 when nothing failed)
error_classification  1 - 0.5 per attempt given to an agent already seen to fail that
                      subtask permanently (floored at 0)
parallelism           (peak subtasks running at once - 1) / (achievable width - 1)
cost_efficiency       hindsight minimum cost / cost spent (the minimum, for this seed,
                      of running each subtask on its cheapest agent until it succeeds)
budget                1 within budget; 1 - 2 x overrun / budget beyond it (floored at 0)
deadlines             deadlines met / deadlines
time_efficiency       lower bound on the time to finish / time used; 0 unless the workflow
                      was synthesized (the bound: critical path + patience waits + 1)
conflict_handling     conflicts resolved (the conflict point completed) on tracks completed by
                      pairwise different agents / conflicts
patience              waits after the patience subtask completed / waits wanted
pillar_balance        the lowest completed fraction over the pillars
valid_actions         1 - invalid actions / actions
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .dag import able_agents
from .outcomes import decide_attempt, episode_key

if TYPE_CHECKING:
    from .episode import Episode

GRADE_DIMENSIONS: tuple[str, ...] = (
    "completion",
    "recovery",
    "recovery_speed",
    "error_classification",
    "parallelism",
    "cost_efficiency",
    "budget",
    "deadlines",
    "time_efficiency",
    "conflict_handling",
    "patience",
    "pillar_balance",
    "valid_actions",
)

GATED_DIMENSIONS = frozenset(
    {"recovery", "recovery_speed", "error_classification", "cost_efficiency", "budget", "valid_actions"}
)

# How many attempts the hindsight cost bound looks ahead for one agent.
_HINDSIGHT_ATTEMPTS = 16


class LogFacts:
    """What the graders need, gathered in one pass over the event log."""

    def __init__(self, episode: "Episode") -> None:
        task = episode.task
        self.completed_by: dict[str, str] = {}
        self.completed_at: dict[str, int] = {}
        self.failures: list[dict[str, Any]] = []
        # Per subtask: (step, sensible) for each start; a start is not sensible when
        # its agent was already seen to fail that subtask permanently.
        self.restarts: dict[str, list[tuple[int, bool]]] = {}
        self.permanent: set[tuple[str, str]] = set()
        self.repeated_permanent = 0
        self.invalid_steps: set[int] = set()
        self.cost = 0.0
        self.peak = 0
        self.synthesized = False
        self.end_time = episode.now
        self.patience_waits = 0
        patience_after = task.patience.after if task.patience else None
        patience_open = False
        running = 0
        for record in episode.log.records:
            kind = record["kind"]
            if kind == "delegated":
                running += 1
                self.peak = max(self.peak, running)
                subtask, agent = record["subtask"], record["agent"]
                repeated = (subtask, agent) in self.permanent
                self.restarts.setdefault(subtask, []).append((record["step"], not repeated))
                if repeated:
                    self.repeated_permanent += 1
            elif kind == "completed":
                running -= 1
                self.cost += record["cost"]
                self.completed_by[record["subtask"]] = record["agent"]
                self.completed_at[record["subtask"]] = record["t"]
                if record["subtask"] == patience_after:
                    patience_open = True
            elif kind == "failed":
                running -= 1
                self.cost += record["cost"]
                self.failures.append(record)
                if record["failure"] == "permanent":
                    self.permanent.add((record["subtask"], record["agent"]))
            elif kind == "aborted":
                running -= 1
                self.cost += record["cost"]
            elif kind == "invalid_action":
                self.invalid_steps.add(record["step"])
            elif kind == "waited" and patience_open:
                self.patience_waits += 1
            elif kind == "synthesized":
                self.synthesized = True
                self.end_time = record["t"] + (1 if episode.tick_model else 0)
                patience_open = False


def hindsight_min_cost(episode: "Episode") -> float:
    """The least any trajectory can spend on this seed: each subtask run on the
    agent that is cheapest counting the attempts it needs to succeed."""
    cache = episode.compiled.min_cost_by_seed
    if episode.seed not in cache:
        if len(cache) >= 4096:
            cache.clear()
        cache[episode.seed] = _min_cost(episode)
    return cache[episode.seed]


def _min_cost(episode: "Episode") -> float:
    task = episode.task
    seed_key = episode_key(task.task_id, episode.seed)
    total = 0.0
    for subtask in task.subtasks:
        best = float("inf")
        for agent in able_agents(subtask, task.agents):
            per_attempt = agent.cost * agent.duration_for(subtask.work)
            for attempt in range(_HINDSIGHT_ATTEMPTS):
                failure = decide_attempt(seed_key, subtask, agent, attempt, attempt, task.retry_cap)
                if failure is None:
                    best = min(best, per_attempt * (attempt + 1))
                    break
        total += 0.0 if best == float("inf") else best
    return total


def time_lower_bound(episode: "Episode") -> int:
    task = episode.task
    waits = task.patience.waits if task.patience else 0
    return episode.dag.critical_path_length + waits + (1 if episode.tick_model else 0)


def _ratio(numerator: float, denominator: float, empty: float = 1.0) -> float:
    if denominator <= 0:
        return empty
    return max(0.0, min(1.0, numerator / denominator))


def _dimensions(episode: "Episode", facts: LogFacts) -> dict[str, Callable[[], float]]:
    task = episode.task
    total = len(task.subtasks)
    completion = len(facts.completed_by) / total

    def recovery() -> float:
        failed = {r["subtask"] for r in facts.failures}
        return _ratio(sum(1 for s in failed if s in facts.completed_by), len(failed))

    def recovery_speed() -> float:
        if not facts.failures:
            return 1.0
        credit = 0.0
        for failure in facts.failures:
            # The first later start by an agent not already seen to fail it permanently.
            later = [
                step
                for step, sensible in facts.restarts.get(failure["subtask"], [])
                if step > failure["step"] and sensible
            ]
            if later:
                credit += 1.0 / (later[0] - failure["step"])
        return credit / len(facts.failures)

    def error_classification() -> float:
        return max(0.0, 1.0 - 0.5 * facts.repeated_permanent)

    def parallelism() -> float:
        width = episode.dag.parallel_width
        if facts.peak == 0:
            return 0.0
        return 1.0 if width <= 1 else _ratio(facts.peak - 1, width - 1)

    def cost_efficiency() -> float:
        if facts.cost <= 0:
            return 0.0 if not facts.completed_by else 1.0
        return _ratio(hindsight_min_cost(episode), facts.cost)

    def budget() -> float:
        if task.budget is None or facts.cost <= task.budget:
            return 1.0
        return max(0.0, 1.0 - 2.0 * (facts.cost - task.budget) / task.budget)

    def deadlines() -> float:
        due = [s for s in task.subtasks if s.deadline is not None]
        met = sum(1 for s in due if facts.completed_at.get(s.id, 10**9) <= s.deadline)  # type: ignore[operator]
        return _ratio(met, len(due))

    def time_efficiency() -> float:
        if not (facts.synthesized or (not episode.tick_model and episode.terminated)):
            return 0.0
        return _ratio(time_lower_bound(episode), max(1, facts.end_time))

    def conflict_handling() -> float:
        if not task.conflicts:
            return 1.0
        handled = 0
        for conflict in task.conflicts:
            agents = [facts.completed_by.get(track) for track in conflict.tracks]
            distinct = None not in agents and len(set(agents)) == len(agents)
            if distinct and conflict.at in facts.completed_by:
                handled += 1
        return handled / len(task.conflicts)

    def patience() -> float:
        return _ratio(facts.patience_waits, task.patience.waits) if task.patience else 1.0

    def pillar_balance() -> float:
        fractions = []
        for pillar in task.pillars:
            members = [s.id for s in task.subtasks if pillar in s.tags]
            fractions.append(sum(1 for s in members if s in facts.completed_by) / len(members))
        return min(fractions, default=1.0)

    def valid_actions() -> float:
        steps = episode.step_count
        return 0.0 if steps == 0 else 1.0 - len(facts.invalid_steps) / steps

    return {
        "completion": lambda: completion,
        "recovery": recovery,
        "recovery_speed": recovery_speed,
        "error_classification": error_classification,
        "parallelism": parallelism,
        "cost_efficiency": cost_efficiency,
        "budget": budget,
        "deadlines": deadlines,
        "time_efficiency": time_efficiency,
        "conflict_handling": conflict_handling,
        "patience": patience,
        "pillar_balance": pillar_balance,
        "valid_actions": valid_actions,
    }


def grade_episode(episode: "Episode") -> dict[str, Any]:
    """Grade an episode (finished or not) on its task's weighted dimensions."""
    task = episode.task
    facts = LogFacts(episode)
    total = len(task.subtasks)
    completed_fraction = len(facts.completed_by) / total
    gate = min(1.0, completed_fraction / task.activity_gate)
    dimension_fns = _dimensions(episode, facts)
    breakdown: dict[str, float] = {}
    for name in task.grade_weights:
        value = dimension_fns[name]()
        if name in GATED_DIMENSIONS:
            value *= gate
        breakdown[name] = round(value, 6)
    score = sum(task.grade_weights[name] * value for name, value in breakdown.items())
    failed_subtasks = {r["subtask"] for r in facts.failures}
    due = [s for s in task.subtasks if s.deadline is not None]
    return {
        "task_id": task.task_id,
        "seed": episode.seed,
        "score": round(max(0.0, min(1.0, score)), 6),
        "breakdown": breakdown,
        "weights": dict(task.grade_weights),
        "activity_gate": round(gate, 6),
        "finished": episode.done,
        "counts": {
            "subtasks_completed": len(facts.completed_by),
            "subtasks_total": total,
            "failures": len(facts.failures),
            "permanent_failures": sum(1 for r in facts.failures if r["failure"] == "permanent"),
            "failures_recovered": sum(1 for s in failed_subtasks if s in facts.completed_by),
            "repeated_permanent_attempts": facts.repeated_permanent,
            "deadlines_met": sum(
                1 for s in due if facts.completed_at.get(s.id, 10**9) <= s.deadline  # type: ignore[operator]
            ),
            "deadlines_total": len(due),
            "invalid_actions": len(facts.invalid_steps),
            "steps": episode.step_count,
            "time_used": episode.now,
            "cost": round(facts.cost, 6),
            "budget": task.budget,
            "peak_concurrency": facts.peak,
        },
    }
