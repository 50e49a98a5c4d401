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
cost_efficiency       hindsight minimum cost / cost spent (see :class:`Hindsight`); until the
                      episode ends, the least public cost (each subtask once on its cheapest
                      capable agent) / cost spent, so a grade read mid-episode tells of no
                      outcome to come
budget                1 within budget; 1 - 2 x overrun / budget beyond it (floored at 0)
deadlines             deadlines met / deadlines
time_efficiency       hindsight lower bound on the time to finish / time used; 0 unless
                      the workflow was synthesized (see :class:`Hindsight`)
conflict_handling     conflicts resolved (the conflict point completed) on tracks completed by
                      pairwise different agents / conflicts
patience              waits after the patience subtask completed / waits wanted
pillar_balance        the lowest completed fraction over the pillars
valid_actions         1 - invalid actions / actions

Delivery: on a task that ends with ``synthesize`` (the tick time model), an
episode that never synthesized has not delivered its work: its completion
counts :data:`UNDELIVERED_SHARE` (a half) and its activity gate is at most a
half, besides time efficiency being 0. Work done and never delivered is worth
clearly less than work delivered.

References: every grade carries two, each with a status that says why it is
missing when it is.

``hindsight_best`` (alias ``best_score``, kept for older readers): the best
achievable score of that task and seed found by the oracle, which knows every
seeded outcome in advance: a clairvoyant upper bound no policy can be sure to
reach. ``hindsight_best_status`` (alias ``best_score_status``): ``optimal``
(proven), ``best_found`` (``best_score_upper_bound`` bounds it), ``unknown``
(not computed for this task, seed and worker count) or ``sealed``.
``normalized_score`` is the score over a proven ``hindsight_best``, else ``None``.

``planner_score``: the grade the no-foresight planner (tasks/planner.py)
earns on that seed, using only public information: a reference a policy can
reach. ``planner_score_status``: ``known``, ``pending`` (being computed on
request), ``unknown`` (not computed, or over the time budget) or ``sealed``.
``normalized_to_planner`` is the score over it (above 1 when a policy beats
it), else ``None``.

