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
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    ConnectionError,
    TimeoutError,
)


class ServiceOutage(EngineError):
    """A service the engine needs stayed unreachable longer than it was willing to wait."""

    code = "SERVICE_UNAVAILABLE"


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a service is down or unreachable (worth waiting for)."""
    if isinstance(exc, (ServiceOutage, *_OUTAGE_TYPES)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def through_outages(
    fn: Callable[[], T],
    what: str,
    *,
    wait_s: float,
    backoff_max_s: float = 5.0,
) -> T:
    """Call ``fn`` until it succeeds, waiting out outages for at most ``wait_s`` seconds.

    Other errors pass through at once.

    Raises:
        ServiceOutage: the service was still unreachable after ``wait_s`` seconds.
    """

    def before_sleep(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        exc = outcome.exception() if outcome is not None else None
        log.warning(f"{what}.waiting_for_service", error=f"{type(exc).__name__}: {exc}"[:300])

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
