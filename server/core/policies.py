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
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .families import family_of_observation

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
        candidates.sort(key=lambda s: (-tails[s["id"]], s["deadline"] if s["deadline"] is not None else 10**9))
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


def _tail_lengths(observation: Observation) -> dict[str, int]:
    """Longest chain of fastest possible durations from each subtask to the end."""
    subtasks = observation["subtasks"]
    fastest: dict[str, int] = {}
    for subtask in subtasks:
        speeds = [a["speed"] for a in observation["agents"] if subtask["type"] in a["capabilities"]]
        fastest[subtask["id"]] = min(speeds, default=1) * subtask["work"]
    successors: dict[str, list[str]] = {s["id"]: [] for s in subtasks}
    for subtask in subtasks:
        for dep in subtask["depends_on"]:
            successors[dep].append(subtask["id"])
    tails: dict[str, int] = {}

    def tail(node: str) -> int:
        if node not in tails:
            tails[node] = fastest[node] + max((tail(n) for n in successors[node]), default=0)
        return tails[node]

    for subtask in subtasks:
        tail(subtask["id"])
    return tails


POLICIES: dict[str, Callable[[], Policy]] = {
    "noop": NoopPolicy,
    "random": RandomPolicy,
    "stubborn": StubbornPolicy,
    "greedy": GreedyPolicy,
    "heuristic": HeuristicPolicy,
}


def make_policy(name: str, seed: int = 0) -> Policy:
    try:
        policy = POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None
    policy.reset(seed)
    return policy
