"""The rate limiter: reservations of n tokens, in memory and on a real Redis."""

from __future__ import annotations

import time

import pytest

from engine.ratelimit import Limiter, MemoryLimiter, RedisLimiter, build_limiter, limiter_url


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def limiter(request: pytest.FixtureRequest) -> Limiter:
    if request.param == "memory":
        return MemoryLimiter()
    return RedisLimiter.from_url(request.getfixturevalue("redis_url"))


def test_first_batch_goes_now_and_the_next_waits_its_share(limiter: Limiter) -> None:
    assert limiter.acquire("k", 50, rate=100) == 0
    wait = limiter.acquire("k", 50, rate=100)
    assert 0.45 <= wait <= 0.5  # 50 tokens at 100/s
    assert 0.95 <= limiter.acquire("k", 1, rate=100) <= 1.0


def test_keys_are_independent(limiter: Limiter) -> None:
    limiter.acquire("a", 100, rate=10)
    assert limiter.acquire("b", 1, rate=10) == 0


def test_idle_key_does_not_bank_tokens(limiter: Limiter) -> None:
    limiter.acquire("k", 1, rate=20)
    time.sleep(0.2)
    assert limiter.acquire("k", 10, rate=20) == 0
    assert 0.45 <= limiter.acquire("k", 1, rate=20) <= 0.5


def test_penalty_pushes_everyone_back(limiter: Limiter) -> None:
    limiter.penalize("k", 2.0)
    assert 1.9 <= limiter.acquire("k", 1, rate=1000) <= 2.0


def test_limiter_choice_follows_configuration() -> None:
    assert limiter_url("memory://", "") is None
    assert limiter_url("redis://h:6379/0", "") == "redis://h:6379/0"
    assert limiter_url("amqp://h", "redis://r/1") == "redis://r/1"
    assert isinstance(build_limiter("memory://", ""), MemoryLimiter)
