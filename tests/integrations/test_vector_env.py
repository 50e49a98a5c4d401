"""WorkflowVectorEnv: a batch plays every episode exactly as it would be played alone."""

from __future__ import annotations

import gc
import random
from typing import Any

import numpy as np
import pytest

from workflow_orchestrator import WorkflowEnv
from workflow_orchestrator import vector as vector_module
from workflow_orchestrator.gym_env import (
    AGENT_FEATURES,
    AGENT_STATUS,
    FEATURE_LIMIT,
    GLOBAL_FEATURES,
    SUBTASK_FEATURES,
    SUBTASK_STATUS,
)
from workflow_orchestrator.server.tasks.registry import UnknownTaskError
from workflow_orchestrator.vector import MAX_EPISODES, VectorStep, WorkflowVectorEnv

MIXED = ["easy", "hard", "arena/hard", "arena/easy", "generated/easy", "generated/hard", "medium", "expert"]

MALFORMED = {"status": "wait"}


def choose(rng: random.Random, observation: dict[str, Any]) -> Any:
    """Mostly a legal action; sometimes an invalid or malformed one, which must be played as alone."""
    roll = rng.random()
    if roll < 0.05:
        return MALFORMED
    if roll < 0.1:
        return {"action_type": "delegate", "subtask_id": "nothing", "agent_name": "nobody"}
    legal = observation["legal_actions"]
    return rng.choice(legal) if legal else {"action_type": "wait"}


