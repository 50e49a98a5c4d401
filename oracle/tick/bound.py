"""An admissible upper bound on the grade of any continuation of a tick node.

Each dimension is bounded by a relaxation that keeps the seeded outcomes,
dropouts and speed changes (see :func:`upper_bound`); dimensions that trade
off are maximised together. The bound reads the tables of :mod:`.problem`
and never changes a node; the values it bounds are scored by the grader's
own formulas (``formulas.py``). A bound that is too low would prune the optimum
silently: the brute-force tests check it against exhaustive enumeration, and
a bound above the score of the replayed plan is only ever reported as such.
"""

from __future__ import annotations

import heapq
import math

from ...server.core.formulas import budget_score, deadline_met, ratio, unit
from ...server.core.grading import UNDELIVERED_SHARE
from ...server.core.states import COMPLETED, PENDING, RUNNING
from .node import NEVER, SUCCEEDS, TickNode
from .problem import TickProblem


def upper_bound(problem: TickProblem, node: TickNode, floor: float = -1.0) -> float:
    """A score no continuation of ``node`` can exceed (as ``grade_episode`` rounds it).

    Each dimension is bounded by a relaxation: completion times ignore capacity
    and the other subtasks' agents (but keep the seeded outcomes, dropouts and
    speed changes); costs take each remaining subtask's cheapest successful
    attempt sequence. Dimensions that trade off through the number of completed
    subtasks (the activity gate, cost, budget) are maximised jointly over that
    number; time efficiency and patience are maximised jointly over the number
    of waits still to come. Each dimension's bound is rounded as the grader
    rounds the dimension itself (rounding is monotone), which keeps the bound
    admissible for the rounded score.
    """
    ect, earliest_start = earliest_completions(problem, node)
    cheap = assemble_bound(problem, node, ect, node.t)
    w = problem.weights
    if cheap <= floor + 1e-12 or not (w.deadlines or w.time_efficiency or w.patience):
        # Already no better than the plan in hand (``floor``): the sharper bound cannot help.
        return cheap
    if sum(1 for s in range(problem.n) if ect[s] <= problem.limit) < problem.n:
        return cheap
    finish_all = contention_bounds(problem, node, earliest_start, ect)
    return min(cheap, assemble_bound(problem, node, ect, finish_all))


def earliest_completions(problem: TickProblem, node: TickNode) -> tuple[list[int], list[int]]:
    """Per subtask, a time before which it cannot complete, and one before which
    it cannot start (completion times relax capacity and the other subtasks)."""
    n, t, limit = problem.n, node.t, problem.limit
    status = node.status
    pair_attempts = node.pair_attempts
    options = problem.options
    preds = problem.preds
    ect = [NEVER] * n
    earliest_start = [t] * n
    for s in problem.topo:
        st = status[s]
        if st == COMPLETED:
            ect[s] = node.completed_at[s]
            continue
        if st == RUNNING:
            best = node.run_end[s] if node.run_result[s] == SUCCEEDS else NEVER
            est = t + 1
        else:
            best = NEVER
            est = t
            if st == PENDING:
                for p in preds[s]:
                    if ect[p] > est:
                        est = ect[p]
        earliest_start[s] = est
        if est < limit:
            for slot, table, _, _, _ in options[s]:
                f = table[pair_attempts[slot]][est]
                if f < best:
                    best = f
        ect[s] = best if best <= limit else NEVER
    return ect, earliest_start


