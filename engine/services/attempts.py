"""Attempt limits for password checks: logins and the contact lists API's Basic auth.

Each failed check counts against the user named and against the client address. Once either
has ``AUTH_FAILURES_PER_USER`` / ``AUTH_FAILURES_PER_ADDRESS`` failures within
``AUTH_FAILURE_WINDOW_S``, further attempts are refused with 429 and ``Retry-After`` *before*
argon2 runs (a password check costs 64 MiB and ~0.1 s of CPU at the default cost): guessing
and memory exhaustion both stop. Every check is counted atomically before argon2 runs (so
parallel requests cannot slip past the limit) and taken back when it succeeds: only failures
use up the limits.

Counters live in Redis when one is configured (every API process shares them), in memory
otherwise; the ``limits`` library keeps the moving windows in both. An unreachable Redis lets
attempts through (logged): logins must not depend on it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import cast

import redis
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
        self._storage = storage
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

    def begin(self, kind: str, user: str, address: str) -> None:
        """Count one password check of ``user`` from ``address``, or refuse it.

        The count is taken *before* argon2 runs, atomically (``hit`` tests and adds in one
        step, in memory and in Redis): requests sent in parallel cannot all pass a test made
        before any of them counted. A refused check counts nowhere.

        Raises:
            TooManyAttempts: with the seconds until the oldest check leaves the window.
        """
        taken: list[tuple[RateLimitItem, str]] = []
        try:
            for item, key in self._counters(kind, user, address):
                if not self._limiter.hit(item, key):
                    for done in taken:
                        self._refund(*done)
                    reset = self._limiter.get_window_stats(item, key).reset_time
                    log.info("auth.attempts_refused", kind=kind, counter=key.split(":")[-2])
                    raise TooManyAttempts(
                        "too many failed attempts; retry later",
                        retry_after=max(1, math.ceil(reset - time.time())),
                    )
                taken.append((item, key))
        except StorageError as exc:
            log.warning("auth.attempts_unavailable", error=str(exc)[:200])

    def succeeded(self, kind: str, user: str, address: str) -> None:
        """A check begun with :meth:`begin` passed: only failures use up the limits.

        Forgets the user's failures, and takes this check back from the address's count (its
        other failures stay: one's own account must not reset them).
        """
        (user_item, user_key), (address_item, address_key) = self._counters(kind, user, address)
        try:
            self._limiter.clear(user_item, user_key)
            self._refund(address_item, address_key)
        except StorageError as exc:
            log.warning("auth.attempts_unavailable", error=str(exc)[:200])

    def _refund(self, item: RateLimitItem, key: str) -> None:
        """Remove the newest entry of a moving window (``limits`` has no API for it).

        Both storages keep a window's entries newest first (a Redis list, a Python list);
        all entries are alike, so dropping the newest undoes one ``hit``.
        """
        name = item.key_for(key)
        storage = self._storage
        if isinstance(storage, RedisStorage):
            try:
                connection = cast(redis.Redis, storage.get_connection())
                connection.lpop(storage.prefixed_key(name))
            except storage.base_exceptions as exc:
                raise StorageError(exc) from exc
        elif isinstance(storage, MemoryStorage):
            with storage.locks[name]:
                if entries := storage.events.get(name):
                    del entries[0]


@dataclass(frozen=True)
class Attempts:
    """The attempt limits as they apply to one client (its address bound)."""

    limiter: AttemptLimiter
    address: str

    def begin(self, kind: str, user: str) -> None:
        """See :meth:`AttemptLimiter.begin`."""
        self.limiter.begin(kind, user, self.address)

    def succeeded(self, kind: str, user: str) -> None:
        """See :meth:`AttemptLimiter.succeeded`."""
        self.limiter.succeeded(kind, user, self.address)
