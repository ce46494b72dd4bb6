"""Shared fixtures: the store on SQLite and PostgreSQL, the broker in-process and on Redis.

Integration servers are found on 127.0.0.1 (override with TEST_PG_ADMIN_URL, TEST_REDIS_URL,
TEST_AMQP_URL). A missing server skips its tests locally and fails them under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.config import Settings
from engine.db import make_engine, migrate, session_scope
from engine.logging import configure_logging
from engine.outbound import OutboundPolicy
from engine.outbound.policy import parse_networks
from engine.runtime import Runtime

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: pytest-xdist runs tests in worker processes ``gw0``, ``gw1`` …: each gets its own Redis
#: database (15, 14 …) so that one worker's FLUSHDB never empties another's.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - _WORKER % 16}")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

#: Tests reach their servers (webhook sinks, aiosmtpd, provider fakes) on loopback on purpose;
#: the outbound guard refuses loopback unless allowed. Set for this process and the servers and
#: CLIs it starts; tests proving the default refuses pass settings of their own.
LOOPBACK_NETWORKS = ["127.0.0.0/8", "::1/128"]
os.environ["OUTBOUND_ALLOWED_NETWORKS"] = ",".join(LOOPBACK_NETWORKS)
#: Passwords are hashed at OWASP's minimum argon2id cost (the settings' floor), not the default
#: RFC 9106 profile: the suite creates a user in most tests, and each default hash costs about
#: 0.2 s of CPU. The settings read it from this environment; building a runtime or the API app
#: applies it to the process, as in production. Real argon2id hashes all the same.
os.environ.update(
    PASSWORD_HASH_TIME_COST="2", PASSWORD_HASH_MEMORY_KIB="19456", PASSWORD_HASH_PARALLELISM="1"
)
#: The outbound policy of channels a test builds itself.
LOOPBACK_POLICY = OutboundPolicy(parse_networks(LOOPBACK_NETWORKS))


# Info and up, as in production: per-delivery debug lines would slow every test.
configure_logging("console", "INFO", cache=False)


def require_server(name: str, check: Callable[[], Any]) -> None:
    """Skip (or, under CI=true, fail) the test unless ``check()`` reaches the server."""
    try:
        check()
    except Exception as exc:
        message = f"{name} is not reachable: {type(exc).__name__}: {exc}"
        if CI:
            pytest.fail(f"{message} (CI=true: integration tests never skip)")
        pytest.skip(message)


def _check_pg() -> None:
    engine = make_engine(PG_ADMIN_URL, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text("select 1"))


def _check_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()


def _check_amqp() -> None:
    import pika

    pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    require_server("PostgreSQL", _check_pg)
    name = f"ce_test_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_ADMIN_URL, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        # Tests need no durability across a server crash: commits stop waiting for the disk,
        # which is most of a test's time on PostgreSQL. Production settings are untouched.
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _truncate(url: str) -> None:
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """The store's URL: a fresh SQLite file, or the session's PostgreSQL database, emptied."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    _truncate(url)
    return url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied (for tests that need PostgreSQL itself)."""
    _truncate(pg_database)
    return pg_database


@pytest.fixture
def redis_url() -> str:
    """A real Redis database, flushed."""
    require_server("Redis", _check_redis)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    """A real RabbitMQ."""
    require_server("RabbitMQ", _check_amqp)
    return AMQP_URL


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The broker's URL: dramatiq's in-process broker, or a real Redis."""
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


#: The tests' ``SECRET_KEY``: a key the processes accept (not the public development one).
TEST_SECRET_KEY = "test-secret-key-for-the-suite-only-0123456789abcdef"


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: fast scheduler ticks, small chunks, files under ``tmp_path``."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "broker_url": "memory://",
        "log_channel_path": str(tmp_path / "deliveries.jsonl"),
        "scheduler_interval_s": 0.05,
        "chunk_size": 100,
        "rate_limits": {},
        "send_backoff_initial_s": 0.01,
        "send_backoff_max_s": 0.1,
        "outbound_allowed_networks": LOOPBACK_NETWORKS,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Test settings on the parametrized store and the in-process broker."""
    return make_settings(db_url, tmp_path)


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    """A runtime on the test settings."""
    runtime = Runtime.from_settings(settings)
    yield runtime
    runtime.close()


@pytest.fixture
def session_factory(rt: Runtime) -> Callable[[], Any]:
    """``with session_factory() as s:`` opens a unit of work on the test store."""
    return lambda: session_scope(rt.engine)