def assemble_bound(problem: TickProblem, node: TickNode, ect: list[int], finish_all: int) -> float:
    """The bound on the score given completion bounds ``ect`` and a time
    ``finish_all`` before which not everything can be complete."""
    w = problem.weights
    n, t, limit = problem.n, node.t, problem.limit
    status = node.status
    pair_attempts = node.pair_attempts
    options = problem.options
    done = node.done_count
    pending_reach = [s for s in range(n) if status[s] != COMPLETED and ect[s] <= limit]
    n_reach = done + len(pending_reach)

    # Dimensions that do not depend on how many subtasks end up completed.
    fixed = 0.0
    if w.deadlines:
        due = problem.deadline_subtasks
        deadline = problem.deadline
        met = 0
        for s in due:
            if deadline_met(ect[s], deadline[s]):
                met += 1
        fixed += w.deadlines * round(ratio(met, len(due)), 6)
    if w.conflict_handling:
        handled = 0
        for at, tracks in problem.conflicts:
            if ect[at] > limit or any(ect[s] > limit for s in tracks):
                continue
            agents = [node.completed_by[s] for s in tracks if status[s] == COMPLETED]
            if len(set(agents)) == len(agents):
                handled += 1
        fixed += w.conflict_handling * round(handled / len(problem.conflicts), 6)
    if w.pillar_balance:
        pillar = min(
            (sum(1 for s in members if ect[s] <= limit) / len(members) for members in problem.pillars), default=1.0
        )
        fixed += w.pillar_balance * round(pillar, 6)
    if w.parallelism:
        width = problem.width
        future = min(problem.max_capacity_from[t], n - done) if t < limit else 0
        peak = node.peak if node.peak > future else future
        if peak == 0:
            parallel = 0.0
        elif width <= 1 or peak >= width:
            parallel = 1.0
        else:
            parallel = (peak - 1) / (width - 1)
        fixed += w.parallelism * round(parallel, 6)

    # Gated dimensions whose bound does not depend on the number completed (before the gate).
    gated_fixed: list[tuple[float, float]] = []  # (weight, value before the gate)
    if w.recovery:
        failed = node.failed_mask
        if failed:
            failed_count = bin(failed).count("1")
            recovered = sum(1 for s in range(n) if failed >> s & 1 and ect[s] <= limit)
            fresh = sum(1 for s in pending_reach if not failed >> s & 1)
            gated_fixed.append((w.recovery, (recovered + fresh) / (failed_count + fresh)))
        else:
            gated_fixed.append((w.recovery, 1.0))
    if w.recovery_speed:
        if node.failures:
            open_credit = 0.0
            step = t + 1
            for steps in node.open_failures:
                for f in steps:
                    open_credit += 1.0 / (step - f)
            future_failures = problem.max_capacity_from[t] * max(0, limit - t)
            speed = ratio(node.credit + open_credit + future_failures, node.failures + future_failures)
            gated_fixed.append((w.recovery_speed, speed))
        else:
            gated_fixed.append((w.recovery_speed, 1.0))
    if w.error_classification:
        gated_fixed.append((w.error_classification, unit(1.0 - 0.5 * node.repeated)))
    if w.valid_actions:
        gated_fixed.append((w.valid_actions, 1.0))

    # Cost: what is certain to be charged, and the least each remaining completion adds.
    agent_cost = problem.agent_cost
    sunk = node.cost
    extra: list[float] = []
    if w.cost_efficiency or w.budget:
        for s in range(n):
            if status[s] == RUNNING and node.run_end[s] <= limit:
                sunk += agent_cost[node.run_agent[s]] * (t - node.run_start[s])
        for s in pending_reach:
            restart = math.inf
            for slot, _, costs, _, _ in options[s]:
                c = costs[pair_attempts[slot]]
                if c < restart:
                    restart = c
            if status[s] == RUNNING:
                a0 = node.run_agent[s]
                if node.run_end[s] <= limit:
                    if node.run_result[s] == SUCCEEDS:
                        current = agent_cost[a0] * (node.run_end[s] - t)
                        if current < restart:
                            restart = current
                else:
                    restart += agent_cost[a0] * (t - node.run_start[s])
            extra.append(restart)
        extra.sort()

    # Time efficiency and patience, for an episode that synthesizes.
    synth_term = -1.0
    p = problem.patience_index
    wanted = problem.patience_waits
    if p >= 0:
        wait_from = t if status[p] == COMPLETED else ect[p]
        waits_possible = limit - wait_from if wait_from <= limit else 0
        patience_free = round(ratio(node.patience_waits + waits_possible, wanted), 6)
    else:
        wait_from = 0
        patience_free = 1.0
    # Whether the episode can still deliver (synthesize, every subtask completed, before the limit).
    can_deliver = node.synthesized
    last = finish_all
    if n_reach == n:
        for s in pending_reach:
            if ect[s] > last:
                last = ect[s]
        if last <= limit - 1:
            can_deliver = True
    if n_reach == n and (w.time_efficiency or w.patience):
        time_lb = problem.time_lb
        if p >= 0:
            for more in range(0, max(0, wanted - node.patience_waits) + 1):
                synth_at = max(last, wait_from + more)
                if synth_at > limit - 1:
                    break
                value = w.time_efficiency * round(ratio(time_lb, synth_at + 1), 6) + w.patience * round(
                    ratio(node.patience_waits + more, wanted), 6
                )
                if value > synth_term:
                    synth_term = value
        elif last <= limit - 1:
            synth_term = w.time_efficiency * round(ratio(time_lb, last + 1), 6) + w.patience
    no_synth_term = w.patience * patience_free

    # Maximise over the number k of subtasks completed at the end, from the most
    # down; a cheap bound for each k (every gated dimension at 1) ends the loop early.
    gated_total = w.cost_efficiency + w.budget + sum(weight for weight, _ in gated_fixed)
    gate_scale = 1.0 / (n * problem.activity_gate)
    prefix = [sunk]
    for c in extra:
        prefix.append(prefix[-1] + c)
    best_total = 0.0
    min_cost = problem.min_cost
    for k in range(n_reach, done - 1, -1):
        gate = unit(k * gate_scale)
        if k == n and can_deliver:
            ending = max(synth_term, no_synth_term)
            completion = round(k / n, 6)
        else:
            # Undelivered: the completion and the gate count at most a share (grading.py).
            ending = no_synth_term
            completion = round(k / n * UNDELIVERED_SHARE, 6)
            if gate > UNDELIVERED_SHARE:
                gate = UNDELIVERED_SHARE
        base = fixed + w.completion * completion + ending
        if base + gated_total * gate <= best_total:
            break
        total = base
        spent = prefix[k - done] if extra else sunk
        if w.cost_efficiency:
            cost_value = ratio(min_cost, spent)
            total += w.cost_efficiency * round(cost_value * gate, 6)
        if w.budget:
            total += w.budget * round(budget_score(spent, problem.budget) * gate, 6)
        for weight, value in gated_fixed:
            total += weight * round(value * gate, 6)
        if total > best_total:
            best_total = total
    # The nudge keeps ties at a rounding boundary on the high side, whatever the summation order.
    return round(best_total + 1e-9, 6)