Both are precomputed (``tasks/best_scores.json``, ``tasks/planner_scores.json``)
and attached to the compiled task by the task registry; the planner's may also
be resolved on request by the object the registry sets on the compiled task
(``CompiledTask.references``), which never computes on the caller's thread:
grading never runs a solver. They hold for unsealed seeds only: a sealed
episode (outcomes keyed by a secret, ``Episode.seal``) is graded the same way
but claims no reference (the numbers ``None``, the statuses ``sealed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ...vocabulary import GradeDimensionName
from .dag import able_agents
from .formulas import budget_score, deadline_met, efficiency, ratio, unit
from .model import EventKind
from .outcomes import decide_attempt

if TYPE_CHECKING:
    from .episode import Episode

GATED_DIMENSIONS: Final[frozenset[GradeDimensionName]] = frozenset(
    {"recovery", "recovery_speed", "error_classification", "cost_efficiency", "budget", "valid_actions"}
)

# An episode that never delivers (a task that ends with ``synthesize``, never
# synthesized) keeps this share of its completion, and its activity gate is at most this.
UNDELIVERED_SHARE: Final = 0.5

# How many attempts the hindsight cost bound looks ahead for one agent.
_HINDSIGHT_ATTEMPTS: Final = 16


class LogFacts:
    """What the graders need, gathered in one pass over the event log."""

    __slots__ = (
        "completed_by",
        "completed_at",
        "failure_count",
        "failed_subtasks",
        "permanent_failures",
        "recovery_credit",
        "repeated_permanent",
        "invalid_steps",
        "cost",
        "peak",
        "synthesized",
        "end_time",
        "patience_waits",
    )

    def __init__(self, episode: Episode) -> None:
        task = episode.task
        completed_by: dict[str, str] = {}
        completed_at: dict[str, int] = {}
        failed_subtasks: set[str] = set()
        # Per failure, in order, 1 / the steps until the next sensible start of its
        # subtask (one by an agent not already seen to fail that subtask permanently),
        # or 0 while there is none; and per subtask, its failures still waiting for
        # one, as (index in credits, step of the failure).
        credits: list[float] = []
        unanswered: dict[str, list[tuple[int, int]]] = {}
        permanent: set[tuple[str, str]] = set()
        invalid_steps: set[int] = set()
        synthesized = False
        end_time = episode.now
        patience_after = task.patience.after if task.patience else None
        patience_open = False
        running = peak = repeated_count = waits = permanent_count = 0
        cost = 0.0
        # Rows are (kind, t, step, *fields), the fields as eventlog.FIELDS lists them.
        for row in episode.log.rows:
            kind: str = row[0]  # typed: the compiled build then compares it as a str, not as any object
            if kind == "delegated":
                running += 1
                if running > peak:
                    peak = running
                if unanswered or permanent:
                    _, _, step, subtask, agent, _, _, _ = row
                    if (subtask, agent) in permanent:
                        repeated_count += 1
                    elif subtask in unanswered:
                        # A step logs its action's starts before the failures its clock
                        # brings, so this start's step is later than each failure's.
                        for index, failed_step in unanswered.pop(subtask):
                            credits[index] = 1.0 / (step - failed_step)
            elif kind == "completed":
                _, t, _, subtask, agent, spent = row
                running -= 1
                cost += spent
                completed_by[subtask] = agent
                completed_at[subtask] = t
                if subtask == patience_after:
                    patience_open = True
            elif kind == "waited":
                if patience_open:
                    waits += 1
            elif kind == "failed":
                _, _, step, subtask, agent, failure, _, spent = row
                running -= 1
                cost += spent
                failed_subtasks.add(subtask)
                unanswered.setdefault(subtask, []).append((len(credits), step))
                credits.append(0.0)
                if failure == "permanent":
                    permanent_count += 1
                    permanent.add((subtask, agent))
            elif kind == "aborted":
                running -= 1
                cost += row[5]
            elif kind == "invalid_action":
                invalid_steps.add(row[2])
            elif kind == "synthesized":
                synthesized = True
                end_time = row[1] + (1 if episode.tick_model else 0)
                patience_open = False
        self.completed_by = completed_by
        self.completed_at = completed_at
        self.failure_count = len(credits)
        self.failed_subtasks = failed_subtasks
        self.permanent_failures = permanent_count
        recovery_credit = 0.0
        for credit in credits:  # in the order of the failures, as a sum of floats depends on it
            recovery_credit += credit
        self.recovery_credit = recovery_credit
        self.repeated_permanent = repeated_count
        self.invalid_steps = invalid_steps
        self.cost = cost
        self.peak = peak
        self.synthesized = synthesized
        self.end_time = end_time
        self.patience_waits = waits


@dataclass(frozen=True, slots=True)
class Hindsight:
    """Bounds for one (task, seed), computed knowing every seeded outcome.

    For each subtask, the best agent is found by running it on one able agent
    until it succeeds, every attempt to its end: ``min_cost`` sums the cheapest
    such runs, and ``time_lower_bound`` is the longest chain of the fastest such
    runs (at the best speed the agent has from the subtask's earliest start, in
    a window where it is online), plus the wanted patience waits and, in the
    tick model, the synthesis tick. Among plays that let attempts run to their
    end, mixing agents on one subtask never beats the best single agent, so
    these are the reference a good policy can reach. Only a player that knows
    the outcomes in advance can do better, by aborting an attempt it knows will
    fail; the dimensions are capped at 1, so that earns nothing extra.
    """

    min_cost: float
    time_lower_bound: int


@dataclass(frozen=True, slots=True)
class BestScore:
    """The best achievable score of one task and seed, as far as the oracle knows."""

    score: float
    status: str  # "optimal" (proven) or "best_found"
    upper_bound: float  # no trajectory scores more


def with_normalized_score(grade: dict[str, Any], episode: Any) -> dict[str, Any]:
    """Add both references and the normalised scores against them to a grade
    (see the module docstring). ``episode``: an episode of any family (its
    ``compiled`` task, ``seed`` and ``sealed``)."""
    # A sealed episode's outcomes are not the ones the references were found on.
    sealed = bool(getattr(episode, "sealed", False))
    compiled = episode.compiled
    best = None if sealed else compiled.best_scores.get(episode.seed)
    proven = best is not None and best.status == "optimal" and best.score > 0
    grade["normalized_score"] = round(grade["score"] / best.score, 6) if proven else None  # type: ignore[union-attr]
    grade["best_score"] = None if best is None else best.score
    grade["best_score_status"] = None if best is None else best.status
    grade["best_score_upper_bound"] = None if best is None else best.upper_bound
    grade["hindsight_best"] = grade["best_score"]
    grade["hindsight_best_status"] = "sealed" if sealed else ("unknown" if best is None else best.status)
    planner, status = planner_reference(episode)
    grade["planner_score"] = planner
    grade["planner_score_status"] = status
    grade["normalized_to_planner"] = round(grade["score"] / planner, 6) if planner is not None and planner > 0 else None
    return grade


def planner_reference(episode: Any) -> tuple[float | None, str]:
    """The planner's score of the episode's task and seed, and its status."""
    if getattr(episode, "sealed", False):
        return None, "sealed"
    compiled = episode.compiled
    known = compiled.planner_scores.get(episode.seed)
    if known is not None:
        return known, "known"
    if compiled.references is None:
        return None, "unknown"
    score, status = compiled.references.planner_status(compiled, episode.seed)
    return score, str(status)


def hindsight(episode: Episode) -> Hindsight:
    cache = episode.compiled.hindsight_by_seed
    # By the key of the outcomes: a sealed episode's are not its unsealed seed's.
    found = cache.get(episode.seed_key)
    if found is None:
        if len(cache) >= 4096:
            cache.clear()
        found = cache[episode.seed_key] = _compute_hindsight(episode)
    return found


def _compute_hindsight(episode: Episode) -> Hindsight:
    task = episode.task
    dag = episode.dag
    seed_key = episode.seed_key
    speed_changes = _speed_changes(episode)
    online = _online_windows(episode)
    total_cost = 0.0
    finish = [0] * len(task.subtasks)
    for s in dag.topological_order:
        subtask = task.subtasks[s]
        earliest_start = max((finish[p] for p in dag.predecessors[s]), default=0)
        best_cost = float("inf")
        best_time = 10**9
        for agent in able_agents(subtask, task.agents):
            speed = _best_speed_from(agent.speed, speed_changes.get(agent.name, ()), earliest_start)
            duration = max(1, speed * subtask.work)
            if not _fits(online.get(agent.name), earliest_start, duration):
                continue
            for attempt in range(_HINDSIGHT_ATTEMPTS):
                if decide_attempt(seed_key, subtask, agent, attempt, attempt, task.retry_cap) is None:
                    best_cost = min(best_cost, agent.cost * duration * (attempt + 1))
                    best_time = min(best_time, duration * (attempt + 1))
                    break
        total_cost += 0.0 if best_cost == float("inf") else best_cost
        own = best_time if best_time < 10**9 else dag.fastest_duration[s]
        finish[s] = earliest_start + own
    waits = task.patience.waits if task.patience else 0
    bound = max(finish, default=0) + waits + (1 if episode.tick_model else 0)
    return Hindsight(min_cost=total_cost, time_lower_bound=bound)


def _best_speed_from(base: int, changes: Iterable[tuple[int, int]], start: int) -> int:
    """The best (lowest) speed an agent has at any time from ``start`` on."""
    current = base
    later: list[int] = []
    for time, value in changes:
        if time <= start:
            current = value
        else:
            later.append(value)
    return min(current, *later) if later else current


def _online_windows(episode: Episode) -> dict[str, list[tuple[int, float]]]:
    """Per agent with scheduled dropouts, the time windows [start, end) it is online."""
    toggles: dict[str, list[tuple[int, bool]]] = {}
    for event in sorted(episode.task.events, key=lambda e: e.at):
        if event.kind in (EventKind.OFFLINE, EventKind.ONLINE) and event.agent is not None:
            toggles.setdefault(event.agent, []).append((episode._event_time(event), event.kind is EventKind.ONLINE))
    windows: dict[str, list[tuple[int, float]]] = {}
    for name, changes in toggles.items():
        spans: list[tuple[int, float]] = []
        opened: int | None = 0
        for time, comes_online in changes:
            if comes_online and opened is None:
                opened = time
            elif not comes_online and opened is not None:
                spans.append((opened, time))
                opened = None
        if opened is not None:
            spans.append((opened, float("inf")))
        windows[name] = spans
    return windows


def _fits(windows: list[tuple[int, float]] | None, earliest_start: int, duration: int) -> bool:
    """Whether some online window holds ``duration`` time units starting no earlier than given."""
    if windows is None:
        return True
    return any(max(start, earliest_start) + duration <= end for start, end in windows)


def _speed_changes(episode: Episode) -> dict[str, list[tuple[int, int]]]:
    """Per agent, its scheduled speed changes as (time, new speed), in time order."""
    changes: dict[str, list[tuple[int, int]]] = {}
    for event in sorted(episode.task.events, key=lambda e: e.at):
        if event.kind is EventKind.SPEED and event.agent is not None and event.value is not None:
            changes.setdefault(event.agent, []).append((episode._event_time(event), event.value))
    return changes


def _dimension_values(episode: Episode, facts: LogFacts, recovered: int, deadlines_met: int) -> dict[str, float]:
    """Every dimension's value before the activity gate (the hindsight ones only
    when the task weighs them)."""
    task = episode.task
    completed_by = facts.completed_by
    weighted = task.grade_weights

    recovery_speed = facts.recovery_credit / facts.failure_count if facts.failure_count else 1.0

    width = episode.dag.parallel_width
    if facts.peak == 0:
        parallelism = 0.0
    else:
        parallelism = 1.0 if width <= 1 else ratio(facts.peak - 1, width - 1)

    cost_efficiency = 0.0
    if "cost_efficiency" in weighted:
        if facts.cost <= 0:
            cost_efficiency = 0.0 if not completed_by else 1.0
        else:
            # Until the episode ends, against public facts only: the hindsight bound
            # knows the outcomes to come, and a grade read mid-episode (the dense
            # reward of reward_mode="grade", /grader) must not tell of them.
            least = hindsight(episode).min_cost if episode.done else episode.compiled.public_min_cost
            cost_efficiency = ratio(least, facts.cost)

    budget = budget_score(facts.cost, task.budget)

    time_efficiency = 0.0
    if "time_efficiency" in weighted and (facts.synthesized or (not episode.tick_model and episode.terminated)):
        time_efficiency = efficiency(hindsight(episode).time_lower_bound, facts.end_time)

    conflict_handling = 1.0
    if task.conflicts:
        handled = 0
        for conflict in task.conflicts:
            agents = [completed_by.get(track) for track in conflict.tracks]
            if None not in agents and len(set(agents)) == len(agents) and conflict.at in completed_by:
                handled += 1
        conflict_handling = handled / len(task.conflicts)

    pillar_balance = 1.0
    for members in episode.compiled.rules["pillars"].values():
        fraction = len(completed_by.keys() & members) / len(members)
        if fraction < pillar_balance:
            pillar_balance = fraction
    steps = episode.step_count
    return {
        "completion": len(completed_by) / len(task.subtasks),
        "recovery": ratio(recovered, len(facts.failed_subtasks)),
        "recovery_speed": recovery_speed,
        "error_classification": unit(1.0 - 0.5 * facts.repeated_permanent),
        "parallelism": parallelism,
        "cost_efficiency": cost_efficiency,
        "budget": budget,
        "deadlines": ratio(deadlines_met, len(episode.deadlines)),
        "time_efficiency": time_efficiency,
        "conflict_handling": conflict_handling,
        "patience": ratio(facts.patience_waits, task.patience.waits) if task.patience else 1.0,
        "pillar_balance": pillar_balance,
        "valid_actions": 0.0 if steps == 0 else 1.0 - len(facts.invalid_steps) / steps,
    }


def grade_scenario(episode: Episode) -> dict[str, Any]:
    """Grade an episode (finished or not) on its task's weighted dimensions (the
    scenario rules; the seam, ``families.grade_episode``, adds the normalised score)."""
    task = episode.task
    facts = LogFacts(episode)
    completed_by = facts.completed_by
    completed_at = facts.completed_at
    total = len(task.subtasks)
    gate = unit(len(completed_by) / total / task.activity_gate)
    delivered = facts.synthesized or (not episode.tick_model and episode.terminated)
    if not delivered and gate > UNDELIVERED_SHARE:
        gate = UNDELIVERED_SHARE
    recovered = len(facts.failed_subtasks & completed_by.keys())
    ids = episode.dag.ids
    deadlines_met = 0
    for deadline, s in episode.deadlines:
        if deadline_met(completed_at.get(ids[s]), deadline):
            deadlines_met += 1
    values = _dimension_values(episode, facts, recovered, deadlines_met)
    if not delivered:
        values["completion"] *= UNDELIVERED_SHARE
    breakdown: dict[str, float] = {}
    score = 0.0
    for name, weight in task.grade_weights.items():
        value = values[name]
        if gate != 1.0 and name in GATED_DIMENSIONS:
            value *= gate
        if value != 0.0 and value != 1.0:  # those two are already round (and most common)
            value = round(value, 6)
        breakdown[name] = value
        score += weight * value
    grade = {
        "task_id": task.task_id,
        "seed": episode.seed,
        "score": round(unit(score), 6),
        "breakdown": breakdown,
        "weights": dict(task.grade_weights),
        "activity_gate": gate if gate == 1.0 else round(gate, 6),
        "finished": episode.done,
        "counts": {
            "subtasks_completed": len(completed_by),
            "subtasks_total": total,
            "delivered": delivered,
            "failures": facts.failure_count,
            "permanent_failures": facts.permanent_failures,
            "failures_recovered": recovered,
            "repeated_permanent_attempts": facts.repeated_permanent,
            "deadlines_met": deadlines_met,
            "deadlines_total": len(episode.deadlines),
            "invalid_actions": len(facts.invalid_steps),
            "steps": episode.step_count,
            "time_used": episode.now,
            "cost": round(facts.cost, 6),
            "budget": task.budget,
            "peak_concurrency": facts.peak,
        },
    }
    return grade
