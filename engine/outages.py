"""Telling a passing outage from a fault, and waiting one out.

A database, Redis or broker that cannot be reached is not the campaign's fault: work waits and
resumes when the service is back, and nothing counts toward a chunk's failures. Faults that
retrying cannot fix (a bug, a value the store refuses) are the only ones that fail work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis.exceptions
from sqlalchemy import exc as sa_exc
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from engine.errors import EngineError
from engine.logging import get_logger

log = get_logger()
T = TypeVar("T")

#: Errors of a service that is down or unreachable (not of what was asked of it).
_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    ConnectionError,
    TimeoutError,
)
#: PostgreSQL SQLSTATEs of a server going away or refusing connections for now: connection
#: exceptions (class 08), shutdowns and restarts (57P01-57P03), too many connections (53300),
#: and transaction conflicts that a retry resolves (40001, 40P01). A statement timeout, a full
#: disk or bad SQL are not outages: waiting would never end.
_OUTAGE_SQLSTATES = (
    "57P01", "57P02", "57P03", "57P05", "53300", "40001", "40P01",
    "25006",  # read-only transaction: a failover made this server a standby
)  # fmt: skip
#: SQLite's words for "another writer holds the database" (the only SQLite outage).
_SQLITE_BUSY = ("database is locked", "database is busy")


class ServiceOutage(EngineError):
    """A service the engine needs stayed unreachable longer than it was willing to wait."""

    code = "SERVICE_UNAVAILABLE"


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a service is down or unreachable (worth waiting for)."""
    if isinstance(exc, (ServiceOutage, *_OUTAGE_TYPES)):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate.startswith("08") or sqlstate in _OUTAGE_SQLSTATES
    message = str(exc.orig).lower()
    if type(exc.orig).__module__.startswith("sqlite3"):
        return any(words in message for words in _SQLITE_BUSY)
    # psycopg's own connection failures (refused, reset, server closed) carry no SQLSTATE.
    return True


def through_outages(
    fn: Callable[[], T],
    what: str,
    *,
    wait_s: float,
    backoff_max_s: float = 5.0,
    while_waiting: Callable[[], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, waiting out outages for at most ``wait_s`` seconds.

    Other errors pass through at once. ``while_waiting`` is called before each wait (a chunk
    waiting for its database is not stalled: its heartbeat deadline moves).

    Raises:
        ServiceOutage: the service was still unreachable after ``wait_s`` seconds.
    """

    def before_sleep(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        exc = outcome.exception() if outcome is not None else None
        log.warning(f"{what}.waiting_for_service", error=f"{type(exc).__name__}: {exc}"[:300])
        if while_waiting is not None:
            while_waiting()

    retrying = Retrying(
        retry=retry_if_exception(is_outage),
        stop=stop_after_delay(wait_s),
        wait=wait_exponential_jitter(multiplier=0.1, max=backoff_max_s, jitter=0.1),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except ServiceOutage:
        raise
    except Exception as exc:
        if is_outage(exc):
            raise ServiceOutage(f"{what}: service unreachable for {wait_s:g} s: {exc}") from exc
        raise
