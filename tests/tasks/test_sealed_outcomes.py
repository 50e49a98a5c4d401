"""Sealed outcomes: with an outcome secret, the seed and the package predict no
attempt's outcome beyond the declared reliabilities; without one, they predict
every attempt (the difference is what the seal is for). Same secret and seed:
the same episode in any process. No observation field, no state and no grade
reveals the secret or a hidden fact."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from typing import Any

import pytest

from workflow_orchestrator.server.core.outcomes import episode_key
from workflow_orchestrator.server.core.policies import _tail_lengths, make_policy
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry

# Tasks with seeded outcome rolls (reliability below 1) and, for generated ones, hidden traps and dropouts.
PREDICTED_TASKS = ("medium", "hard", "expert", "arena/hard", "generated/medium", "generated/hard")
SEEDS = range(5000, 5012)
SECRET = "a secret only the evaluator holds"


def _play(env: WorkflowEnv, task_id: str, seed: int, policy_name: str) -> list[dict[str, Any]]:
    policy = make_policy(policy_name, seed)
    observation = env.reset(task_id=task_id, seed=seed)
    while not observation["done"]:
        observation = env.step(policy.act(observation))
    return list(env.episode.log.records)


def _attempts(records: list[dict[str, Any]]) -> list[tuple[str, str, int, int, bool]]:
    """Every attempt that ran to its outcome: (subtask, agent, the pair's attempt
    number, the subtask's failures before it, succeeded)."""
    pair_starts: dict[tuple[str, str], int] = {}
    failures: dict[str, int] = {}
    open_attempts: dict[str, tuple[str, int, int]] = {}
    out = []
    for row in records:
        kind = row["kind"]
        if kind == "delegated":
            pair = (row["subtask"], row["agent"])
            number = pair_starts.get(pair, 0)
            pair_starts[pair] = number + 1
            open_attempts[row["subtask"]] = (row["agent"], number, failures.get(row["subtask"], 0))
        elif kind in ("completed", "failed", "aborted"):
            subtask = row["subtask"]
            agent, number, prior = open_attempts.pop(subtask)
            if kind == "failed":
                failures[subtask] = failures.get(subtask, 0) + 1
            if kind == "completed" or (kind == "failed" and row["cause"] == "outcome"):
                out.append((subtask, agent, number, prior, kind == "completed"))
    return out


class Predictor:
    """Knows the package (the registry, the outcome rule) and what the observation
    says (task id, seed, names, declared reliabilities); not the secret."""

    def __init__(self, task_id: str, seed: int) -> None:
        resolved = default_registry().resolve(task_id, seed=seed)
        self.compiled = resolved.compiled
        self.key = episode_key(task_id, seed)
        spec = resolved.compiled.spec
        self.subtask_index = {s.id: i for i, s in enumerate(spec.subtasks)}
        self.agent_index = {a.name: i for i, a in enumerate(spec.agents)}

    def predict(self, subtask: str, agent: str, number: int, prior: int) -> bool | None:
        """The predicted success, or None when the package does not know this pair."""
        s, a = self.subtask_index.get(subtask), self.agent_index.get(agent)
        if s is None or a is None or (s, a) not in self.compiled.outcomes:
            return None
        outcome = self.compiled.outcomes[(s, a)].decide(self.key, number, prior, self.compiled.spec.retry_cap)
        return outcome is None


def _score_predictions(secret: str | None) -> tuple[int, int, float, float]:
    """(attempts, correct, the reliability-only predictor's expected correct, its variance)."""
    env = WorkflowEnv(outcome_secret=secret)
    total = correct = 0
    baseline = variance = 0.0
    for task_id in PREDICTED_TASKS:
        for seed in SEEDS:
            for policy_name in ("heuristic", "random"):
                records = _play(env, task_id, seed, policy_name)
                predictor = Predictor(task_id, seed)
                reliability = {a["name"]: a["reliability"] for a in env.observation["agents"]}
                for subtask, agent, number, prior, succeeded in _attempts(records):
                    r = reliability[agent]
                    best_guess = max(r, 1.0 - r)  # what the declared reliability alone gets right
                    guess = predictor.predict(subtask, agent, number, prior)
                    if guess is None:
                        guess = r >= 0.5
                    total += 1
                    correct += guess == succeeded
                    baseline += best_guess
                    variance += best_guess * (1.0 - best_guess)
    return total, correct, baseline, variance


def test_the_seed_predicts_every_outcome_unsealed_and_nothing_more_than_the_reliabilities_sealed() -> None:
    total, correct, baseline, _ = _score_predictions(None)
    assert total > 1000
    assert correct == total  # unsealed: the seed and the package tell every outcome
    assert baseline < total - 150  # ...which the reliabilities alone do not
    total, correct, baseline, variance = _score_predictions(SECRET)
    assert total > 1000
    # Sealed: no better than always guessing the likelier outcome by the declared reliability.
    assert correct <= baseline + 4.0 * math.sqrt(variance), (correct, baseline, total)


def test_the_same_secret_and_seed_give_the_same_episode_in_any_process() -> None:
    here = {task_id: _digest(task_id, 5003, SECRET) for task_id in ("hard", "arena/hard", "generated/hard")}
    code = (
        "import json, sys\n"
        "from tests.tasks.test_sealed_outcomes import _digest\n"
        "print(json.dumps({t: _digest(t, 5003, sys.argv[1]) for t in ('hard', 'arena/hard', 'generated/hard')}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, SECRET],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "7"},
    )
    assert json.loads(out.stdout) == here
    assert here == {t: _digest(t, 5003, SECRET.encode()) for t in here}  # str and its UTF-8 bytes: one secret
    assert all(here[t] != _digest(t, 5003, None) for t in here)
    assert all(here[t] != _digest(t, 5003, SECRET + "!") for t in here)


def _digest(task_id: str, seed: int, secret: str | bytes | None) -> str:
    env = WorkflowEnv(outcome_secret=secret)
    _play(env, task_id, seed, "heuristic")
    digest: str = env.episode.log.digest()
    return digest


def test_without_a_secret_the_episode_is_the_unsealed_one() -> None:
    for task_id in ("hard", "arena/hard", "generated/hard"):
        env = WorkflowEnv()
        records = _play(env, task_id, 7, "heuristic")
        assert not env.sealed and not env.episode.sealed
        registry_env = WorkflowEnv(registry=default_registry())
        assert _play(registry_env, task_id, 7, "heuristic") == records


def test_generated_hidden_facts_and_arena_outages_are_drawn_under_the_secret() -> None:
    registry = default_registry()
    moved_traps = moved_outages = 0
    for seed in range(5000, 5020):
        plain = registry.resolve("generated/hard", seed=seed).spec
        sealed = registry.resolve("generated/hard", seed=seed, secret=SECRET.encode()).spec
        traps = {(a.name, kind) for a in plain.agents for kind in a.never_succeeds}
        sealed_traps = {(a.name, kind) for a in sealed.agents for kind in a.never_succeeds}
        moved_traps += traps != sealed_traps or plain.events != sealed.events
        plain_arena = registry.resolve("arena/hard", seed=seed).spec
        sealed_arena = registry.resolve("arena/hard", seed=seed, secret=SECRET.encode()).spec
        moved_outages += plain_arena.events != sealed_arena.events
        # Same secret, same draws.
        assert registry.resolve("arena/hard", seed=seed, secret=SECRET.encode()).spec == sealed_arena
    assert moved_traps >= 15
    assert moved_outages >= 10


def test_the_secret_is_in_no_observation_state_or_grade_and_a_sealed_grade_claims_no_best_score() -> None:
    env = WorkflowEnv(outcome_secret=SECRET)
    for task_id in ("hard", "arena/hard", "generated/hard"):
        policy = make_policy("heuristic")
        observation = env.reset(task_id=task_id, seed=1)
        seen = [json.dumps(observation, default=str)]
        while not observation["done"]:
            observation = env.step(policy.act(observation))
            seen.append(json.dumps(observation, default=str))
        seen.append(json.dumps(env.state(), default=str))
        grade = env.grade()
        seen.append(json.dumps(grade))
        assert not any(SECRET in text or SECRET.encode().hex() in text for text in seen)
        assert grade["best_score"] is None and grade["normalized_score"] is None
        assert grade["best_score_status"] is None and grade["best_score_upper_bound"] is None
    # Unsealed, the shipped best scores still apply.
    plain = WorkflowEnv()
    plain.reset(task_id="hard")
    assert plain.grade()["best_score"] is not None


def test_an_episode_is_sealed_before_its_first_step_only() -> None:
    env = WorkflowEnv()
    env.reset(task_id="easy")
    env.step({"action_type": "wait"})
    with pytest.raises(RuntimeError):
        env.episode.seal(b"late")


@pytest.mark.parametrize("task_id", ["generated/medium", "generated/hard", "hard"])
def test_the_critical_path_comes_from_public_capabilities_only(task_id: str) -> None:
    """A trap is hidden: the critical path must be the one the public capabilities
    imply (traps included), or its value reveals the trap."""
    env = WorkflowEnv()
    for seed in range(5000, 5100) if task_id.startswith("generated") else [None]:
        observation = env.reset(task_id=task_id, seed=seed)
        assert observation["critical_path_length"] == max(_tail_lengths(observation).values()), seed
