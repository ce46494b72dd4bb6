"""The API keeps the promises of its own ``/openapi.json``, checked as an outside client would.

``schemathesis run --checks all`` against a real server on loopback: no server error; every
status and body is one the document declares; a request the document allows is accepted and one
it forbids is refused; a 405 names the allowed methods; plus the stateful sequences the document's
links describe. ``tests/api/schemathesis.toml`` says which operations check more than a JSON
Schema can express (and so may answer a document-valid request with a 400 and a code).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from engine.db import session_scope
from engine.runtime import Runtime
from engine.services.auth import create_api_user
from tests.conftest import make_settings

pytest_plugins = ["tests.api.live"]

CONFIG = Path(__file__).with_name("schemathesis.toml")
#: Examples per operation: bounded for CI's time budget; ``CONTRACT_EXAMPLES=30`` (or more)
#: runs the deeper search.
EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "6"))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The test settings, with attempt limits out of reach: schemathesis sends wrong credentials
    on purpose, and the valid requests after them must reach the routes, not a 429 (the limits
    are tested in test_login_attempts_api.py; the document declares the 429)."""
    far = 1_000_000
    return make_settings(
        db_url, tmp_path, auth_failures_per_user=far, auth_failures_per_address=far
    )


# The contract is the API layer's: one store is enough (test_fuzz.py runs both for server errors).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.timeout(900)  # about 40 s alone; several times that beside a loaded suite
def test_the_api_keeps_its_openapi_document(live: Any, rt: Runtime, tmp_path: Path) -> None:
    with session_scope(rt.engine) as session:
        _, key = create_api_user(session, live.organization_id, "newsletter", "api_user")
    basic = base64.b64encode(f"api_user:{key}".encode()).decode()
    env = {**os.environ, "CONTRACT_BEARER": live.api_key, "CONTRACT_BASIC": basic}
    command = [
        *(sys.executable, "-m", "schemathesis.cli"),
        *("--config-file", str(CONFIG), "--no-color"),
        *("run", f"{live.base_url}/openapi.json", "--checks", "all"),
        *("--max-examples", str(EXAMPLES), "--seed", "20261129"),
    ]
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=840
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
