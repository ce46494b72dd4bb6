"""Rate limiting shared by every worker: "take n tokens, tell me how long to wait".

GCRA as a reservation: each key keeps a theoretical arrival time (TAT). Taking ``n`` tokens at
``rate`` per second moves the TAT forward by ``n / rate`` and tells the caller to wait until the
old TAT, so batches of any size keep the average rate exact and nobody is ever refused.
dramatiq's own rate limiters take one token and refuse when over; the ``limits`` library offers
windows, not reservations of n tokens — hence this small module (see docs/decisions.md).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis


class Limiter(Protocol):
    """A rate limiter keyed by provider account."""

    def acquire(self, key: str, n: int, rate: float) -> float:
        """Reserve ``n`` tokens of ``key`` at ``rate`` per second.

        Returns:
            Seconds the caller must wait before sending the ``n`` messages (0 = now).
        """

    def penalize(self, key: str, seconds: float) -> None:
        """Push ``key``'s next free time at least ``seconds`` ahead (a provider's retry-after)."""


class MemoryLimiter:
    """In-process GCRA for the embedded mode (one process, many threads)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, n: int, rate: float) -> float:
        """Reserve ``n`` tokens; see :meth:`Limiter.acquire`."""
        with self._lock:
            now = time.monotonic()
            start = max(self._tat.get(key, now), now)
            self._tat[key] = start + n / rate
            return start - now

    def penalize(self, key: str, seconds: float) -> None:
        """See :meth:`Limiter.penalize`."""
        with self._lock:
            until = time.monotonic() + seconds
            self._tat[key] = max(self._tat.get(key, until), until)


# KEYS[1] = key; ARGV = n, rate, penalty seconds. Redis' own clock keeps every machine in step.
# Returns the wait as a string: Lua numbers become integers in Redis replies.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local penalty = tonumber(ARGV[3])
local new_tat
local wait = 0
if penalty > 0 then
  new_tat = math.max(tat, now + penalty)
else
  new_tat = tat + tonumber(ARGV[1]) / tonumber(ARGV[2])
  wait = tat - now
end
local ttl_ms = math.ceil((new_tat - now) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', ttl_ms)
return string.format('%.6f', wait)
"""


class RedisLimiter:
    """GCRA in one atomic Lua script, shared by all worker processes on all machines."""

    def __init__(self, client: redis.Redis, prefix: str = "campaign-engine:rate:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_GCRA_LUA)

    @classmethod
    def from_url(cls, url: str) -> RedisLimiter:
        """Build a limiter on the Redis at ``url``."""
        return cls(redis.Redis.from_url(url))

    def acquire(self, key: str, n: int, rate: float) -> float:
        """Reserve ``n`` tokens; see :meth:`Limiter.acquire`."""
        return float(self._script(keys=[self._prefix + key], args=[n, rate, 0]))

    def penalize(self, key: str, seconds: float) -> None:
        """See :meth:`Limiter.penalize`."""
        self._script(keys=[self._prefix + key], args=[0, 1, seconds])


def limiter_url(broker_url: str, redis_url: str) -> str | None:
    """Return the Redis URL the limiter should use, or ``None`` for the in-memory one."""
    if redis_url:
        return redis_url
    if broker_url.startswith(("redis://", "rediss://")):
        return broker_url
    return None


def unshared_limiter_problem(broker_url: str, redis_url: str, allowed: bool) -> str | None:
    """Why worker processes on this configuration would not share one rate limit, if so.

    Separate worker processes (a Redis or AMQP broker) each get their own in-process limiter
    when no Redis is configured: the real rate is the setting times the number of processes.
    """
    if allowed or broker_url.startswith("memory://") or limiter_url(broker_url, redis_url):
        return None
    return (
        "LIMITER_NOT_SHARED: with BROKER_URL on AMQP, set REDIS_URL so that every worker process "
        "shares the rate limits (or ALLOW_LOCAL_RATE_LIMITER=true to have each process limit on "
        "its own, at the limit times the number of processes)"
    )


def build_limiter(broker_url: str, redis_url: str) -> Limiter:
    """Return a Redis limiter when a Redis is configured, else an in-memory one."""
    url = limiter_url(broker_url, redis_url)
    return RedisLimiter.from_url(url) if url else MemoryLimiter()