def play_alone(task_id: str, seed: int, actions: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    env = WorkflowEnv()
    observations = [env.reset(task_id, seed=seed)]
    observations.extend(env.step(action) for action in actions)
    return observations, env.state()


def twins(tasks: list[str], seed: int, first: str, second: str) -> tuple[WorkflowVectorEnv, WorkflowVectorEnv]:
    """Two batches of the same tasks in the observation forms ``first`` and ``second``, reset to ``seed``."""
    pair = (WorkflowVectorEnv(tasks, observation=first), WorkflowVectorEnv(tasks, observation=second))
    for vec in pair:
        vec.reset(seed=seed)
    return pair


def test_a_batch_equals_its_episodes_stepped_one_by_one() -> None:
    vec = WorkflowVectorEnv(MIXED)
    first = vec.reset(seed=500)
    assert vec.seeds == [500 + i for i in range(len(MIXED))]
    rng = random.Random(1)
    # Per slot: the episodes played so far, each (seed, observations, actions, state when finished).
    current: list[dict[str, Any]] = [
        {"seed": seed, "observations": [obs], "actions": []}
        for seed, obs in zip(vec.seeds, first.observations, strict=True)
    ]
    finished: list[list[dict[str, Any]]] = [[] for _ in MIXED]
    while min(len(done) for done in finished) < 2:
        actions = [choose(rng, obs) for obs in vec.observations]
        batch = vec.step(actions)
        for i, action in enumerate(actions):
            episode = current[i]
            episode["actions"].append(action)
            if batch.done[i]:
                final = batch.final_observations[i]
                assert final is not None and final["done"]
                assert batch.grades[i] == final["grade"]
                assert batch.rewards[i] == final["reward"]
                assert (batch.terminated[i], batch.truncated[i]) == (final["terminated"], final["truncated"])
                episode["observations"].append(final)
                episode["state"] = vec.last_finished[i].state()
                finished[i].append(episode)
                # The slot's next episode: the slot's seed plus the number of slots.
                assert vec.seeds[i] == episode["seed"] + len(MIXED)
                assert batch.observations[i]["step_count"] == 0
                current[i] = {"seed": vec.seeds[i], "observations": [batch.observations[i]], "actions": []}
            else:
                assert batch.grades[i] is None and batch.final_observations[i] is None
                assert batch.rewards[i] == batch.observations[i]["reward"]
                episode["observations"].append(batch.observations[i])
    for i, task_id in enumerate(MIXED):
        for episode in finished[i]:
            observations, state = play_alone(task_id, episode["seed"], episode["actions"])
            assert observations == episode["observations"]
            assert state["events"] == episode["state"]["events"]
            assert state["rewards"] == episode["state"]["rewards"]
            assert observations[-1]["grade"] == episode["observations"][-1]["grade"]


def test_rows_are_the_columns_by_slot() -> None:
    vec = WorkflowVectorEnv("arena/easy", 3)
    vec.reset(seed=7)
    batch = vec.step([obs["legal_actions"][0] for obs in vec.observations])
    rows = batch.rows()
    assert len(rows) == len(batch) == 3
    for i, row in enumerate(rows):
        assert row["observation"] is batch.observations[i]
        assert row["reward"] == batch.rewards[i]
        assert row["done"] is False and row["grade"] is None and row["final_observation"] is None


def test_without_autoreset_a_finished_slot_answers_as_alone() -> None:
    vec = WorkflowVectorEnv(["easy", "arena/easy"], autoreset=False)
    vec.reset(seed=3)
    while not all(obs["done"] for obs in vec.observations):
        vec.step([(obs["legal_actions"] or [{"action_type": "wait"}])[0] for obs in vec.observations])
    before = [env.state()["events"] for env in vec.envs]
    batch = vec.step([{"action_type": "wait"}] * 2)
    assert [obs["errors"][0]["code"] for obs in batch.observations] == ["episode_over", "episode_over"]
    assert batch.final_observations == [None, None]
    assert [env.state()["events"] for env in vec.envs] == before


def snapshot(vec: WorkflowVectorEnv) -> list[Any]:
    return [(env.state(), seed) for env, seed in zip(vec.envs, vec.seeds, strict=True)]


@pytest.mark.parametrize(
    "actions, message",
    [
        ({"action_type": "wait"}, "one action per episode"),
        ("wait", "one action per episode"),
        (None, "one action per episode"),
        (7, "one action per episode"),
        ([], "expected 4 actions"),
        ([{"action_type": "wait"}] * 3, "expected 4 actions"),
        ([{"action_type": "wait"}] * 5, "expected 4 actions"),
        ([{"action_type": "wait"}] * (MAX_EPISODES + 1), "expected 4 actions"),
    ],
)
def test_a_malformed_batch_is_refused_and_changes_nothing(actions: Any, message: str) -> None:
    vec = WorkflowVectorEnv(["easy", "arena/hard", "generated/medium", "hard"])
    vec.reset(seed=11)
    vec.step([vec.observations[i]["legal_actions"][0] for i in range(4)])
    before = snapshot(vec)
    with pytest.raises(ValueError, match=message):
        vec.step(actions)
    assert snapshot(vec) == before


@pytest.mark.parametrize("seed", [[1, 2], [1, 2, 3, 4, 5], [-1, 0, 0, 0], [0, 0, 0, 2**31], "7", 1.5, [0, 0, "0", 0]])
def test_malformed_seeds_are_refused_and_change_nothing(seed: Any) -> None:
    vec = WorkflowVectorEnv("generated/easy", 4)
    vec.reset(seed=3)
    before = snapshot(vec)
    with pytest.raises(ValueError, match="seed"):
        vec.reset(seed=seed)
    assert snapshot(vec) == before


def test_batch_sizes_and_tasks_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="1 to 256 episodes"):
        WorkflowVectorEnv("easy", MAX_EPISODES + 1)
    with pytest.raises(ValueError, match="1 to 256 episodes"):
        WorkflowVectorEnv([])
    with pytest.raises(ValueError, match="1 to 256 episodes"):
        WorkflowVectorEnv("easy", 0)
    with pytest.raises(ValueError, match="num_envs is 3"):
        WorkflowVectorEnv(["easy", "hard"], 3)
    with pytest.raises(ValueError, match="worker_count"):
        WorkflowVectorEnv(["easy", "hard"], worker_count=[None])
    with pytest.raises(ValueError, match="worker_count applies to generated tasks"):
        WorkflowVectorEnv(["arena/easy", "easy"], worker_count=4)
    with pytest.raises(UnknownTaskError):
        WorkflowVectorEnv(["easy", "arena/impossible"])
    vec = WorkflowVectorEnv("easy", MAX_EPISODES)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step([{"action_type": "wait"}] * MAX_EPISODES)
    assert len(vec.reset(seed=0)) == MAX_EPISODES
    assert len(vec.step([{"action_type": "wait"}] * MAX_EPISODES)) == MAX_EPISODES
    vec = WorkflowVectorEnv("arena/hard", 3, worker_count=[5, None, 2])
    assert [len(obs["agents"]) for obs in vec.reset(seed=0).observations] == [5, 3, 2]


