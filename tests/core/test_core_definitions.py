"""Workflow definitions: scenario files, schema errors, DAG validation and analysis."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tasks import SCENARIOS, tiny_task
from workflow_orchestrator.server.core import AgentSpec, DagIndex, SubtaskSpec, WorkflowDefinitionError, validate_task
from workflow_orchestrator.server.tasks import default_registry, load_scenario_file
from workflow_orchestrator.server.tasks.registry import SCENARIO_DIR, UnknownTaskError

EXPECTED_SHAPE = {  # subtasks, agents, time limit, capacity, budget
    "easy": (6, 4, 15, 4, None),
    "medium": (9, 5, 16, 3, 35.0),
    "hard": (10, 7, 22, 3, 40.0),
    "expert": (14, 8, 25, 3, 55.0),
}


@pytest.mark.parametrize("task_id", SCENARIOS)
def test_scenario_files_load_with_their_facts(task_id: str) -> None:
    spec = default_registry().resolve(task_id).spec
    shape = (len(spec.subtasks), len(spec.agents), spec.time_limit, spec.capacity, spec.budget)
    assert shape == EXPECTED_SHAPE[task_id]
    assert abs(sum(spec.grade_weights.values()) - 1.0) < 1e-9


def test_scenario_corrections_are_in_the_data() -> None:
    registry = default_registry()
    medium = registry.resolve("medium").spec
    scanner = next(a for a in medium.agents if a.name == "security_scanner")
    assert scanner.fails_first == {"security_scan": 1}
    hard = registry.resolve("hard").spec
    alpha = next(a for a in hard.agents if a.name == "investigator_alpha")
    assert alpha.never_succeeds == frozenset({"enrich_logs"})
    assert [(e.at, e.kind.value, e.agent) for e in hard.events] == [(12, "offline", "deployer")]
    expert = registry.resolve("expert").spec
    traps = {a.name: set(a.never_succeeds) for a in expert.agents if a.never_succeeds}
    assert traps == {"wellness_monitor": {"health_alert"}, "executive_assistant": {"conflict_resolution"}}
    deadlines = {s.id: s.deadline for s in expert.subtasks if s.deadline}
    assert deadlines == {"plan_day_schedule": 8, "resolve_priority_conflict": 16, "synthesize_day_report": 23}


def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(UnknownTaskError) as info:
        default_registry().resolve("nope")
    assert "easy" in str(info.value) and "nope" in str(info.value)


def test_bad_seed_and_worker_count_are_value_errors() -> None:
    with pytest.raises(ValueError, match="seed"):
        default_registry().resolve("easy", seed=-1)
    with pytest.raises(ValueError, match="worker_count"):
        default_registry().resolve("easy", worker_count=3)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    return path


def test_malformed_scenario_names_file_field_and_problem(tmp_path: Path) -> None:
    source = (SCENARIO_DIR / "easy.toml").read_text()
    path = _write(tmp_path, source.replace("capacity = 4", 'capacity = "four"'))
    with pytest.raises(WorkflowDefinitionError) as info:
        load_scenario_file(path)
    message = str(info.value)
    assert str(path) in message and "capacity" in message and "integer" in message


def test_unknown_field_and_bad_toml_are_reported(tmp_path: Path) -> None:
    source = (SCENARIO_DIR / "easy.toml").read_text()
    with pytest.raises(WorkflowDefinitionError, match="capacityy"):
        load_scenario_file(_write(tmp_path, source.replace("capacity = 4", "capacity = 4\ncapacityy = 4")))
    with pytest.raises(WorkflowDefinitionError, match="not valid TOML"):
        load_scenario_file(_write(tmp_path, "id = [unclosed"))


def test_every_workflow_problem_is_listed(tmp_path: Path) -> None:
    source = (SCENARIO_DIR / "easy.toml").read_text()
    broken = (
        source.replace('depends_on = ["technical_design"]', 'depends_on = ["review_and_merge"]', 1)
        .replace('id = "write_tests"', 'id = "implement_frontend"')
        .replace('type = "frontend_impl"', 'type = "painting"')
        .replace('depends_on = ["run_tests"]', 'depends_on = ["ghost"]')
        .replace("time_efficiency = 0.25", "time_efficiency = 0.25\nluck = 0.0")
    )
    with pytest.raises(WorkflowDefinitionError) as info:
        load_scenario_file(_write(tmp_path, broken))
    problems = "\n".join(info.value.problems)
    assert "duplicate subtask id 'implement_frontend'" in problems
    assert "unknown subtask 'ghost'" in problems
    assert "no agent that can complete it" in problems
    assert "luck" in problems


def test_cycles_are_found() -> None:
    task = tiny_task(
        subtasks=(
            SubtaskSpec("a", "alpha", ("c",)),
            SubtaskSpec("b", "beta", ("a",)),
            SubtaskSpec("c", "gamma", ("b",)),
        ),
        agents=(AgentSpec("x", frozenset({"alpha", "beta", "gamma"})),),
        events=(),
        patience=None,
    )
    problems = validate_task(task)
    assert any(p.startswith("dependency cycle: ") for p in problems), problems


def test_dag_index_critical_path_and_width() -> None:
    registry = default_registry()
    easy = registry.resolve("easy").compiled.dag
    assert easy.critical_path_length == 5
    assert easy.parallel_width == 2
    hard = registry.resolve("hard").compiled.dag
    # triage 1, enrich_logs 2 (beta; alpha's trap does not count), rca 1, hotfix 1, validate 1, monitor 1
    assert hard.critical_path_length == 7
    assert hard.parallel_width == 3  # five side-by-side subtasks, capacity 3
    tiny = DagIndex.build(tiny_task())
    assert tiny.topological_order[0] == 0 and tiny.downstream_count == (2, 0, 0)
