"""Whether a process can do its work: the readiness its probes (``GET /ready``) ask about.

Each check reaches one dependency with a short timeout: the database answers, its schema is at
the newest migration, the broker accepts connections (Redis or RabbitMQ; the embedded broker
always does), and the shared rate limiter's Redis answers. A failed check names what failed;
nothing here raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from engine.config import Settings
from engine.db import alembic_config
from engine.ratelimit import limiter_url

#: Seconds a check may wait for its server.
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Readiness:
    """The outcome of every check: ``ok``, or what went wrong."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Whether every check passed."""
        return all(outcome == "ok" for outcome in self.checks.values())


def check_readiness(settings: Settings, engine: Engine) -> Readiness:
    """Check the database, its schema, the broker and the rate limiter of ``settings``."""
    checks = {"database": _database(engine)}
    checks["schema"] = _schema(engine) if checks["database"] == "ok" else "not checked"
    checks["broker"] = _broker(settings.broker_url)
    url = limiter_url(settings.broker_url, settings.redis_url)
    checks["limiter"] = _redis(url) if url else "ok"
    return Readiness(checks)


def _failure(exc: Exception) -> str:
    # The class and the first line: enough to act on, never a traceback or a long dump.
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def _database(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return _failure(exc)
    return "ok"


@cache
def _head() -> str | None:
    """The newest migration this code ships (read once: the files do not change)."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def _schema(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        head = _head()
    except Exception as exc:
        return _failure(exc)
    if current != head:
        return f"at migration {current or 'none'}, not {head}: run `campaign migrate`"
    return "ok"


def _broker(url: str) -> str:
    if url.startswith(("redis://", "rediss://")):
        return _redis(url)
    if url.startswith(("amqp://", "amqps://")):
        try:
            import pika

            parameters = pika.URLParameters(url)
            parameters.socket_timeout = TIMEOUT_S
            parameters.blocked_connection_timeout = TIMEOUT_S
            pika.BlockingConnection(parameters).close()
        except Exception as exc:
            return _failure(exc)
    return "ok"  # memory://: the embedded broker lives in this process


def _redis(url: str) -> str:
    try:
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return _failure(exc)
    return "ok"
