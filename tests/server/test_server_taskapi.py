"""OpenEnv's task API: splits of (task, seed) pairs, over HTTP and in process."""

from __future__ import annotations

import httpx
import pytest

from workflow_orchestrator.server.environment import EpisodeStore, StoreLimits, WorkflowEnvironment
from workflow_orchestrator.server.taskapi import PREVIEW, TaskCatalogue
from workflow_orchestrator.server.tasks import default_registry
from workflow_orchestrator.server.tasks.arena import EVALUATION_SEEDS

BASE = "/workflow_orchestrator"


def test_the_splits_are_the_training_and_the_held_out_seeds(http: httpx.Client) -> None:
    assert http.get("/list_environments").json() == ["workflow_orchestrator"]
    splits = {split["name"]: split for split in http.get(f"{BASE}/splits").json()}
    assert set(splits) == {"train", "test"}
    assert splits["test"]["first_seed"] == EVALUATION_SEEDS.start
    assert splits["train"]["last_seed"] < splits["test"]["first_seed"]


def test_a_task_of_the_test_split_resets_to_a_held_out_episode(http: httpx.Client) -> None:
    task_ids = default_registry().task_ids()
    count = http.post(f"{BASE}/num_tasks", json={"split": "test"}).json()["num_tasks"]
    assert count == len(task_ids) * len(EVALUATION_SEEDS)
    first = [http.post(f"{BASE}/task", json={"split": "test", "index": i}).json()["task"] for i in range(len(task_ids))]
    assert [task["task_id"] for task in first] == task_ids
    assert {task["seed"] for task in first} == {EVALUATION_SEEDS.start}
    spec = http.post(f"{BASE}/task", json={"split": "test", "index": len(task_ids) + 2}).json()["task"]
    assert (spec["task_id"], spec["seed"]) == (task_ids[2], EVALUATION_SEEDS.start + 1)
    observation = http.post("/reset", json={"task_id": spec["task_id"], "seed": spec["seed"]}).json()["observation"]
    assert (observation["task_id"], observation["seed"]) == (spec["task_id"], spec["seed"])


def test_ranges_and_listings_are_bounded(http: httpx.Client) -> None:
    listing = http.post(f"{BASE}/tasks", json={"split": "train"}).json()
    assert len(listing["tasks"]) == PREVIEW and listing["num_tasks"] > PREVIEW
    window = http.post(f"{BASE}/task_range", json={"split": "train", "start": 5, "stop": 9}).json()["tasks"]
    assert [task["index"] for task in window] == [5, 6, 7, 8]
    too_many = http.post(f"{BASE}/task_range", json={"split": "train", "start": 0, "stop": PREVIEW + 1})
    assert too_many.status_code == 422 and too_many.json()["error"] == "index_out_of_range"


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (f"{BASE}/task", {"split": "validation", "index": 0}, 404, "unknown_split"),
        (f"{BASE}/num_tasks", {"split": "nope"}, 404, "unknown_split"),
        (f"{BASE}/task", {"split": "test", "index": 10**12}, 422, "index_out_of_range"),
        ("/other_env/num_tasks", {"split": "test"}, 404, "unknown_environment"),
    ],
)
def test_bad_task_requests_get_a_clear_4xx(
    http: httpx.Client, path: str, body: dict[str, object], status: int, error: str
) -> None:
    response = http.post(path, json=body)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_the_environment_is_a_task_provider_in_process() -> None:
    registry = default_registry()
    environment = WorkflowEnvironment(EpisodeStore(registry, StoreLimits()))
    assert [split["name"] for split in environment.list_splits()] == ["train", "test"]
    first = {"task_id": registry.task_ids()[0], "seed": 0, "split": "train", "index": 0}
    assert environment.get_task("train", 0) == first
    assert environment.get_task_range("test", 0, 3) == TaskCatalogue(registry).task_range("test", 0, 3)
    with pytest.raises(IndexError):
        environment.get_task("test", environment.num_tasks("test"))