def test_the_reward_mode_applies_to_every_slot_and_every_next_episode() -> None:
    vec = WorkflowVectorEnv(["easy", "arena/easy"], reward_mode="grade")
    batch = vec.reset(seed=5000)
    totals = [0.0, 0.0]
    finished: list[float | None] = [None, None]
    rng = random.Random(0)
    for _ in range(400):
        actions = [
            rng.choice(o["legal_actions"]) if o["legal_actions"] else {"action_type": "wait"}
            for o in batch.observations
        ]
        batch = vec.step(actions)
        for i in range(2):
            totals[i] += batch.rewards[i]
            if batch.grades[i] is not None and finished[i] is None:
                finished[i] = totals[i] - batch.grades[i]["score"]
    assert finished[0] is not None and abs(finished[0]) <= 1e-9
    assert finished[1] is not None and abs(finished[1]) <= 1e-9
    with pytest.raises(ValueError, match="reward_mode"):
        WorkflowVectorEnv("easy", reward_mode="dense")


def reference_encode(self: Any, observation: dict[str, Any]) -> np.ndarray:
    """The encoding one value at a time, as the Gymnasium env first computed it (the reference)."""
    layout = self.layout
    scale = self.scale
    row = [0.0] * layout.observation_size
    now = observation["time_used"]
    capacity = observation["capacity"]
    active = observation["active_count"]
    arena = observation.get("arena")
    row[0] = now / scale
    remaining = observation["time_remaining"]
    row[1] = remaining / scale if remaining is not None else 1.0
    row[2] = 1.0 if observation["time_limit"] is not None else 0.0
    row[3] = observation["step_count"] / self.step_limit if self.step_limit else 0.0
    if arena is not None:
        total = max(1, arena["total_workers"])
        row[4] = arena["free_workers"] / total
        row[12] = arena["effective_workers"] / total
    else:
        row[4] = max(0, capacity - active) / max(1, capacity)
        row[12] = 1.0
    row[5] = active / max(1, capacity)
    if self.budget:
        row[6] = observation["budget_used"] / self.budget
        row[7] = 1.0
    count = observation["subtask_count"]
    row[8] = observation["completed_count"] / max(1, count)
    row[9] = observation["critical_path_length"] / scale
    row[10] = 1.0 if observation["completed_count"] == count else 0.0
    if self.patience_waits:
        row[11] = max(0, self.patience_waits - observation["patience_waits"]) / self.patience_waits
    # Subtasks.
    type_slot = self.type_slot
    width = self.subtask_width
    arena_views = arena["subtask_views"] if arena is not None else None
    for i, s in enumerate(observation["subtasks"]):
        at = GLOBAL_FEATURES + i * width
        row[at] = 1.0
        row[at + 1 + SUBTASK_STATUS.index(s["status"])] = 1.0
        row[at + 6] = self.duration[i] / scale
        row[at + 7] = s["priority"] / 5.0
        deadline = s["deadline"]
        if deadline is not None:
            row[at + 8] = 1.0
            row[at + 9] = (deadline - now) / scale
            if arena_views is not None:
                slack = arena_views[i]["slack"]
            else:
                slack = deadline - now - self.tail[i]
            row[at + 10] = slack / scale
        if s["time_left"] is not None:
            row[at + 11] = s["time_left"] / scale
        row[at + 12] = min(s["attempts"], 4) / 4.0
        failures = s["failures"]
        if failures:
            row[at + 13] = min(len(failures), 4) / 4.0
            row[at + 14] = 1.0 if failures[-1]["kind"] == "permanent" else 0.0
        row[at + 15] = self.tail[i] / scale
        row[at + 16] = self.downstream[i] / layout.max_subtasks
        slot = type_slot.get(s["type"])
        if slot is not None:
            row[at + SUBTASK_FEATURES + slot] = 1.0
    # Agents.
    width = self.agent_width
    for j, a in enumerate(observation["agents"]):
        at = self.agents_at + j * width
        row[at] = 1.0
        row[at + 1 + AGENT_STATUS.index(a["status"])] = 1.0
        row[at + 4] = a["speed"] / 4.0
        row[at + 5] = a["cost"] / 5.0
        row[at + 6] = a["reliability"]
        if a["time_left"] is not None:
            row[at + 7] = a["time_left"] / scale
        for capability in a["capabilities"]:
            slot = type_slot.get(capability)
            if slot is not None:
                row[at + AGENT_FEATURES + slot] = 1.0
    # Permanent failures by (subtask, agent).
    if not layout.arena:
        agent_slot = self.agent_slot
        for i, s in enumerate(observation["subtasks"]):
            for failure in s["failures"]:
                if failure["kind"] == "permanent":
                    failed_on = agent_slot.get(failure["agent"])
                    if failed_on is not None:
                        row[self.pairs_at + i * layout.max_agents + failed_on] = 1.0
    vector = np.asarray(row, dtype=np.float32)
    np.clip(vector, -FEATURE_LIMIT, FEATURE_LIMIT, out=vector)
    return vector


