"""A planner without foresight: sampled lookahead over the public model of a task.

The planner plays from observations only. What it knows besides them is
what any player knows: the task's id, seed and worker count, and the public
model of the task (the registry's generator, the declared reliabilities).
It never sees the episode it plays, its outcome key or its secret.

At each decision it evaluates a few candidate actions (the built-in
policies' moves, a wait, a couple of other legal actions) on ``samples``
sampled futures and plays the base policy's move unless another candidate
is clearly better:

* the base policy is the built-in heuristic, or the slack policy on the
  presets whose reliabilities are hidden (``arena/expert``,
  ``generated/expert``), where it is the stronger built-in policy; it is
  the first candidate of every decision and the rollouts' continuation;
* a sampled future is the task with its hidden facts drawn afresh: the
  task's generator run under a secret of the planner's own
  (:meth:`TaskRegistry.resolve` with ``secret=``) gives the hidden facts
  (arena outages, generated traps and dropouts; a hand-written scenario has
  none beyond its public file), which replace the played task's; everything
  the observation shows (subtasks, deadlines, agents, limits) is the played
  task's; every attempt's outcome is drawn under the same secret from the
  declared reliabilities;
* where reliabilities are hidden, the task states the range each is drawn
  from uniformly (``parameters["reliability_range"]``); at each decision a
  sample draws every worker's reliability from its posterior given the
  record the observation shows (successes and the failures the outcome
  decided), so the futures are those the evidence allows: a worker that
  failed often is likely poor in them too;
* the sample is brought to the present by replaying the planner's own
  actions, each finished attempt forced to the outcome the observation
  showed (its failures, its completion); attempts still running and
  everything later are the sample's;
* then the candidate, then the base policy to the end of the episode, and
  the sample's grade. Where the family can read the base policy's move
  from the episode's state (``heuristic_on_episode``,
  ``slack_on_episode``), the rollout builds no observation; the moves are
  the same;
* a candidate replaces the base move only when its mean advantage over the
  same samples is above the margin and above twice its standard error:
  among several candidates judged on a few noisy samples, the best-looking
  one is usually lucky.

The same samples serve every candidate of a decision (common random
numbers), so candidates are compared on equal futures. A decision with one
candidate costs nothing. The cost of a decision is samples x candidates x the
episode's length in steps; an arena/hard seed takes about a second, an
expert preset's seed about a minute.

This is hindsight optimisation's cheaper cousin (a rollout of a base policy
instead of the oracle on each sample): it knows what a player can know and
plans over it, so its score is a reference that a policy can reach, unlike
the oracle's clairvoyant ``hindsight_best``.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import random
import time
from collections.abc import Mapping
from typing import Any

from ..core.compiled import CompiledTask
from ..core.families import build_observation, compile_task, new_episode
from ..core.model import TaskSpec
from ..core.outcomes import PairOutcomes
from ..core.policies import GreedyPolicy, HeuristicPolicy, Policy, SlackPolicy
from .registry import TaskRegistry, default_registry

WAIT: dict[str, Any] = {"action_type": "wait"}

DEFAULT_SAMPLES = 6
# A candidate replaces the heuristic's move only when its mean grade is higher by more than this.
DEFAULT_MARGIN = 0.01
# Candidates drawn from the legal actions, besides the built-in policies' moves and a wait.
EXTRA_CANDIDATES = 2
# A rollout never runs longer than this many steps (every task has a limit well below).
MAX_ROLLOUT_STEPS = 5000

# Not forced: a failure caused by an event (a dropout), which the sample's own events decide.
_FREE = "free"


class _Forced:
    """A pair's outcomes in a sample: a subtask's attempts that finished in the real
    episode end as they did there (by the subtask's attempt number, whichever agent
    the sample gave it), later ones as the sample decides."""

    __slots__ = ("base", "episode", "subtask", "seen")

    def __init__(self, base: PairOutcomes, episode: Any, subtask: int, seen: list[str | None]) -> None:
        self.base: PairOutcomes = base
        self.episode = episode
        self.subtask = subtask
        self.seen: list[str | None] = seen

    def decide(self, seed_key: int, attempt: int, prior_failures: int, retry_cap: int | None) -> str | None:
        # The episode counts this start before deciding it.
        number = self.episode.attempts_of(self.subtask) - 1
        if number < len(self.seen):
            outcome: str | None = self.seen[int(number)]
            if outcome != _FREE:
                return outcome
        return self.base.decide(seed_key, attempt, prior_failures, retry_cap)


def observed_outcomes(observation: Mapping[str, Any]) -> dict[str, list[str | None]]:
    """Per subtask, the outcomes of its finished attempts in order, as the observation
    shows them: a failure's kind (``free`` for one an event caused), ``None`` for the
    completion."""
    seen: dict[str, list[str | None]] = {}
    for subtask in observation["subtasks"]:
        outcomes: list[str | None] = [
            failure["kind"] if failure.get("cause", "outcome") == "outcome" else _FREE
            for failure in subtask["failures"]
        ]
        if subtask["completed_by"]:
            outcomes.append(None)
        if outcomes:
            seen[subtask["id"]] = outcomes
    return seen


# Points of the grid a worker's reliability is drawn from, given its record.
_GRID = 400


class ReliabilityPosterior:
    """Where reliabilities are hidden and the task's public model draws each one uniformly
    from a range (``parameters["reliability_range"]``), a worker's reliability given its
    record: the density r^successes (1 - r)^failures on the range, on a grid of points."""

    def __init__(self, low: float, high: float) -> None:
        self.points = [low + (high - low) * (i + 0.5) / _GRID for i in range(_GRID)]
        self._tables: dict[tuple[int, int], list[float]] = {}

    def _cumulative(self, successes: int, failures: int) -> list[float]:
        table = self._tables.get((successes, failures))
        if table is None:
            logs = [successes * math.log(r) + (failures * math.log(1.0 - r) if failures else 0.0) for r in self.points]
            top = max(logs)
            total = 0.0
            table = []
            for value in logs:
                total += math.exp(value - top)
                table.append(total)
            self._tables[(successes, failures)] = table
        return table

    def draw(self, rng: random.Random, successes: int, failures: int) -> float:
        table = self._cumulative(successes, failures)
        return self.points[min(bisect.bisect_left(table, rng.random() * table[-1]), _GRID - 1)]


def observed_record(observation: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Per agent that finished an attempt, its successes and the failures its own
    unreliability caused (a transient failure the outcome decided), as the observation shows."""
    successes: dict[str, int] = {}
    failures: dict[str, int] = {}
    for subtask in observation["subtasks"]:
        for failure in subtask["failures"]:
            if failure.get("cause", "outcome") == "outcome" and failure["kind"] == "transient":
                failures[failure["agent"]] = failures.get(failure["agent"], 0) + 1
        if subtask["completed_by"]:
            successes[subtask["completed_by"]] = successes.get(subtask["completed_by"], 0) + 1
    return {name: (successes.get(name, 0), failures.get(name, 0)) for name in {*successes, *failures}}


