"""Property-based fuzzing of every operation in /openapi.json: no input makes a server error.

On PostgreSQL, whose types refuse more than SQLite's (a NUL character, an integer out of range):
the API on SQLite is fuzzed over the wire, with every check, by ``test_openapi_contract.py``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.api.conftest import Tenant

schema = schemathesis.pytest.from_fixture("api_schema")
#: Examples per operation: bounded for CI's time budget; ``FUZZ_EXAMPLES=200 pytest
#: tests/api/test_fuzz.py`` runs the deeper search (our scheduled run does).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))


@pytest.fixture
def db_url(pg_url: str) -> str:
    """PostgreSQL only (see the module's docstring)."""
    return pg_url


@pytest.fixture
def api_schema(client: TestClient, tenant: Tenant) -> Any:
    """The API's own OpenAPI document, loaded from the running app."""
    return schemathesis.openapi.from_asgi("/openapi.json", client.app)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error(case: Any, tenant: Tenant) -> None:
    response = case.call(headers=tenant.headers())
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        body = response.json()
        if case.path.startswith("/v1/marketing/"):  # the lists API: its own error shape
            assert isinstance(body["code"], int) and body["message"], body
        else:
            assert body["success"] is False and body["error"]["code"], body