def play_forms(tasks: list[str], steps: int, seed: int) -> dict[str, list[Any]]:
    """The same batch in every observation form, driven by the full form's observations."""
    vecs = {form: WorkflowVectorEnv(tasks, observation=form) for form in ("full", "none", "encoded")}
    results = {form: [vec.reset(seed=seed)] for form, vec in vecs.items()}
    rng = random.Random(seed)
    for _ in range(steps):
        actions = [choose(rng, obs) for obs in vecs["full"].observations]
        for form, vec in vecs.items():
            results[form].append(vec.step(actions))
        # A lean slot builds, when read, the observation the full form gave.
        assert vecs["none"].observations == vecs["full"].observations
        assert [vecs["encoded"].observation(i) for i in range(len(tasks))] == vecs["full"].observations
    for form in ("none", "encoded"):
        for env, alone in zip(vecs[form].envs, vecs["full"].envs, strict=True):
            assert env.state() == alone.state()
    return results


@pytest.mark.parametrize(
    "tasks",
    [
        ["arena/hard", "arena/easy", "arena/medium", "arena/hard"],
        ["easy", "hard", "medium", "expert"],
        ["generated/easy", "generated/hard", "generated/medium"],
    ],
)
def test_every_observation_form_moves_the_episodes_alike(tasks: list[str]) -> None:
    from workflow_orchestrator.gym_env import _Encoder, family_layout

    results = play_forms(tasks, 120, seed=900)
    layout = family_layout(tasks[0], WorkflowEnv().registry)
    encoders: list[Any] = [None] * len(tasks)
    for k, full in enumerate(results["full"]):
        lean, encoded = results["none"][k], results["encoded"][k]
        for result in (lean, encoded):
            assert result.rewards == full.rewards
            assert (result.terminated, result.truncated, result.grades) == (
                full.terminated,
                full.truncated,
                full.grades,
            )
            assert result.observations == [None] * len(tasks)
        assert lean.encoded is None and full.encoded is None
        assert encoded.encoded.shape == (len(tasks), layout.observation_size)
        for i in range(len(tasks)):
            first = full.observations[i]["step_count"] == 0
            if first:
                encoders[i] = _Encoder(layout, full.observations[i])
            expected = reference_encode(encoders[i], full.observations[i])
            assert encoded.encoded[i].tolist() == expected.tolist()
            # The mask marks exactly the legal actions.
            marked = {int(j) for j in encoded.action_masks[i].nonzero()[0]}
            assert marked == {encoders[i].index(a) for a in full.observations[i]["legal_actions"]}
            assert len(marked) == len(full.observations[i]["legal_actions"])


def test_the_encoded_form_needs_one_family() -> None:
    with pytest.raises(ValueError, match="one family"):
        WorkflowVectorEnv(["arena/easy", "easy"], observation="encoded")
    with pytest.raises(ValueError, match="observation must be one of"):
        WorkflowVectorEnv("easy", observation="dict")


def test_batches_hold_the_collector_off_and_give_it_back(monkeypatch: pytest.MonkeyPatch) -> None:

    seen: list[bool] = []
    step_slots = vector_module.step_slots

    def watched(*args: Any) -> int:
        seen.append(gc.isenabled())
        return step_slots(*args)

    monkeypatch.setattr(vector_module, "step_slots", watched)
    vec = WorkflowVectorEnv("hard", 4, observation="none")
    vec.reset(0)
    assert gc.isenabled()
    vec.step([{"action_type": "wait"}] * 4)
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        vec.step([{"action_type": "wait"}] * 4)
        assert not gc.isenabled()  # a batch does not turn on a collector that was off
    finally:
        gc.enable()
    with pytest.raises(ValueError):
        vec.step([{"action_type": "wait"}] * 3)
    assert gc.isenabled()


