"""The arena generator: validity over thousands of seeds, determinism, presets, worker counts."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import subprocess
import sys

import pytest

from workflow_orchestrator.server.core import validate_task
from workflow_orchestrator.server.core.model import EventKind, TaskSpec
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import TaskRegistry, default_registry
from workflow_orchestrator.server.tasks.arena import (
    EVALUATION_SEEDS,
    MAX_WORKERS,
    PRESETS,
    TRAINING_SEEDS,
    ArenaFamily,
    expected_outage_loss,
    generate_arena,
)


def _tails(spec: TaskSpec) -> dict[str, int]:
    successors: dict[str, list[str]] = {s.id: [] for s in spec.subtasks}
    for s in spec.subtasks:
        for dep in s.depends_on:
            successors[dep].append(s.id)
    work = {s.id: s.work for s in spec.subtasks}
    tails: dict[str, int] = {}

    def tail(node: str) -> int:
        if node not in tails:
            tails[node] = work[node] + max((tail(n) for n in successors[node]), default=0)
        return tails[node]

    for s in spec.subtasks:
        tail(s.id)
    return tails


def _capacity(spec: TaskSpec, t: int) -> int:
    value = spec.capacity
    for event in sorted(spec.events, key=lambda e: e.at):
        if event.at <= t:
            value = event.value or 0
    return value


def ideal_finish_times(spec: TaskSpec) -> dict[str, int]:
    """An ideal schedule, simulated here independently of the generator: every
    attempt succeeds; whenever something changes, ready subtasks start by
    longest chain of work ahead, then by name, on the usable workers; running
    work is never interrupted."""
    tails = _tails(spec)
    changes = sorted({e.at for e in spec.events})
    deps = {s.id: set(s.depends_on) for s in spec.subtasks}
    work = {s.id: s.work for s in spec.subtasks}
    finish: dict[str, int] = {}
    running: dict[str, int] = {}
    t = 0
    while len(finish) < len(work):
        for sid, end in list(running.items()):
            if end <= t:
                finish[sid] = end
                del running[sid]
        ready = sorted(
            (sid for sid in work if sid not in finish and sid not in running and deps[sid] <= finish.keys()),
            key=lambda sid: (-tails[sid], sid),
        )
        for sid in ready[: max(0, _capacity(spec, t) - len(running))]:
            running[sid] = t + work[sid]
        upcoming = [end for end in running.values()] + [at for at in changes if at > t]
        assert upcoming or len(finish) == len(work), "the ideal schedule stalled"
        t = min(upcoming, default=t + 1)
    return finish


def _check_instance(spec: TaskSpec, preset_name: str, workers: int) -> None:
    preset = PRESETS[preset_name]
    assert validate_task(spec) == []  # acyclic, every subtask has a capable agent, ...
    lo, hi = preset.subtask_range
    assert lo <= len(spec.subtasks) <= hi
    assert len(spec.agents) == workers == spec.capacity
    for subtask in spec.subtasks:
        assert preset.duration_range[0] <= subtask.work <= preset.duration_range[1]
        assert preset.priority_range[0] <= subtask.priority <= preset.priority_range[1]
        assert any(subtask.type in agent.capabilities for agent in spec.agents)
    for event in spec.events:
        assert event.kind is EventKind.CAPACITY and 1 <= (event.value or 0) <= workers
    finish = ideal_finish_times(dataclasses.replace(spec, events=()))  # no outage
    for subtask in spec.subtasks:
        assert subtask.deadline is not None and finish[subtask.id] <= subtask.deadline, subtask.id
    if spec.time_limit is not None:
        assert max(finish.values()) <= spec.time_limit


@pytest.mark.parametrize("preset_name", sorted(PRESETS))
def test_thousands_of_instances_are_valid_and_their_deadlines_met_by_an_ideal_schedule(preset_name: str) -> None:
    preset = PRESETS[preset_name]
    for seed in range(1000):
        workers = preset.workers if seed % 4 else 1 + seed % MAX_WORKERS
        _check_instance(generate_arena(preset, seed, workers), preset_name, workers)


def test_held_out_seeds_are_valid_too() -> None:
    for seed in EVALUATION_SEEDS[:200]:
        _check_instance(generate_arena(PRESETS["hard"], seed), "hard", PRESETS["hard"].workers)


def test_the_ideal_schedule_meets_every_deadline_when_played_in_the_episode() -> None:
    """The generator's timing model is the episode's: the ideal schedule, played
    as dispatch and wait actions (with retry failures and outages turned off),
    completes every subtask by its deadline."""
    for preset_name in PRESETS:
        for seed in range(25):
            spec = generate_arena(PRESETS[preset_name], seed)
            reliable = tuple(dataclasses.replace(a, reliability=1.0) for a in spec.agents)
            spec = dataclasses.replace(spec, agents=reliable, events=())
            registry = TaskRegistry()
            registry.add_scenario(spec)
            env = WorkflowEnv(registry)
            tails = _tails(spec)
            observation = env.reset(spec.task_id, seed=seed)
            while not observation["done"]:
                arena = observation["arena"]
                ready = sorted(arena["ready"], key=lambda sid: (-tails[sid], sid))[: arena["free_workers"]]
                action = {"action_type": "dispatch", "task_ids": ready} if ready else {"action_type": "wait"}
                observation = env.step(action)
                assert not observation["errors"], observation["errors"]
            assert observation["terminated"]
            metrics = observation["arena"]["success_metrics"]
            assert metrics["deadline_miss_count"] == 0, (preset_name, seed)


def _digest(spec: TaskSpec) -> str:
    return hashlib.sha256(repr(spec).encode()).hexdigest()


def test_generation_is_deterministic_within_and_across_processes() -> None:
    for preset in PRESETS.values():
        assert generate_arena(preset, 42) == generate_arena(preset, 42)
    here = [_digest(generate_arena(PRESETS[name], 42)) for name in sorted(PRESETS)]
    script = (
        "import hashlib\n"
        "from workflow_orchestrator.server.tasks.arena import PRESETS, generate_arena\n"
        "for name in sorted(PRESETS):\n"
        "    print(hashlib.sha256(repr(generate_arena(PRESETS[name], 42)).encode()).hexdigest())\n"
    )
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hash_seed, "PATH": ""},
        ).stdout.split()
        assert out == here


def test_seeds_give_different_workflows() -> None:
    shapes = set()
    for seed in range(60):
        spec = generate_arena(PRESETS["medium"], seed)
        shapes.add(tuple((s.id, s.depends_on, s.work, s.priority) for s in spec.subtasks))
    assert len(shapes) == 60


def test_ids_do_not_follow_the_topological_order() -> None:
    """Names are shuffled: some subtask depends on one with a larger number."""
    backwards = 0
    for seed in range(50):
        spec = generate_arena(PRESETS["hard"], seed)
        backwards += any(dep > s.id for s in spec.subtasks for dep in s.depends_on)
    assert backwards >= 40


def test_one_seed_names_the_same_dag_for_every_worker_count() -> None:
    shapes = set()
    budgets = set()
    for workers in (1, 2, 3, 5, 8, 16):
        spec = generate_arena(PRESETS["hard"], 7, workers)
        assert len(spec.agents) == workers
        shapes.add(tuple((s.id, s.depends_on, s.work, s.priority) for s in spec.subtasks))
        budgets.add(spec.time_limit)
    assert len(shapes) == 1
    assert len(budgets) > 1  # the time budget follows the workers


def test_presets_have_their_stated_dynamics() -> None:
    easy = [generate_arena(PRESETS["easy"], seed) for seed in range(50)]
    assert all(s.time_limit is None and not s.events and s.retry_cap is None for s in easy)
    assert all(a.reliability == 1.0 for s in easy for a in s.agents)
    assert all(s.reward_table == {"unfinished": 0.0} for s in easy)
    medium = [generate_arena(PRESETS["medium"], seed) for seed in range(50)]
    assert all(s.time_limit is not None and not s.events and s.reward_table == {} for s in medium)
    hard = [generate_arena(PRESETS["hard"], seed) for seed in range(50)]
    assert all(s.time_limit is not None and s.retry_cap == PRESETS["hard"].max_retries for s in hard)
    assert all(a.reliability == 1.0 - PRESETS["hard"].failure_rate for s in hard for a in s.agents)
    assert sum(1 for s in hard if s.events) >= 40  # most hard instances have outages
    for spec in easy + medium + hard:
        lower_bound = spec.parameters["lower_bound"]
        assert lower_bound == max(
            spec.parameters["critical_path"], math.ceil(sum(s.work for s in spec.subtasks) / spec.capacity)
        )


def test_time_budget_is_the_multiplier_times_the_lower_bound_or_the_reference_makespan_with_its_allowance() -> None:
    for name in ("medium", "hard"):
        multiplier = PRESETS[name].time_budget_multiplier
        assert multiplier is not None
        for seed in range(100):
            spec = generate_arena(PRESETS[name], seed)
            p = spec.parameters
            stretch = 1 / (1 - expected_outage_loss(PRESETS[name], spec.capacity))
            assert (stretch > 1) == (name == "hard")
            assert spec.time_limit == max(
                math.ceil(multiplier * p["lower_bound"]), math.ceil(p["reference_makespan"] * stretch)
            )


@pytest.mark.parametrize("bad", [0, -1, MAX_WORKERS + 1, True, 2.5, "3"])
def test_worker_count_out_of_bounds_is_a_clear_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="worker_count"):
        generate_arena(PRESETS["easy"], 1, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="worker_count"):
        WorkflowEnv().reset("arena/easy", seed=1, worker_count=bad)  # type: ignore[arg-type]


def test_scenarios_refuse_a_worker_count_and_arena_tasks_accept_one() -> None:
    env = WorkflowEnv()
    with pytest.raises(ValueError, match="worker_count"):
        env.reset("easy", worker_count=3)
    observation = env.reset("arena/medium", seed=3, worker_count=6)
    assert observation["arena"]["total_workers"] == 6
    assert len(observation["agents"]) == 6


def test_tasks_list_the_arena_with_its_presets_and_seed_ranges() -> None:
    registry = default_registry()
    assert {"arena/easy", "arena/medium", "arena/hard"} <= set(registry.task_ids())
    listed = {t["task_id"]: t for t in registry.list_tasks()}
    hard = listed["arena/hard"]["parameters"]
    assert hard["edge_probability"] == PRESETS["hard"].edge_probability
    assert hard["training_seeds"] == [TRAINING_SEEDS.start, TRAINING_SEEDS.stop - 1]
    assert hard["evaluation_seeds"] == [EVALUATION_SEEDS.start, EVALUATION_SEEDS.stop - 1]
    assert TRAINING_SEEDS.stop <= EVALUATION_SEEDS.start  # disjoint
    assert listed["arena/easy"]["time_model"] == "event"


def test_a_family_with_custom_presets_builds_them() -> None:
    tiny = dataclasses.replace(PRESETS["easy"], name="tiny", subtask_range=(3, 3))
    family = ArenaFamily({"tiny": tiny})
    spec = family.build("tiny", 5, 2)
    assert len(spec.subtasks) == 3 and spec.task_id == "arena/tiny" and spec.capacity == 2