def sampled_task(public: TaskSpec, hidden: TaskSpec) -> TaskSpec:
    """``public`` with the hidden facts of ``hidden`` (another draw of the same task):
    its scheduled events, its agents' traps and their reliabilities (by agent name;
    where reliabilities are not declared, arena/expert, they are hidden facts too)."""
    traps = {agent.name: agent for agent in hidden.agents}
    agents = tuple(
        dataclasses.replace(
            agent,
            reliability=traps[agent.name].reliability if agent.name in traps else agent.reliability,
            never_succeeds=traps[agent.name].never_succeeds if agent.name in traps else frozenset(),
            fails_first=dict(traps[agent.name].fails_first) if agent.name in traps else {},
        )
        for agent in public.agents
    )
    return dataclasses.replace(public, agents=agents, events=hidden.events)


def _key(action: Mapping[str, Any]) -> str:
    return json.dumps(action, sort_keys=True)


class PlannerPolicy(Policy):
    """See the module docstring. ``seed`` seeds the planner's own draws only."""

    name = "planner"

    def __init__(
        self,
        task_id: str,
        seed: int,
        worker_count: int | None = None,
        *,
        samples: int = DEFAULT_SAMPLES,
        registry: TaskRegistry | None = None,
        planner_seed: int = 0,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        self.margin = margin
        self.task_id = task_id
        self.seed = seed
        self.worker_count = worker_count
        self.samples = samples
        self.registry = registry or default_registry()
        self.planner_seed = planner_seed
        # The base policy: the first candidate of every decision, and the rollouts' continuation.
        # The slack policy where the family reads its move from the state (the presets whose
        # reliabilities are hidden, where it is the strongest built-in policy), else the heuristic.
        public = self.registry.resolve(task_id, seed, worker_count).compiled
        self.base_name = (
            "slack" if public.family.slack_on_episode(new_episode(public, seed)) is not None else "heuristic"
        )
        self.base: Policy = SlackPolicy() if self.base_name == "slack" else HeuristicPolicy()
        others: list[Policy] = [HeuristicPolicy()] if self.base_name == "slack" else [SlackPolicy()]
        self.movers: list[Policy] = [self.base, *others, GreedyPolicy()]
        self.history: list[dict[str, Any]] = []
        self.simulated_steps = 0
        rng = random.Random(f"planner/{planner_seed}/{task_id}/{seed}/{worker_count}")
        self._secrets = [rng.getrandbits(128).to_bytes(16, "big") for _ in range(samples)]
        self._compiled: dict[bytes, CompiledTask] = {}
        # Hidden reliabilities with a public range: each sample draws them given the record so far,
        # so that a future is one the evidence allows (a worker that failed often is likely poor).
        hidden_range: Any = public.spec.parameters.get("reliability_range")
        self.posterior = (
            ReliabilityPosterior(float(hidden_range[0]), float(hidden_range[1])) if hidden_range is not None else None
        )

    def _sample(self, secret: bytes) -> CompiledTask:
        """The task of one sampled future: the public task with hidden facts drawn under ``secret``."""
        compiled = self._compiled.get(secret)
        if compiled is None:
            public = self.registry.resolve(self.task_id, self.seed, self.worker_count).compiled
            hidden = self.registry.resolve(self.task_id, self.seed, self.worker_count, secret=secret).compiled
            # A hand-written scenario is one public file: nothing of it is drawn.
            compiled = public if hidden is public else compile_task(sampled_task(public.spec, hidden.spec))
            self._compiled[secret] = compiled
        return compiled

    def reset(self, seed: int = 0) -> None:
        self.history = []

    def act(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        candidates = self.candidates(observation)
        if len(candidates) == 1:
            choice = candidates[0]
        else:
            forced = observed_outcomes(observation)
            grades: list[list[float]] = [[] for _ in candidates]
            for secret in self._secrets:
                drawn = self._drawn_outcomes(secret, observation)
                for index, candidate in enumerate(candidates):
                    grades[index].append(self._rollout(secret, forced, candidate, drawn))
            choice = candidates[self._departure(grades)]
        self.history.append(choice)
        return dict(choice)

    def _departure(self, grades: list[list[float]]) -> int:
        """The candidate to play, given each one's grades on the samples: the base policy's
        move (the first) unless another's advantage on the same samples is larger than the
        margin and than twice its standard error. A departure that only the samples' noise
        favours is not worth taking: among several candidates, the best-looking one is
        usually lucky, and the base policy is a strong move already."""
        best, best_mean = 0, 0.0
        n = len(grades[0])
        for index in range(1, len(grades)):
            advantage = [g - b for g, b in zip(grades[index], grades[0], strict=True)]
            mean = sum(advantage) / n
            if mean <= self.margin or mean <= best_mean:
                continue
            spread = math.sqrt(sum((a - mean) ** 2 for a in advantage) / (n - 1)) if n > 1 else 0.0
            if mean > 2.0 * spread / math.sqrt(n):
                best, best_mean = index, mean
        return best

    def candidates(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The actions worth comparing, distinct, the base policy's first."""
        found: dict[str, dict[str, Any]] = {}
        for mover in self.movers:
            action = mover.act(dict(observation))
            found.setdefault(_key(action), action)
        if not observation.get("done"):
            found.setdefault(_key(WAIT), dict(WAIT))
        legal = [a for a in observation.get("legal_actions", []) if _key(a) not in found]
        if legal:
            rng = random.Random(f"{self.planner_seed}/{observation['step_count']}")
            for action in rng.sample(legal, min(EXTRA_CANDIDATES, len(legal))):
                found.setdefault(_key(action), dict(action))
        return list(found.values())

    def _drawn_outcomes(
        self, secret: bytes, observation: Mapping[str, Any]
    ) -> dict[tuple[int, int], PairOutcomes] | None:
        """The sample of ``secret``'s pair outcomes at this decision with each agent's reliability
        drawn given its record (None where the task declares its reliabilities)."""
        if self.posterior is None:
            return None
        compiled = self._sample(secret)
        record = observed_record(observation)
        rng = random.Random(secret + int(observation["step_count"]).to_bytes(8, "big"))
        drawn = [self.posterior.draw(rng, *record.get(agent.name, (0, 0))) for agent in compiled.spec.agents]
        return {pair: base.with_reliability(drawn[pair[1]]) for pair, base in compiled.outcomes.items()}

    def _rollout(
        self,
        secret: bytes,
        forced: dict[str, list[str | None]],
        first: dict[str, Any],
        drawn: dict[tuple[int, int], PairOutcomes] | None = None,
    ) -> float:
        compiled = self._sample(secret)
        episode = new_episode(compiled, self.seed)
        episode.seal(secret)
        if forced or drawn is not None:
            outcomes = dict(drawn if drawn is not None else episode.outcomes)
            for pair, base in outcomes.items():
                seen = forced.get(compiled.spec.subtasks[pair[0]].id)
                if seen is not None:
                    outcomes[pair] = _Forced(base, episode, pair[0], seen)
            episode.outcomes = outcomes
        steps = 0
        for action in self.history:
            episode.step(action)
            steps += 1
        if not episode.done:
            episode.step(first)
            steps += 1
        family = compiled.family
        on_episode = family.slack_on_episode if self.base_name == "slack" else family.heuristic_on_episode
        shortcut = on_episode(episode) if not episode.done else None
        if shortcut is not None:
            # The family reads the base policy's move from the state: no observation to build.
            while not episode.done and steps < MAX_ROLLOUT_STEPS:
                episode.step(shortcut)
                steps += 1
                if not episode.done:
                    shortcut = on_episode(episode)
        base = self.base
        while not episode.done and steps < MAX_ROLLOUT_STEPS:
            episode.step(base.act(build_observation(episode)))
            steps += 1
        self.simulated_steps += steps
        score: float = compiled.family.grade(episode)["score"]
        return score


def plan_episode(
    task_id: str,
    seed: int,
    worker_count: int | None = None,
    *,
    samples: int = DEFAULT_SAMPLES,
    registry: TaskRegistry | None = None,
    planner_seed: int = 0,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Play one unsealed episode with the planner; its grade, with the actions and
    the steps simulated. ``deadline`` (``time.monotonic()``): raise ``TimeoutError``
    at the first decision after it."""
    registry = registry or default_registry()
    resolved = registry.resolve(task_id, seed, worker_count)
    episode = new_episode(resolved.compiled, resolved.seed)
    planner = PlannerPolicy(task_id, seed, worker_count, samples=samples, registry=registry, planner_seed=planner_seed)
    observation = build_observation(episode)
    while not episode.done:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"the planner ran out of time on {task_id} seed {seed}")
        episode.step(planner.act(observation))
        observation = build_observation(episode)
    grade: dict[str, Any] = resolved.compiled.family.grade(episode)
    return {"grade": grade, "actions": planner.history, "simulated_steps": planner.simulated_steps}