def _generation_of(item: object) -> int | None:
    """The collector's generation that holds ``item`` (None: not tracked)."""
    for generation in range(3):
        if any(other is item for other in gc.get_objects(generation)):
            return generation
    return None


def test_a_large_batch_reset_collects_its_young_objects_at_once() -> None:
    size = vector_module.COLLECT_AFTER_RESET
    vec = WorkflowVectorEnv("hard", size, observation="none")
    gc.collect()
    vec.reset(0)
    # Walked while the reset had just made them, its episodes are already in the oldest
    # generation: no young or middle collection walks them again, cold, during the steps.
    assert {_generation_of(env.episode) for env in vec.envs} == {2}
    assert gc.isenabled()
    gc.disable()
    try:
        vec.reset(1)
        # A collector that was off is left off, and runs for nothing.
        assert not gc.isenabled()
        assert {_generation_of(env.episode) for env in vec.envs} == {0}
    finally:
        gc.enable()
    # A small reset makes too few objects to matter: the collector keeps its own schedule.
    small = WorkflowVectorEnv("hard", 4, observation="none")
    gc.collect()
    small.reset(0)
    assert {_generation_of(env.episode) for env in small.envs} == {0}


@pytest.mark.parametrize(
    "tasks",
    [
        ["arena/hard", "arena/easy", "hard", "easy"],
        ["generated/hard", "medium", "expert", "arena/medium"],
    ],
)
def test_lean_observations_read_now_and_then_are_the_full_ones(tasks: list[str]) -> None:
    """The none form starts episodes (at reset and autoreset) without building their first
    observation: read before any step, or only after several unread steps and autoresets, a
    slot's observation is still the one the full form gave."""
    full, lean = twins(tasks, 300, "full", "none")
    assert lean.observations == full.observations
    full.reset(seed=310)
    lean.reset(seed=310)
    rng = random.Random(310)
    restarts = 0
    for k in range(160):
        actions = [choose(rng, obs) for obs in full.observations]
        expected, result = full.step(actions), lean.step(actions)
        assert (result.rewards, result.terminated, result.truncated, result.grades) == (
            expected.rewards,
            expected.terminated,
            expected.truncated,
            expected.grades,
        )
        restarts += sum(expected.done)
        if k % 7 == 6:
            assert lean.observations == full.observations
    assert restarts >= len(tasks)
    for env, alone in zip(lean.envs, full.envs, strict=True):
        assert env.state() == alone.state()
    for finished, alone in zip(lean.last_finished, full.last_finished, strict=True):
        if alone is not None:
            assert finished.observation == alone.observation
            assert finished.state() == alone.state()


def test_start_is_reset_with_the_observation_built_when_read() -> None:
    started, reset = WorkflowEnv(), WorkflowEnv()
    episode = started.start("arena/hard", seed=4)
    first = reset.reset("arena/hard", seed=4)
    assert episode is started.episode and episode.step_count == 0
    assert started.observation == first
    started.start("hard", seed=2)
    reset.reset("hard", seed=2)
    for _ in range(5):
        action = reset.observation["legal_actions"][0]
        started.advance(action)
        reset.step(action)
    assert started.observation == reset.observation
    assert started.state() == reset.state()


def test_advance_before_any_episode_raises_as_step_does() -> None:
    env = WorkflowEnv()
    for move in (env.step, env.advance):
        with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
            move({"action_type": "wait"})
    assert env.episode is None


def shown_error_codes(full: VectorStep) -> list[list[str]]:
    """Per slot, the error codes a full-form step's observations show (the finished episode's, after an autoreset)."""
    return [
        [error["code"] for error in (final or observation)["errors"]]
        for observation, final in zip(full.observations, full.final_observations, strict=True)
    ]


def test_every_form_reports_each_slot_s_error_codes() -> None:
    """``errors``: per slot, the codes of its action's errors at this step (the observation's
    ``errors``), in every form; empty at a reset and for an accepted action."""
    tasks = ["hard", "easy", "medium", "expert"]
    vecs = {form: WorkflowVectorEnv(tasks, observation=form) for form in ("full", "none", "encoded")}
    for vec in vecs.values():
        assert vec.reset(seed=5).errors == [[], [], [], []]
    rng = random.Random(5)
    seen = 0
    for _ in range(60):
        actions = [choose(rng, obs) for obs in vecs["full"].observations]
        results = {form: vec.step(actions) for form, vec in vecs.items()}
        full = results["full"]
        expected = shown_error_codes(full)
        for result in results.values():
            assert result.errors == expected
        seen += sum(1 for codes in expected if codes)
    assert seen >= 5


