"""Attempt limits for password checks: logins and the contact lists API's Basic auth.

Each failed check counts against the user named and against the client address. Once either
has ``AUTH_FAILURES_PER_USER`` / ``AUTH_FAILURES_PER_ADDRESS`` failures within
``AUTH_FAILURE_WINDOW_S``, further attempts are refused with 429 and ``Retry-After`` *before*
argon2 runs (each check costs ~64 MiB and ~50 ms): guessing and memory exhaustion both stop.

Counters live in Redis when one is configured (every API process shares them), in memory
otherwise; the ``limits`` library keeps the moving windows in both. An unreachable Redis lets
attempts through (logged): logins must not depend on it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from engine.config import Settings
from engine.errors import TooManyAttempts
from engine.logging import get_logger
from engine.ratelimit import limiter_url

log = get_logger()

#: Prefix of the counters' Redis keys.
REDIS_PREFIX = "campaign-engine:auth-failures"


class AttemptLimiter:
    """Failed password checks per user and per client address, in a moving window."""

    def __init__(self, storage: Storage, per_user: int, per_address: int, window_s: int) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_user = RateLimitItemPerSecond(per_user, window_s)
        self._per_address = RateLimitItemPerSecond(per_address, window_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> AttemptLimiter:
        """Counters in the configured Redis (``REDIS_URL`` or a Redis broker), else in memory."""
        url = limiter_url(settings.broker_url, settings.redis_url)
        storage: Storage
        if url:
            storage = RedisStorage(
                url,
                key_prefix=REDIS_PREFIX,
                wrap_exceptions=True,
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
            )
        else:
            storage = MemoryStorage()
        return cls(
            storage,
            settings.auth_failures_per_user,
            settings.auth_failures_per_address,
            settings.auth_failure_window_s,
        )

    def for_client(self, address: str) -> Attempts:
        """The attempts of the client at ``address``."""
        return Attempts(self, address)

    def _counters(self, kind: str, user: str, address: str) -> list[tuple[RateLimitItem, str]]:
        return [(self._per_user, f"{kind}:user:{user}"), (self._per_address, f"addr:{address}")]

    def check(self, kind: str, user: str, address: str) -> None:
        """Refuse if the user or the address has used up its failures.

        Raises:
            TooManyAttempts: with the seconds until the oldest failure leaves the window.
        """
        try:
            for item, key in self._counters(kind, user, address):
                if not self._limiter.test(item, key):
                    reset = self._limiter.get_window_stats(item, key).reset_time
                    log.info("auth.attempts_refused", kind=kind, counter=key.split(":")[-2])
                    raise TooManyAttempts(
                        "too many failed attempts; retry later",
                        retry_after=max(1, math.ceil(reset - time.time())),
                    )
        except StorageError as exc:
            log.warning("auth.attempts_unavailable", error=str(exc)[:200])

    def failed(self, kind: str, user: str, address: str) -> None:
        """Count one failed check of ``user`` from ``address``."""
        try:
            for item, key in self._counters(kind, user, address):
                self._limiter.hit(item, key)
        except StorageError as exc:
            log.warning("auth.attempts_unavailable", error=str(exc)[:200])

    def succeeded(self, kind: str, user: str) -> None:
        """Forget the user's failures (not the address's: one's own account must not reset it)."""
        try:
            self._limiter.clear(self._per_user, f"{kind}:user:{user}")
        except StorageError as exc:
            log.warning("auth.attempts_unavailable", error=str(exc)[:200])


@dataclass(frozen=True)
class Attempts:
    """The attempt limits as they apply to one client (its address bound)."""

    limiter: AttemptLimiter
    address: str

    def check(self, kind: str, user: str) -> None:
        """See :meth:`AttemptLimiter.check`."""
        self.limiter.check(kind, user, self.address)

    def failed(self, kind: str, user: str) -> None:
        """See :meth:`AttemptLimiter.failed`."""
        self.limiter.failed(kind, user, self.address)

    def succeeded(self, kind: str, user: str) -> None:
        """See :meth:`AttemptLimiter.succeeded`."""
        self.limiter.succeeded(kind, user)
