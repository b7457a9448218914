"""Property-based requests over every /v1 operation of the OpenAPI document (schemathesis strategies,
driven by Hypothesis here), on SQLite and PostgreSQL: bounded (CASES_PER_OPERATION per operation and
mode, valid inputs and inputs that break the schema on purpose: a few hundred in all), deterministic
(derandomized, no example database), through the real app on a migrated store, as the owner. No answer
may be a server error (HTTP 5xx): every input gets a documented refusal or an answer."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from tests.integration.v1.conftest import Api

pytestmark = pytest.mark.integration

CASES_PER_OPERATION = 5
"""Per operation and generation mode (valid inputs, and inputs that break the schema on purpose)."""


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_no_v1_input_is_a_server_error(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app).include(path_regex="^/v1/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    failures: list[str] = []
    cases = 0

    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=CASES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def one(case: Any) -> None:
            nonlocal cases
            cases += 1
            case.headers = {**(case.headers or {}), **api.owner.headers}
            response = case.call()
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200}: "
                                f"{response.status_code} {response.text[:300]}")

        one()
    print(f"{cases} cases over {len(operations)} operations")
    assert not failures, "\n".join(failures[:20])
