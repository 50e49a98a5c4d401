"""generated/expert: large workflows of named agents, fast-and-dear against slow-and-cheap,
reliabilities not declared (a prior and a record), agent outages announced ahead, urgent
work off the critical path; and the direction of its targets on a slice of training seeds."""

from __future__ import annotations

import statistics

import httpx

from bench.arena import play_expert
from workflow_orchestrator.server.core import validate_task
from workflow_orchestrator.server.core.families import build_observation, compile_task, new_episode
from workflow_orchestrator.server.core.model import EventKind
from workflow_orchestrator.server.core.policies import HeuristicPolicy
from workflow_orchestrator.server.core.scenario import action_label
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.server.tasks.generated import EXPERT_LEVELS, generate_expert_scenario
from workflow_orchestrator.server.tasks.planner import sampled_task

EXPERT = EXPERT_LEVELS["expert"]
SECRET = b"generated-expert-test-secret-012"
TASK = "generated/expert"


def test_expert_workflows_are_large_valid_deterministic_and_within_their_ranges() -> None:
    for seed in range(10):
        spec = generate_expert_scenario(EXPERT, seed)
        assert validate_task(spec) == []
        assert spec == generate_expert_scenario(EXPERT, seed)
        assert 50 <= len(spec.subtasks) <= 120
        assert spec.family == "generated" and spec.time_model.value == "tick"
        assert spec.budget is not None and spec.time_limit is not None
        fast = [a for a in spec.agents if a.speed == 1]
        cheap = [a for a in spec.agents if a.speed == EXPERT.cheap_speed]
        assert (len(fast), len(cheap)) == (EXPERT.fast_agents, EXPERT.cheap_agents)
        assert min(a.cost for a in fast) > max(a.cost * a.speed for a in cheap) / EXPERT.cheap_speed
        for kind in {s.type for s in spec.subtasks}:
            # Every type has a fast-and-dear and two slow-and-cheap agents to choose between.
            assert sum(kind in a.capabilities for a in fast) >= 1
            assert sum(kind in a.capabilities for a in cheap) >= 2
        lo, hi = EXPERT.reliability_range
        assert all(lo <= a.reliability <= hi and not a.never_succeeds for a in spec.agents)
        urgent = [s for s in spec.subtasks if s.deadline is not None]
        assert len(urgent) == spec.parameters["urgent_subtasks"] >= 1
        assert {s.priority for s in urgent} == {EXPERT.urgent_priority}
        assert all(s.priority < EXPERT.urgent_priority for s in spec.subtasks if s.deadline is None)
        # Urgent work is off the critical path: its longest chain is at most half of it.
        dag = compile_task(spec).dag
        critical = dag.critical_path_length
        for s in urgent:
            i = dag.index[s.id]
            assert 2 * (dag.head_length[i] + dag.tail_length[i] - dag.fastest_duration[i]) <= critical
        offline = [e for e in spec.events if e.kind is EventKind.OFFLINE]
        assert offline and len(offline) == len([e for e in spec.events if e.kind is EventKind.ONLINE])


def test_public_facts_do_not_depend_on_the_secret_and_the_reliabilities_do() -> None:
    plain = generate_expert_scenario(EXPERT, 7)
    sealed = generate_expert_scenario(EXPERT, 7, secret=SECRET)
    assert plain.subtasks == sealed.subtasks
    assert plain.events == sealed.events and plain.events  # announced outages: public, also when sealed
    assert plain.parameters == sealed.parameters
    assert (plain.time_limit, plain.budget, plain.description) == (sealed.time_limit, sealed.budget, sealed.description)
    assert [(a.name, a.speed, a.cost, a.capabilities) for a in plain.agents] == [
        (a.name, a.speed, a.cost, a.capabilities) for a in sealed.agents
    ]
    assert [a.reliability for a in plain.agents] != [a.reliability for a in sealed.agents]


