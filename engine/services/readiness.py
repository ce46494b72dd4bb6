"""Whether a process can do its work: the readiness its probes (``GET /ready``) ask about.

Each check reaches one dependency on a connection of its own, bounded by :data:`TIMEOUT_S`
(never the process's pool, whose waits are longer and which a busy process may have used up):
the database answers, its schema is not behind this code's migrations, the broker accepts
connections (Redis or RabbitMQ; the embedded broker always does), and the shared rate
limiter's Redis answers. Outcomes are fixed words (``ok``, ``unreachable``, ``behind``,
``unsupported``), since anyone may ask; what went wrong is logged for the operator. Nothing here
raises.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import cache

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from engine.config import Settings
from engine.db import alembic_config
from engine.logging import get_logger
from engine.ratelimit import limiter_url

log = get_logger()

#: Seconds a check may wait for its server.
TIMEOUT_S = 2
#: Seconds an answer is reused: probes asked in a burst run the checks once.
REUSE_S = 1.0


@dataclass(frozen=True)
class Readiness:
    """The outcome of every check: ``ok``, or a word for what is wrong."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Whether every check passed."""
        return all(outcome == "ok" for outcome in self.checks.values())


class ReadinessProbe:
    """Answers readiness for one process's settings, at most once per :data:`REUSE_S`, one
    check run at a time (callers meanwhile wait for it and share its answer)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._last: tuple[float, Readiness] | None = None

    def check(self) -> Readiness:
        """The current readiness (see the module)."""
        with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < REUSE_S:
                return self._last[1]
            readiness = check_readiness(self._settings)
            self._last = (time.monotonic(), readiness)
            return readiness


def check_readiness(settings: Settings) -> Readiness:
    """Check the database, its schema, the broker and the rate limiter of ``settings``."""
    checks: dict[str, str] = {}
    checks["database"], checks["schema"] = _database(settings.database_url)
    checks["broker"] = _broker(settings.broker_url)
    url = limiter_url(settings.broker_url, settings.redis_url)
    checks["limiter"] = _redis("limiter", url) if url else "ok"
    return Readiness(checks)


def _failed(check: str, exc: Exception) -> str:
    log.warning("ready.check_failed", check=check, error=f"{type(exc).__name__}: {exc}"[:500])
    return "unreachable"


@cache
def _revisions() -> tuple[str | None, frozenset[str]]:
    """This code's newest migration and every migration it knows (read once)."""
    scripts = ScriptDirectory.from_config(alembic_config(""))
    return scripts.get_current_head(), frozenset(s.revision for s in scripts.walk_revisions())


def _database(url: str) -> tuple[str, str]:
    """``(database, schema)`` outcomes, on one short-lived connection."""
    timeout = {"timeout": TIMEOUT_S} if url.startswith("sqlite") else {"connect_timeout": TIMEOUT_S}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=timeout)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(f"SET statement_timeout = {TIMEOUT_S * 1000}"))
            current = MigrationContext.configure(conn).get_current_revision()
    except Exception as exc:
        return _failed("database", exc), "not checked"
    finally:
        engine.dispose()
    head, known = _revisions()
    # A revision this code does not know is a later release's (its migrations ran first, as a
    # rollout does): the schema is ahead, and this process still works on it.
    if current == head or (current is not None and current not in known):
        return "ok", "ok"
    log.warning("ready.schema_behind", current=current, head=head, hint="run `campaign migrate`")
    return "ok", "behind"


def _broker(url: str) -> str:
    if url.startswith("memory://"):
        return "ok"  # the embedded broker lives in this process
    if url.startswith(("redis://", "rediss://")):
        return _redis("broker", url)
    if url.startswith(("amqp://", "amqps://")):
        try:
            import pika

            parameters = pika.URLParameters(url)
            parameters.connection_attempts = 1
            parameters.retry_delay = 0
            parameters.socket_timeout = TIMEOUT_S
            parameters.stack_timeout = TIMEOUT_S
            parameters.blocked_connection_timeout = TIMEOUT_S
            pika.BlockingConnection(parameters).close()
        except Exception as exc:
            return _failed("broker", exc)
        return "ok"
    return "unsupported"


def _redis(check: str, url: str) -> str:
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
        return _failed(check, exc)
    return "ok"