def test_error_codes_of_canvas_episodes_too() -> None:
    tasks = ["canvas/math", "easy", "canvas/qa"]
    vecs = {form: WorkflowVectorEnv(tasks, observation=form) for form in ("full", "none")}
    for vec in vecs.values():
        vec.reset(seed=3)
    rng = random.Random(3)
    seen = 0
    for _ in range(12):
        actions = [choose(rng, obs) for obs in vecs["full"].observations]
        results = {form: vec.step(actions) for form, vec in vecs.items()}
        full = results["full"]
        expected = shown_error_codes(full)
        assert results["none"].errors == full.errors == expected
        seen += sum(1 for codes in expected[::2] if codes)
    assert seen >= 1


@pytest.mark.parametrize("form", ["full", "none", "encoded"])
def test_a_step_run_in_pieces_equals_the_step_run_at_once(form: str) -> None:
    """begin_step's runs may be cut anywhere (here after every slot, the budget being nothing): the
    result, the episodes and what is read afterwards are the step's, through autoresets."""
    tasks = ["arena/hard", "arena/easy", "arena/medium"] if form == "encoded" else MIXED
    whole, pieces = twins(tasks, 720, form, form)
    rng = random.Random(720)
    restarts = 0
    for _ in range(90):
        actions = [choose(rng, obs) for obs in whole.observations]
        expected = whole.step(actions)
        pending = pieces.begin_step(actions)
        runs = 1
        while not pending.run(0.0):
            runs += 1
            with pytest.raises(RuntimeError, match="not run to its end"):
                pending.result()
        assert runs == len(tasks)  # one slot a run
        result = pending.result()
        for column in ("observations", "rewards", "terminated", "truncated", "grades", "errors"):
            assert getattr(result, column) == getattr(expected, column), column
        if form == "encoded":
            assert np.array_equal(result.encoded, expected.encoded)
            assert np.array_equal(result.action_masks, expected.action_masks)
        restarts += sum(expected.done)
    assert restarts >= len(tasks)
    assert pieces.observations == whole.observations
    assert [env.state() for env in pieces.envs] == [env.state() for env in whole.envs]


def test_a_step_checks_its_batch_before_it_begins() -> None:
    vec = WorkflowVectorEnv("hard", 3)
    with pytest.raises(RuntimeError, match="reset"):
        vec.begin_step([{"action_type": "wait"}] * 3)
    vec.reset(seed=1)
    before = [env.state() for env in vec.envs]
    with pytest.raises(ValueError, match="expected 3 actions"):
        vec.begin_step([{"action_type": "wait"}] * 2)
    assert [env.state() for env in vec.envs] == before
    pending = vec.begin_step([{"action_type": "wait"}] * 3)
    assert [env.state() for env in vec.envs] == before  # nothing moves before it runs
    assert pending.run() and pending.done
    assert [env.state()["step_count"] for env in vec.envs] == [1, 1, 1]
    assert len(pending.result()) == 3


def test_a_finished_step_runs_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    """run() on a step already run to its end answers True at once, without stepping anything or
    pausing the collector again (the server finishes a step that fit in its loop budget this way)."""
    vec = WorkflowVectorEnv("hard", 3)
    vec.reset(seed=1)
    pending = vec.begin_step([{"action_type": "wait"}] * 3)
    assert pending.run()

    def no_more(*args: Any) -> int:
        raise AssertionError("a finished step ran its loop again")

    monkeypatch.setattr(vec, "_run_full", no_more)
    monkeypatch.setattr(gc, "disable", no_more)
    assert pending.run() and pending.run(0.0)
    assert [env.state()["step_count"] for env in vec.envs] == [1, 1, 1]


def test_an_episode_keeps_its_state_in_slots() -> None:
    """The episodes of a batch are many: each keeps its attributes in fixed slots, without a
    dictionary of its own (more than 30 attributes would give every instance one; README, Speed)."""
    env = WorkflowVectorEnv("hard", 2, observation="none")
    env.reset(0)
    env.step([{"action_type": "wait"}] * 2)
    for slot in env.envs:
        episode = slot.episode
        assert not hasattr(episode, "__dict__")
        with pytest.raises(AttributeError):
            episode.not_an_attribute = 1