def test_a_sealed_observation_shows_the_prior_and_the_announced_outages_not_the_reliabilities() -> None:
    seed = 2_000_000_001
    first = {}
    for secret in (None, "one secret", "another secret"):
        env = WorkflowEnv(outcome_secret=secret)
        observation = env.reset(TASK, seed=seed)
        spec = default_registry().resolve(TASK, seed).compiled.spec
        assert {a["reliability"] for a in observation["agents"]} == {EXPERT.reliability_prior}
        view = observation["generated"]
        assert view["reliability_prior"] == EXPERT.reliability_prior
        assert [w["failures"] for w in view["worker_record"]] == [0] * len(spec.agents)
        offline = sorted((e.agent, e.at - 1) for e in spec.events if e.kind is EventKind.OFFLINE)
        assert sorted((w["agent"], w["from"]) for w in view["agent_outages"]) == offline
        first[secret] = {k: v for k, v in observation.items() if k not in ("episode_id", "metadata")}
    assert first[None] == first["one secret"] == first["another secret"]


def test_the_hint_ends_with_the_heuristics_move() -> None:
    resolved = default_registry().resolve(TASK, 11)
    episode = new_episode(resolved.compiled, resolved.seed)
    heuristic = HeuristicPolicy()
    for _ in range(30):
        observation = build_observation(episode)
        action = heuristic.act(observation)
        assert observation["hint"].endswith(" Do: " + action_label(action))
        episode.step(action)


def test_the_record_counts_each_agents_finished_attempts_and_failures() -> None:
    resolved = default_registry().resolve(TASK, 3)
    episode = new_episode(resolved.compiled, resolved.seed)
    heuristic = HeuristicPolicy()
    while not episode.done and sum(episode.failure_count) < 3:
        episode.step(heuristic.act(build_observation(episode)))
    record = build_observation(episode)["generated"]["worker_record"]
    assert sum(w["failures"] for w in record) == sum(episode.failure_count) >= 3
    completed = sum(1 for by in episode.completed_by if by >= 0)
    assert sum(w["finished_attempts"] for w in record) == completed + sum(episode.failure_count)


def test_the_planner_samples_reliabilities_instead_of_reading_the_played_ones() -> None:
    public = generate_expert_scenario(EXPERT, 3)
    hidden = generate_expert_scenario(EXPERT, 3, secret=SECRET)
    sampled = sampled_task(public, hidden)
    assert [a.reliability for a in sampled.agents] == [a.reliability for a in hidden.agents]
    assert [a.reliability for a in sampled.agents] != [a.reliability for a in public.agents]
    assert sampled.subtasks == public.subtasks and sampled.events == public.events


def test_targets_point_the_right_way_on_training_seeds() -> None:
    """The full table on 50 held-out seeds: ``python -m bench arena expert``."""
    seeds = range(8)
    mean = {
        policy: statistics.mean(play_expert(TASK, seed, policy) for seed in seeds)
        for policy in ("random", "heuristic", "slack", "hint")
    }
    assert mean["random"] <= 0.35
    assert mean["random"] < min(mean["heuristic"], mean["slack"])
    assert mean["hint"] <= mean["heuristic"]
    assert mean["slack"] - mean["heuristic"] >= 0.1


def test_an_episode_runs_over_http(http: httpx.Client) -> None:
    reply = http.post("/reset", json={"task_id": TASK, "seed": 2_000_000_002}).json()
    observation = reply["observation"]
    episode_id = observation["episode_id"]
    assert {a["reliability"] for a in observation["agents"]} == {EXPERT.reliability_prior}
    assert "worker_record" in observation["generated"]
    heuristic = HeuristicPolicy()
    steps = 0
    done = reply["done"]
    while not done:
        step = http.post("/step", json={"episode_id": episode_id, "action": heuristic.act(observation)})
        assert step.status_code == 200, step.text
        observation, done = step.json()["observation"], step.json()["done"]
        steps += 1
        assert steps < 1000
    grade = http.post("/grader", json={"episode_id": episode_id}).json()
    assert set(grade["breakdown"]) == set(EXPERT.grade_weights) and 0.0 < grade["score"] <= 1.0