def contention_bounds(problem: TickProblem, node: TickNode, earliest_start: list[int], ect: list[int]) -> int:
    """Bounds from agents and slots being shared, for a state whose every
    subtask can still complete: returns a time by which the last subtask cannot
    yet be complete, and raises ``ect`` of the subtasks with deadlines in place.

    * Slots: at most ``capacity`` (and at most one per agent) work at once, so
      the agent time still needed, spread over them, ends no earlier than
      ``t + ceil(work / slots)``; the same for the ancestors of a subtask.
    * Agents: the subtasks that only one agent can still complete run on it one
      at a time. With release times (earliest starts) and tails (the least
      time after each), the preemptive schedule that always runs the job with
      the longest tail bounds the finish of everything (Jackson's bound); the
      ancestors of a subtask on one agent, run in release order, bound when it
      can start.
    """
    n, m, t, limit = problem.n, problem.m, node.t, problem.limit
    status = node.status
    pair_attempts = node.pair_attempts
    usable_options = problem.usable_options[t]
    slots = min(problem.max_capacity_from[t], m)
    need = [0] * n
    dedicated = [-1] * n
    for s in range(n):
        st = status[s]
        if st == COMPLETED:
            continue
        usable = usable_options[s]
        least = NEVER
        for slot, _, _, times, _ in usable:
            if times[pair_attempts[slot]] < least:
                least = times[pair_attempts[slot]]
        if st == RUNNING and node.run_result[s] == SUCCEEDS and node.run_end[s] <= limit:
            least = min(least, node.run_end[s] - t)
        need[s] = least
        if len(usable) == 1:
            dedicated[s] = usable[0][4]
    total = sum(need)
    finish_all = t + -(-total // slots) if total else t
    # Jackson's preemptive bound per agent.
    jobs: dict[int, list[tuple[int, int, int]]] = {}
    for s in range(n):
        if dedicated[s] >= 0:
            release = t if status[s] == RUNNING else earliest_start[s]
            jobs.setdefault(dedicated[s], []).append((release, need[s], problem.tail_after[s]))
    for agent_jobs in jobs.values():
        bound = _jackson(agent_jobs)
        if bound > finish_all:
            finish_all = bound
    # Subtasks with deadlines: their ancestors first.
    for d in problem.deadline_subtasks:
        if status[d] == COMPLETED or status[d] == RUNNING:
            continue
        waiting = [x for x in problem.ancestors[d] if status[x] != COMPLETED]
        if not waiting:
            continue
        work = sum(need[x] for x in waiting)
        start = t + -(-work // slots)
        per_agent: dict[int, list[tuple[int, int]]] = {}
        for x in waiting:
            if dedicated[x] >= 0:
                release = t if status[x] == RUNNING else earliest_start[x]
                per_agent.setdefault(dedicated[x], []).append((release, need[x]))
        own = dedicated[d]
        for agent, ancestor_jobs in per_agent.items():
            clock = 0
            for release, length in sorted(ancestor_jobs):
                clock = max(clock, release) + length
            if agent == own:
                start = max(start, clock)
            elif clock > start:
                start = clock
        if start + need[d] > ect[d]:
            ect[d] = start + need[d]
    return finish_all


def _jackson(jobs: list[tuple[int, int, int]]) -> int:
    """max(completion + tail) of the preemptive schedule that runs the released
    job with the longest tail (optimal for one machine with preemption)."""
    jobs = sorted(jobs)
    waiting: list[tuple[int, int]] = []  # (-tail, remaining)
    clock = jobs[0][0]
    i, best = 0, 0
    while i < len(jobs) or waiting:
        if not waiting and clock < jobs[i][0]:
            clock = jobs[i][0]
        while i < len(jobs) and jobs[i][0] <= clock:
            heapq.heappush(waiting, (-jobs[i][2], jobs[i][1]))
            i += 1
        negative_tail, remaining = heapq.heappop(waiting)
        next_release = jobs[i][0] if i < len(jobs) else NEVER
        run = min(remaining, next_release - clock)
        clock += run
        if run < remaining:
            heapq.heappush(waiting, (negative_tail, remaining - run))
        elif clock - negative_tail > best:
            best = clock - negative_tail
    return best
