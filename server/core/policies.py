"""Built-in policies. Each reads only the observation (public information).

``noop``       always waits.
``random``     a seeded uniform choice among the listed legal actions.
``greedy``     the first ready or failed subtask to the first idle capable agent
               that has not failed it permanently (a permanent failure is public,
               so greedy switches agents after one); one start per step, no
               patience waits.
``stubborn``   greedy that retries the same agent after any failure, whatever
               the failure said: a permanent trap on its path stalls it for good
               (the degenerate policy the trap tests use).
``heuristic``  critical path first; the cheapest adequate agent (the fastest when
               a deadline is close); a different agent after a permanent failure;
               different agents on conflicting tracks; several starts in one
               ``dispatch``; the stated monitoring waits before synthesis. A family
               may bring its own (``Family.heuristic``: the arena's, in arena.py).
``slack``      the longest remaining chain first, then the earliest latest start
               time: each subtask's latest start is the earliest of the deadlines
               it or its successors must meet (the time limit when none), less the
               fastest chain from it to the end. The agent by expected cost to completion from the declared
               reliability and cost (cost x duration / reliability), the expected
               time (duration / reliability) instead when the slack is shorter than
               that; never an agent seen to fail the subtask permanently; different
               agents on conflicting tracks; the monitoring waits before synthesis.
               In the arena (interchangeable workers), ready work by longest
               remaining chain, then least slack (its own deadline's or the time
               budget's along its chain), then priority.
``template``   a family's fixed template (``Family.template``, if it has one: the
               canvas family's published example workflow, whatever the problem);
               greedy on the families without one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .arena import record_counts
from .dag import chain_tails, view_successors
from .families import family_of_observation
from .states import COMPLETED, FAILED, IDLE, READY, RUNNING

# In the slack policies' reliability estimates, the shown (prior) reliability counts as this many attempts.
PRIOR_ATTEMPTS = 4.0

Observation = dict[str, Any]
ActionDict = dict[str, Any]

WAIT: ActionDict = {"action_type": "wait"}
SYNTHESIZE: ActionDict = {"action_type": "synthesize"}


class Policy:
    name = "policy"

    def reset(self, seed: int = 0) -> None:
        """Called at the start of every episode."""

    def act(self, observation: Observation) -> ActionDict:
        raise NotImplementedError


class NoopPolicy(Policy):
    name = "noop"

    def act(self, observation: Observation) -> ActionDict:
        return dict(WAIT)


class RandomPolicy(Policy):
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def reset(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def act(self, observation: Observation) -> ActionDict:
        legal = observation["legal_actions"]
        return dict(self.rng.choice(legal)) if legal else dict(WAIT)


def _by_status(observation: Observation, status: str) -> list[dict[str, Any]]:
    return [s for s in observation["subtasks"] if s["status"] == status]


def _all_done(observation: Observation) -> bool:
    return bool(observation["completed_count"] == observation["subtask_count"])


class GreedyPolicy(Policy):
    name = "greedy"

    def act(self, observation: Observation) -> ActionDict:
        if _all_done(observation):
            return dict(SYNTHESIZE)
        if observation["active_count"] >= observation["capacity"]:
            return dict(WAIT)
        agents = observation["agents"]
        for subtask in observation["subtasks"]:
            status = subtask["status"]
            if status != "ready" and status != "failed":
                continue
            banned = {f["agent"] for f in subtask["failures"] if f["kind"] == "permanent"}
            kind_needed = subtask["type"]
            for agent in agents:
                if agent["status"] == "idle" and kind_needed in agent["capabilities"] and agent["name"] not in banned:
                    kind = "retry" if status == "failed" else "delegate"
                    return {"action_type": kind, "subtask_id": subtask["id"], "agent_name": agent["name"]}
        return dict(WAIT)


class StubbornPolicy(Policy):
    name = "stubborn"

    def act(self, observation: Observation) -> ActionDict:
        if _all_done(observation):
            return dict(SYNTHESIZE)
        if observation["active_count"] >= observation["capacity"]:
            return dict(WAIT)
        agents = observation["agents"]
        for subtask in _by_status(observation, "failed"):
            last_agent = subtask["failures"][-1]["agent"]
            for agent in agents:
                if agent["name"] == last_agent and agent["status"] == "idle":
                    return {"action_type": "retry", "subtask_id": subtask["id"], "agent_name": last_agent}
        for subtask in _by_status(observation, "ready"):
            for agent in agents:
                if agent["status"] == "idle" and subtask["type"] in agent["capabilities"]:
                    return {"action_type": "delegate", "subtask_id": subtask["id"], "agent_name": agent["name"]}
        return dict(WAIT)


class HeuristicPolicy(Policy):
    name = "heuristic"

    def act(self, observation: Observation) -> ActionDict:
        own = family_of_observation(observation).heuristic(observation)
        if own is not None:  # the family's own heuristic (the arena's, for one)
            return own
        rules = observation.get("rules") or {}
        if _all_done(observation):
            patience = rules.get("patience")
            if patience and observation["patience_waits"] < patience["waits"]:
                return dict(WAIT)
            return dict(SYNTHESIZE)
        free = observation["capacity"] - observation["active_count"]
        if free <= 0:
            return dict(WAIT)
        subtasks = {s["id"]: s for s in observation["subtasks"]}
        tails = _tail_lengths(observation)
        candidates = [s for s in observation["subtasks"] if s["status"] in ("ready", "failed")]
        self._order(observation, candidates, tails)
        taken: set[str] = set()
        assignments: list[ActionDict] = []
        for subtask in candidates:
            if len(assignments) >= free:
                break
            agent = self._choose_agent(observation, subtask, subtasks, taken, tails)
            if agent is None:
                continue
            taken.add(agent)
            assignments.append({"subtask_id": subtask["id"], "agent_name": agent})
        if not assignments:
            return dict(WAIT)
        if len(assignments) == 1:
            only = assignments[0]
            kind = "retry" if subtasks[only["subtask_id"]]["status"] == "failed" else "delegate"
            return {"action_type": kind, **only}
        return {"action_type": "dispatch", "assignments": assignments}

    def _order(self, observation: Observation, candidates: list[dict[str, Any]], tails: dict[str, int]) -> None:
        """Sort the startable subtasks in place, the first to start first."""
        candidates.sort(key=lambda s: (-tails[s["id"]], s["deadline"] if s["deadline"] is not None else 10**9))

    def _choose_agent(
        self,
        observation: Observation,
        subtask: dict[str, Any],
        subtasks: dict[str, dict[str, Any]],
        taken: set[str],
        tails: dict[str, int],
    ) -> str | None:
        banned = {f["agent"] for f in subtask["failures"] if f["kind"] == "permanent"}
        # Different agents on conflicting tracks: avoid whoever did a sibling track.
        for conflict in (observation.get("rules") or {}).get("conflicts", []):
            if subtask["id"] in conflict["tracks"]:
                for track in conflict["tracks"]:
                    other = subtasks[track]
                    if track != subtask["id"] and other["status"] in ("completed", "in_progress"):
                        done_by = other["assigned_agent"] or other["completed_by"]
                        if done_by:
                            banned.add(done_by)
        options = [
            a
            for a in observation["agents"]
            if a["status"] == "idle"
            and a["name"] not in taken
            and a["name"] not in banned
            and subtask["type"] in a["capabilities"]
        ]
        if not options:
            return None
        return self._pick(observation, subtask, options, tails)

    def _pick(
        self, observation: Observation, subtask: dict[str, Any], options: list[dict[str, Any]], tails: dict[str, int]
    ) -> str:
        """The agent, among the able ones, for a subtask."""
        urgent = False
        if subtask["deadline"] is not None:
            slack = subtask["deadline"] - observation["time_used"] - tails[subtask["id"]]
            urgent = slack <= 3
        if urgent:
            options.sort(key=lambda a: (a["speed"], -a["reliability"], a["cost"] * a["speed"]))
        else:
            options.sort(key=lambda a: (a["cost"] * a["speed"] / max(a["reliability"], 0.05), a["speed"]))
        name: str = options[0]["name"]
        return name


def heuristic_on_state(episode: Any) -> ActionDict:
    """:class:`HeuristicPolicy`'s move on a workflow of named agents, read from the
    episode's state instead of its observation (the planner's rollouts call it at
    every step): the same move, field for field. Reliabilities are the ones the
    observation shows (the task's prior where they are not declared)."""
    task = episode.task
    status = episode.status
    if episode.completed_count == len(status):
        patience = task.patience
        if patience is not None and episode.waits_in_patience < patience.waits:
            return dict(WAIT)
        return dict(SYNTHESIZE)
    free = episode.capacity - episode.active_count
    if free <= 0:
        return dict(WAIT)
    agents = task.agents
    subtasks = task.subtasks
    speeds = episode.agent_speed
    # Longest chain of fastest durations at the agents' current speeds (as _tail_lengths).
    fastest = [
        min((speeds[a] for a, agent in enumerate(agents) if subtask.type in agent.capabilities), default=1)
        * subtask.work
        for subtask in subtasks
    ]
    successors = episode.dag.successors
    tails = [0] * len(status)
    for s in reversed(episode.dag.topological_order):
        tails[s] = fastest[s] + max((tails[j] for j in successors[s]), default=0)
    unbounded = 10**9
    candidates = [s for s, st in enumerate(status) if st == READY or st == FAILED]
    candidates.sort(key=lambda s: (-tails[s], unbounded if subtasks[s].deadline is None else subtasks[s].deadline))
    prior = getattr(episode.compiled.tables, "reliability_prior", None)
    shown = [agent.reliability if prior is None else prior for agent in agents]
    agent_status = episode.agent_status
    now = episode.now
    taken: set[str] = set()
    assignments: list[ActionDict] = []
    for s in candidates:
        if len(assignments) >= free:
            break
        subtask = subtasks[s]
        banned = {f["agent"] for f in episode.failures[s] if f["kind"] == "permanent"}
        for conflict in task.conflicts:
            if subtask.id in conflict.tracks:
                for track in conflict.tracks:
                    other = episode.dag.index[track]
                    if other == s:
                        continue
                    if status[other] == RUNNING:
                        banned.add(agents[episode.agent_of(other)].name)
                    elif status[other] == COMPLETED:
                        banned.add(agents[episode.completed_by[other]].name)
        options = [
            a
            for a, agent in enumerate(agents)
            if agent_status[a] == IDLE
            and agent.name not in taken
            and agent.name not in banned
            and subtask.type in agent.capabilities
        ]
        if not options:
            continue
        deadline = subtask.deadline
        if deadline is not None and deadline - now - tails[s] <= 3:
            options.sort(key=lambda a: (speeds[a], -shown[a], agents[a].cost * speeds[a]))
        else:
            options.sort(key=lambda a: (agents[a].cost * speeds[a] / max(shown[a], 0.05), speeds[a]))
        name = agents[options[0]].name
        taken.add(name)
        assignments.append({"subtask_id": subtask.id, "agent_name": name})
    return _action_of(episode, assignments)


def _action_of(episode: Any, assignments: list[ActionDict]) -> ActionDict:
    """The action that makes these starts, read from the state: a wait for none, a ``retry``
    or ``delegate`` for one (as its subtask failed before or not), else a ``dispatch``."""
    if not assignments:
        return dict(WAIT)
    if len(assignments) == 1:
        only = assignments[0]
        kind = "retry" if episode.status[episode.dag.index[only["subtask_id"]]] == FAILED else "delegate"
        return {"action_type": kind, **only}
    return {"action_type": "dispatch", "assignments": assignments}


def _tail_lengths(observation: Observation) -> dict[str, int]:
    """Longest chain of fastest possible durations from each subtask to the end."""
    subtasks = observation["subtasks"]
    fastest: dict[str, int] = {}
    for subtask in subtasks:
        speeds = [a["speed"] for a in observation["agents"] if subtask["type"] in a["capabilities"]]
        fastest[subtask["id"]] = min(speeds, default=1) * subtask["work"]
    tail = chain_tails(fastest, view_successors(subtasks))
    return {subtask["id"]: tail(subtask["id"]) for subtask in subtasks}


class SlackPolicy(HeuristicPolicy):
    name = "slack"
    _latest: dict[str, float] = {}

    def act(self, observation: Observation) -> ActionDict:
        arena = observation.get("arena")
        if arena is not None:
            if "worker_record" in arena:
                return _arena_workers_by_slack(observation, arena)
            return _arena_by_slack(arena)
        if "generated" in observation:
            return _named_agents_by_slack(observation, observation["generated"])
        return super().act(observation)

    def _order(self, observation: Observation, candidates: list[dict[str, Any]], tails: dict[str, int]) -> None:
        latest = self._latest = _latest_starts(observation)
        candidates.sort(key=lambda s: (-tails[s["id"]], latest[s["id"]], -s["priority"]))

    def _pick(
        self, observation: Observation, subtask: dict[str, Any], options: list[dict[str, Any]], tails: dict[str, int]
    ) -> str:
        latest = self._latest[subtask["id"]]
        now = observation["time_used"]
        work = subtask["work"]

        def expected_time(agent: dict[str, Any]) -> float:
            return float(max(1, agent["speed"] * work)) / max(float(agent["reliability"]), 0.05)

        def expected_cost(agent: dict[str, Any]) -> float:
            return float(agent["cost"]) * expected_time(agent)

        cheapest = min(options, key=lambda a: (expected_cost(a), expected_time(a)))
        if now + expected_time(cheapest) > latest + max(1, cheapest["speed"] * work):
            # The cheapest is expected to finish too late: the expected fastest instead.
            return str(min(options, key=lambda a: (expected_time(a), expected_cost(a)))["name"])
        return str(cheapest["name"])


def _latest_starts(observation: Observation) -> dict[str, float]:
    """Per subtask, the latest time it can start (at the fastest durations) and still let
    itself and every successor meet its deadline, or finish within the time limit."""
    subtasks = observation["subtasks"]
    limit = observation.get("time_limit")
    horizon = float(limit) if limit is not None else float(10**9)
    fastest: dict[str, int] = {}
    for subtask in subtasks:
        speeds = [a["speed"] for a in observation["agents"] if subtask["type"] in a["capabilities"]]
        fastest[subtask["id"]] = max(1, min(speeds, default=1) * subtask["work"])
    successors = view_successors(subtasks)
    by_id = {s["id"]: s for s in subtasks}
    latest: dict[str, float] = {}

    def latest_start(node: str) -> float:
        if node not in latest:
            deadline = by_id[node]["deadline"]
            finish = horizon if deadline is None else min(horizon, float(deadline))
            for succ in successors[node]:
                finish = min(finish, latest_start(succ))
            latest[node] = finish - fastest[node]
        return latest[node]

    for subtask in subtasks:
        latest_start(subtask["id"])
    return latest


def _arena_by_slack(arena: dict[str, Any]) -> ActionDict:
    free = arena["free_workers"]
    views = arena["subtask_views"]
    candidates = [v for v in views if v["status"] in ("ready", "failed")]
    if free <= 0 or not candidates:
        return dict(WAIT)
    tail = chain_tails({v["id"]: v["duration"] for v in views}, view_successors(views))
    time_left = arena["time_left"]
    unbounded = 10**9

    def order(view: dict[str, Any]) -> tuple[bool, int, int, int]:
        late = time_left is not None and view["duration"] > time_left
        slack = view["slack"] if view["slack"] is not None else unbounded
        if time_left is not None:
            # Without a deadline of its own, the time budget's slack along its chain.
            slack = min(slack, time_left - tail(view["id"]))
        return (late, -tail(view["id"]), slack, -view["priority"])

    candidates.sort(key=order)
    return {"action_type": "dispatch", "task_ids": [v["id"] for v in candidates[:free]]}


def _arena_workers_by_slack(observation: Observation, arena: dict[str, Any]) -> ActionDict:
    """The slack policy where arena workers differ (``arena/expert``): startable subtasks by
    least slack (the deadline, or the time budget along the chain, less the earliest finish at
    the fastest speed), then priority; each to a worker chosen by expected time and cost, with
    each worker's reliability estimated from its record (the shown prior counting as a few
    attempts): the cheapest in expected cost unless it is expected to finish after the latest
    finish that keeps the slack, else the fastest in expected time."""
    free = arena["free_workers"]
    views = arena["subtask_views"]
    candidates = [v for v in views if v["status"] in ("ready", "failed")]
    idle = [a for a in observation["agents"] if a["status"] == "idle"]
    if free <= 0 or not candidates or not idle:
        return dict(WAIT)
    now = observation["time_used"]
    fastest = min(a["speed"] for a in observation["agents"])
    latest = {}
    by_id = {v["id"]: v for v in views}
    successors = view_successors(views)
    limit = observation.get("time_limit")
    horizon = float(limit) if limit is not None else float(10**9)

    def latest_finish(node: str) -> float:
        if node not in latest:
            deadline = by_id[node]["deadline"]
            finish = horizon if deadline is None else min(horizon, float(deadline))
            for succ in successors[node]:
                if by_id[succ]["status"] != "completed":
                    finish = min(finish, latest_finish(succ) - fastest * by_id[succ]["duration"])
            latest[node] = finish
        return latest[node]

    record = {w["worker"]: w for w in arena["worker_record"]}
    reliability: dict[str, float] = {}
    for agent in observation["agents"]:
        seen = record.get(agent["name"], {"finished_attempts": 0, "failures": 0})
        reliability[agent["name"]] = _estimate(float(agent["reliability"]), seen["finished_attempts"], seen["failures"])

    def urgency(view: dict[str, Any]) -> tuple[float, int]:
        return (latest_finish(view["id"]) - now - fastest * view["duration"], -view["priority"])

    candidates.sort(key=urgency)
    assignments: list[dict[str, str]] = []
    for view in candidates[:free]:
        if not idle:
            break
        work = view["duration"]
        expected = {
            a["name"]: max(1, a["speed"] * work) / reliability[a["name"]] for a in idle
        }  # expected time to completion, retries included
        cheapest = min(idle, key=lambda a: (float(a["cost"]) * expected[a["name"]], expected[a["name"]], a["name"]))
        choice = cheapest
        if now + expected[cheapest["name"]] > latest_finish(view["id"]):
            choice = min(idle, key=lambda a: (expected[a["name"]], float(a["cost"]) * expected[a["name"]], a["name"]))
        idle.remove(choice)
        assignments.append({"subtask_id": view["id"], "agent_name": choice["name"]})
    return {"action_type": "dispatch", "assignments": assignments}


def _estimated_reliability(agents: list[dict[str, Any]], record: list[dict[str, Any]]) -> dict[str, float]:
    """Per agent, its reliability estimated from its record, the shown (prior) reliability
    counting as four attempts."""
    seen = {w["worker"]: w for w in record}
    estimate: dict[str, float] = {}
    for agent in agents:
        mine = seen.get(agent["name"], {"finished_attempts": 0, "failures": 0})
        estimate[agent["name"]] = _estimate(float(agent["reliability"]), mine["finished_attempts"], mine["failures"])
    return estimate


def _estimate(prior: float, finished: int, failures: int) -> float:
    """An agent's reliability estimated from its record: ``prior`` (the shown reliability)
    counting as :data:`PRIOR_ATTEMPTS` attempts, then its finished attempts and their failures."""
    return max(0.05, (prior * PRIOR_ATTEMPTS + finished - failures) / (PRIOR_ATTEMPTS + finished))


def _named_agents_by_slack(observation: Observation, view: dict[str, Any]) -> ActionDict:
    """The slack policy where named agents' reliabilities are not declared (``generated/expert``):
    startable subtasks by earliest latest start, then priority; each to an idle able agent that no
    announced outage interrupts, chosen by expected cost and time with each agent's reliability
    estimated from its record: the cheapest in expected cost unless it is expected to finish after
    the latest finish that keeps the slack, else the fastest in expected time."""
    if _all_done(observation):
        return dict(SYNTHESIZE)
    free = observation["capacity"] - observation["active_count"]
    candidates = [s for s in observation["subtasks"] if s["status"] in ("ready", "failed")]
    if free <= 0 or not candidates:
        return dict(WAIT)
    now = observation["time_used"]
    latest = _latest_starts(observation)
    reliability = _estimated_reliability(observation["agents"], view["worker_record"])
    outages: dict[str, list[tuple[int, int]]] = {}
    for window in view["agent_outages"]:
        outages.setdefault(window["agent"], []).append((window["from"], window["until"]))
    idle = [a for a in observation["agents"] if a["status"] == "idle"]
    candidates.sort(key=lambda s: (latest[s["id"]], -s["priority"], s["id"]))
    assignments: list[ActionDict] = []
    for subtask in candidates:
        if len(assignments) >= free or not idle:
            break
        banned = {f["agent"] for f in subtask["failures"] if f["kind"] == "permanent"}
        work = subtask["work"]
        options = [
            a
            for a in idle
            if subtask["type"] in a["capabilities"]
            and a["name"] not in banned
            and all(
                now + max(1, a["speed"] * work) < start or now >= until for start, until in outages.get(a["name"], ())
            )
        ]
        if not options:
            continue

        # Expected time to completion, retries included, and its expected cost.
        expected = [(max(1, a["speed"] * work) / reliability[a["name"]], a) for a in options]
        cheapest = min(expected, key=lambda e: (float(e[1]["cost"]) * e[0], e[0], e[1]["name"]))
        fastest = min(expected, key=lambda e: (e[0], float(e[1]["cost"]) * e[0], e[1]["name"]))[1]
        quickest = min(max(1, a["speed"] * work) for a in observation["agents"] if subtask["type"] in a["capabilities"])
        choice = cheapest[1] if now + cheapest[0] <= latest[subtask["id"]] + quickest else fastest
        idle.remove(choice)
        assignments.append({"subtask_id": subtask["id"], "agent_name": choice["name"]})
    if not assignments:
        return dict(WAIT)
    if len(assignments) == 1:
        only = assignments[0]
        status = next(s["status"] for s in candidates if s["id"] == only["subtask_id"])
        return {"action_type": "retry" if status == "failed" else "delegate", **only}
    return {"action_type": "dispatch", "assignments": assignments}


def _estimated_on_state(episode: Any, prior: float) -> list[float]:
    """:func:`_estimated_reliability` from the episode's state: per agent index. The record
    changes only when an attempt ends, as a completion or a failure: kept until then."""
    key = (episode.completed_count, sum(map(len, episode.failures)))
    cached = episode.observed.get("slack_estimates")
    if cached is not None and cached[0] == key:
        estimate: list[float] = cached[1]
        return estimate
    finished, failed = record_counts(episode)
    estimate = [_estimate(float(prior), finished[a], failed[a]) for a in range(len(episode.agents))]
    episode.observed["slack_estimates"] = (key, estimate)
    return estimate


def _static_by_speeds(episode: Any, speeds: list[int], build: Callable[[Any, list[int]], Any]) -> Any:
    """``build(episode, speeds)`` for a task's facts that change only with the agents' speeds,
    computed once per episode and speeds (rollouts ask at every step)."""
    key = (build, *speeds)
    cache: dict[tuple[Any, ...], Any] = episode.observed.setdefault("slack_static", {})
    value = cache.get(key)
    if value is None:
        value = cache[key] = build(episode, speeds)
    return value


def _arena_latest_finishes(episode: Any, speeds: list[int]) -> list[float]:
    """Per subtask, the latest finish that lets every successor meet its deadline and the
    time budget at the fastest speed (:func:`_arena_workers_by_slack`'s, before any completes)."""
    tables = episode.compiled.tables
    fastest = min(speeds)
    durations = tables.durations
    deadlines = tables.deadlines
    limit = episode.task.time_limit
    horizon = float(limit) if limit is not None else float(10**9)
    successors = episode.dag.successors
    latest: list[float] = [0.0] * len(durations)
    for s in reversed(episode.dag.topological_order):
        deadline = deadlines[s]
        finish = horizon if deadline is None else min(horizon, float(deadline))
        for succ in successors[s]:
            finish = min(finish, latest[succ] - fastest * durations[succ])
        latest[s] = finish
    return latest


def _named_latest_starts(episode: Any, speeds: list[int]) -> tuple[list[int], list[float]]:
    """Per subtask, its fastest duration and :func:`_latest_starts` at these speeds."""
    task = episode.task
    agents = task.agents
    subtasks = task.subtasks
    limit = task.time_limit
    horizon = float(limit) if limit is not None else float(10**9)
    quickest = [
        max(
            1,
            min((speeds[a] for a, agent in enumerate(agents) if subtask.type in agent.capabilities), default=1)
            * subtask.work,
        )
        for subtask in subtasks
    ]
    successors = episode.dag.successors
    latest: list[float] = [0.0] * len(subtasks)
    for s in reversed(episode.dag.topological_order):
        deadline = subtasks[s].deadline
        finish = horizon if deadline is None else min(horizon, float(deadline))
        for succ in successors[s]:
            finish = min(finish, latest[succ])
        latest[s] = finish - quickest[s]
    return quickest, latest


def arena_workers_slack_on_state(episode: Any) -> ActionDict:
    """:class:`SlackPolicy`'s move on an arena whose workers differ (``arena/expert``), read from
    the episode's state instead of its observation (the planner's rollouts call it at every step):
    the same move, field for field (:func:`_arena_workers_by_slack`)."""
    tables = episode.compiled.tables
    now = episode.now
    free = max(0, tables.capacity_at(now) - episode.active_count)
    status = episode.status
    candidates = [s for s, st in enumerate(status) if st == READY or st == FAILED]
    agent_status = episode.agent_status
    idle = [a for a, st in enumerate(agent_status) if st == IDLE]
    if free <= 0 or not candidates or not idle:
        return dict(WAIT)
    agents = episode.agents
    speeds = episode.agent_speed
    fastest = min(speeds)
    durations = tables.durations
    # Latest finishes: a startable subtask's successors are all unfinished, so its latest
    # finish depends on the speeds alone.
    latest = _static_by_speeds(episode, speeds, _arena_latest_finishes)
    prior = tables.reliability_prior
    reliability = (
        _estimated_on_state(episode, prior)
        if prior is not None
        else [
            _estimate(float(agent.reliability), f, x)
            for agent, f, x in zip(agents, *record_counts(episode), strict=True)
        ]
    )
    priorities = tables.priorities
    candidates.sort(key=lambda s: (latest[s] - now - fastest * durations[s], -priorities[s]))
    ids = episode.dag.ids
    assignments: list[dict[str, str]] = []
    for s in candidates[:free]:
        if not idle:
            break
        work = durations[s]
        expected = {a: max(1, speeds[a] * work) / reliability[a] for a in idle}
        cheapest = min(idle, key=lambda a: (float(agents[a].cost) * expected[a], expected[a], agents[a].name))
        choice = cheapest
        if now + expected[cheapest] > latest[s]:
            choice = min(idle, key=lambda a: (expected[a], float(agents[a].cost) * expected[a], agents[a].name))
        idle.remove(choice)
        assignments.append({"subtask_id": ids[s], "agent_name": agents[choice].name})
    return {"action_type": "dispatch", "assignments": assignments}


def named_agents_slack_on_state(episode: Any, prior: float, outages: tuple[dict[str, Any], ...]) -> ActionDict:
    """:class:`SlackPolicy`'s move on a workflow of named agents whose reliabilities are not
    declared (``generated/expert``: ``prior`` shown for every agent, ``outages`` announced),
    read from the episode's state: the same move, field for field (:func:`_named_agents_by_slack`)."""
    status = episode.status
    if episode.completed_count == len(status):
        return dict(SYNTHESIZE)
    free = episode.capacity - episode.active_count
    agent_status = episode.agent_status
    if free <= 0 or IDLE not in agent_status:
        # Nothing can start (with no agent idle, no subtask has an option).
        return dict(WAIT)
    candidates = [s for s, st in enumerate(status) if st == READY or st == FAILED]
    if not candidates:
        return dict(WAIT)
    now = episode.now
    task = episode.task
    agents = task.agents
    subtasks = task.subtasks
    speeds = episode.agent_speed
    quickest, latest = _static_by_speeds(episode, speeds, _named_latest_starts)
    reliability = _estimated_on_state(episode, prior)
    windows: dict[str, list[tuple[int, int]]] = {}
    for window in outages:
        if window["until"] > now:
            windows.setdefault(window["agent"], []).append((window["from"], window["until"]))
    idle = [a for a in range(len(agents)) if agent_status[a] == IDLE]
    candidates.sort(key=lambda s: (latest[s], -subtasks[s].priority, subtasks[s].id))
    assignments: list[ActionDict] = []
    for s in candidates:
        if len(assignments) >= free or not idle:
            break
        subtask = subtasks[s]
        banned = {f["agent"] for f in episode.failures[s] if f["kind"] == "permanent"}
        work = subtask.work
        options = [
            a
            for a in idle
            if subtask.type in agents[a].capabilities
            and agents[a].name not in banned
            and all(
                now + max(1, speeds[a] * work) < start or now >= until
                for start, until in windows.get(agents[a].name, ())
            )
        ]
        if not options:
            continue
        expected = [(max(1, speeds[a] * work) / reliability[a], a) for a in options]
        cheapest = min(expected, key=lambda e: (float(agents[e[1]].cost) * e[0], e[0], agents[e[1]].name))
        fastest = min(expected, key=lambda e: (e[0], float(agents[e[1]].cost) * e[0], agents[e[1]].name))[1]
        choice = cheapest[1] if now + cheapest[0] <= latest[s] + quickest[s] else fastest
        idle.remove(choice)
        assignments.append({"subtask_id": subtask.id, "agent_name": agents[choice].name})
    return _action_of(episode, assignments)


class TemplatePolicy(GreedyPolicy):
    name = "template"

    def act(self, observation: Observation) -> ActionDict:
        template = getattr(family_of_observation(observation), "template", None)
        own = template(observation) if template is not None else None
        return own if own is not None else super().act(observation)


POLICIES: dict[str, Callable[[], Policy]] = {
    "noop": NoopPolicy,
    "random": RandomPolicy,
    "stubborn": StubbornPolicy,
    "greedy": GreedyPolicy,
    "heuristic": HeuristicPolicy,
    "slack": SlackPolicy,
    "template": TemplatePolicy,
}


def make_policy(name: str, seed: int = 0) -> Policy:
    try:
        policy = POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None
    policy.reset(seed)
    return policy
