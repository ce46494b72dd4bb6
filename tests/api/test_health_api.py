"""The probes a deployment asks: ``/health`` (the process answers) and ``/ready`` (the database
with its schema at head, the broker and the rate limiter's Redis answer; 503 names what does
not)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.config import Settings
from engine.db import make_engine, migrate
from tests.conftest import make_settings


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _probe(settings: Settings, path: str) -> tuple[int, dict[str, object]]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answer = client.get(path)
    return answer.status_code, answer.json()


def test_health_answers_without_credentials(settings: Settings) -> None:
    assert _probe(settings, "/health") == (200, {"status": "ok"})


def test_ready_checks_the_database_its_schema_the_broker_and_the_limiter(
    db_url: str, broker_url: str, tmp_path: Path
) -> None:
    settings = make_settings(db_url, tmp_path, broker_url=broker_url)

    status, body = _probe(settings, "/ready")

    assert status == 200
    assert body == {
        "status": "ready",
        "checks": {"database": "ok", "schema": "ok", "broker": "ok", "limiter": "ok"},
    }


def test_ready_is_503_naming_an_unreachable_broker_and_limiter(
    db_url: str, tmp_path: Path, closed_port: int
) -> None:
    down = f"redis://127.0.0.1:{closed_port}/0"
    settings = make_settings(db_url, tmp_path, broker_url=down)

    status, body = _probe(settings, "/ready")

    assert status == 503 and body["status"] == "not_ready"
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"] == "ok" and checks["schema"] == "ok"
    assert checks["broker"] == checks["limiter"] == "unreachable"


def test_ready_is_503_when_the_schema_is_not_migrated(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)

    status, body = _probe(settings, "/ready")

    assert status == 503
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"] == "ok"
    assert checks["schema"] == "behind" and checks["broker"] == "ok"


def test_ready_is_503_when_the_database_is_down(tmp_path: Path, closed_port: int) -> None:
    down = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/none"
    settings = make_settings(down, tmp_path)

    status, body = _probe(settings, "/ready")

    assert status == 503
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"] == "unreachable" and checks["schema"] == "not checked"
    assert str(closed_port) not in str(body)  # anyone may ask: no addresses in the answer


def test_a_schema_ahead_of_this_release_is_ready(tmp_path: Path) -> None:
    # During a rollout the new release's migrations run first: the old processes stay ready.
    # A store of its own: the suite's shared PostgreSQL database must stay at this head.
    url = f"sqlite:///{tmp_path / 'ahead.db'}"
    migrate(url)
    settings = make_settings(url, tmp_path)
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'from_a_later_release'"))
    engine.dispose()

    status, body = _probe(settings, "/ready")

    assert status == 200 and body["status"] == "ready"


def test_the_document_declares_what_ready_answers(settings: Settings) -> None:
    responses = create_app(settings).openapi()["paths"]["/ready"]["get"]["responses"]
    assert set(responses) == {"200", "503"}
    for status in ("200", "503"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ReadinessOut"}
