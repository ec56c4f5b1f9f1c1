"""Property-based fuzzing of the committed OpenAPI document (schemathesis) against the API over a
real socket: no generated request may get a 5xx, and every response must match the document
(status code, content type, body schema, headers). A bounded number of examples per route."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from helpers.stack import api_process
from hypothesis import HealthCheck, settings
from schemathesis import checks

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_PER_ROUTE = 25
schema = schemathesis.openapi.from_path(ROOT / "openapi.json")
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def api_url(test_redis, tmp_path_factory):
    """A real API process on the tests' second Redis DB, which no worker consumes: fuzzed jobs stay
    queued instead of keeping a worker busy; the DB is flushed afterwards."""
    crash = test_redis.client(test_redis.crash_db)
    crash.flushdb()
    tmp = tmp_path_factory.mktemp("fuzz")
    # waits bounded below the client's 30 s timeout: no worker consumes this DB, so a valid ?wait= would block
    with api_process(
        test_redis.crash_url, tmp, supernet_dir=str(tmp / "supernets"), upload_timeout_seconds="5", max_wait_seconds="5"
    ) as base:
        yield base
    crash.flushdb()


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_document(case, api_url):
    chosen = CHECKS
    if case.path == "/readyz":  # no worker consumes this DB: readyz answers its documented 503
        chosen = [c for c in CHECKS if c is not checks.not_a_server_error]
    case.call_and_validate(base_url=api_url, checks=chosen, timeout=30)


negative = schemathesis.openapi.from_path(ROOT / "openapi.json")
negative.config.generation.update(modes=[schemathesis.GenerationMode.NEGATIVE])


@negative.parametrize()
@settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_requests_that_break_the_document_never_get_a_server_error(case, api_url):
    """The negative phase: bodies, parameters and types the document forbids are refused with a 4xx."""
    case.call_and_validate(base_url=api_url, checks=[checks.not_a_server_error], timeout=30)


def test_sequences_of_calls_never_get_a_server_error(api_url, test_redis):
    """The stateful phase: calls chained through the links inferred from the document (a job id from
    POST /v1/scores to GET and DELETE /v1/jobs/{id}, a study, a truth table, ...). Each sequence starts
    from an empty store, so that what one left behind (a predictor, a table) never changes what the next
    one draws: Hypothesis replays sequences and needs them to draw the same."""
    stateful = schemathesis.openapi.from_path(ROOT / "openapi.json")
    stateful.config.update(base_url=api_url)
    # the checks above: the document cannot say which strings and lists encode an architecture, so a
    # schema-valid request may be refused with a 422 (positive-data acceptance is not a check here)
    stateful.config.checks.update(included_check_names=[c.__name__ for c in CHECKS])
    store = test_redis.client(test_redis.crash_db)

    class FromAnEmptyStore(stateful.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            store.flushdb()

    machine = FromAnEmptyStore
    machine.run(
        settings=settings(
            max_examples=40,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
