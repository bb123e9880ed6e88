"""Schemathesis against the app in-process: every operation with generated input (valid and not), then the
stateful phase chaining them; no answer may be a server error. Bounded and derandomized, so a run is the same
each time."""

from __future__ import annotations

import dataclasses

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error

from intentvision_dagster.api.app import create_app
from intentvision_dagster.api.registry import SCOPES
from tests.api.conftest import make_api_home, seed_warehouse

BOUNDED = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclasses.dataclass
class Target:
    schema: schemathesis.BaseSchema
    headers: dict[str, str]


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Target:
    settings_, registry, _ = make_api_home(
        tmp_path_factory.mktemp("schemathesis-home"), api_rate_limit=1e6, api_auth_failure_rate=1e6
    )
    seed_warehouse(settings_.warehouse_path)
    key = registry.create_key("acme", SCOPES, "test").key
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_))
    return Target(schema, {"Authorization": f"Bearer {key}"})


def test_no_operation_answers_a_server_error(target: Target):
    for result in target.schema.get_all_operations():
        operation = result.ok()

        @BOUNDED
        @given(case=operation.as_strategy())
        def call(case) -> None:
            case.call_and_validate(headers=target.headers, checks=[not_a_server_error])

        call()


def test_no_sequence_of_operations_answers_a_server_error(target: Target):
    class Stateful(target.schema.as_state_machine()):
        def get_call_kwargs(self, case) -> dict:
            return {"headers": target.headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(response, checks=[not_a_server_error])

    run_state_machine_as_test(Stateful, settings=settings(BOUNDED, stateful_step_count=5))
