"""Every route, fuzzed from the live server's OpenAPI document: no input may cause a 5xx.

Schemathesis generates requests for each operation, both ones that fit the
schema and ones that break it; every answer must be below 500, have a
status code and content type the schema documents, and match its schema.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.server_fixtures import RunningServer

# Every operation of the OpenAPI document; the first test keeps this list honest.
OPERATIONS = [
    ("POST", "/reset"),
    ("POST", "/step"),
    ("GET", "/state"),
    ("GET", "/schema"),
    ("GET", "/metadata"),
    ("GET", "/health"),
    ("GET", "/tasks"),
    ("POST", "/grader"),
    ("GET", "/episodes/{episode_id}"),
    ("POST", "/baseline"),
    ("POST", "/mcp"),
    ("GET", "/list_environments"),
    ("GET", "/{env_name}/splits"),
    ("POST", "/{env_name}/tasks"),
    ("POST", "/{env_name}/num_tasks"),
    ("POST", "/{env_name}/task"),
    ("POST", "/{env_name}/task_range"),
]
# Operations that take input, so that there is something to break for negative cases.
WITH_INPUT = {
    ("POST", "/reset"),
    ("POST", "/step"),
    ("GET", "/state"),
    ("POST", "/grader"),
    ("GET", "/episodes/{episode_id}"),
    ("POST", "/{env_name}/tasks"),
    ("POST", "/{env_name}/task"),
    ("POST", "/{env_name}/task_range"),
}
CASES = [(method, path, GenerationMode.POSITIVE) for method, path in OPERATIONS] + [
    (method, path, GenerationMode.NEGATIVE) for method, path in OPERATIONS if (method, path) in WITH_INPUT
]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(live_server: RunningServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")


def test_the_fuzzed_operations_are_all_the_operations(api_schema: schemathesis.BaseSchema) -> None:
    live = {(operation.ok().method.upper(), operation.ok().path) for operation in api_schema.get_all_operations()}
    assert live == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {mode}" for m, p, mode in CASES])
def test_no_route_answers_5xx(
    api_schema: schemathesis.BaseSchema, live_server: RunningServer, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=live_server.url, checks=CHECKS)

    fuzz()
