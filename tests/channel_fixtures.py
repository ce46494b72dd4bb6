"""Fixtures the channel tests share: the event loop, the rate limiter, and a probe.

Load it with ``pytest_plugins = ["tests.channel_fixtures"]`` (and don't import it yourself, so
that pytest can rewrite its asserts; import :class:`ChannelProbe` under ``TYPE_CHECKING`` for
annotations). ``loop`` is the process's event loop, as workers have it; ``open_channel``
opens HTTP channels on it, closed after the test; ``limiter`` is the in-process shared rate
limiter; ``send_settings`` the test settings a Sender reads (3 attempts per message, backoff from
10 ms to 100 ms). ``probe`` sends straight through a channel and checks that the test module's
``secret`` fixture (a token, or the secret part of one) never shows in an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from engine.aio import EventLoopThread
from engine.channels.base import AsyncChannel, OutgoingMessage
from engine.channels.http import HttpChannel
from engine.config import Settings
from engine.errors import DeliveryError
from engine.execution.sending import SendOutcome
from engine.ratelimit import MemoryLimiter
from tests.conftest import LOOPBACK_POLICY, make_settings

C = TypeVar("C", bound=HttpChannel)


class ChannelProbe:
    """Drives a channel under test, and checks that its secret never shows."""

    def __init__(self, loop: EventLoopThread, limiter: MemoryLimiter, secret: str) -> None:
        self.loop = loop
        self.limiter = limiter
        self.secret = secret

    def send(self, channel: AsyncChannel, message: OutgoingMessage) -> str | None:
        """Send one message straight through ``channel`` (no Sender), on the loop."""
        return self.loop.run(channel.send_async(message))

    def failure(self, channel: AsyncChannel, message: OutgoingMessage) -> DeliveryError:
        """Send one message that must fail; return the delivery error (checked for the secret)."""
        with pytest.raises(DeliveryError) as caught:
            self.send(channel, message)
        error = caught.value
        assert self.secret not in str(error) and self.secret not in error.message
        assert self.secret not in repr(error.__cause__) + repr(error.__context__)
        return error

    def hidden(self, outcomes: list[SendOutcome]) -> None:
        """Check that no outcome's error message shows the secret."""
        for outcome in outcomes:
            assert self.secret not in (outcome.error_message or "")

    def penalty(self, key: str) -> float | None:
        """The wait the limiter tells a sender on ``key`` now, if it is a penalty (over 0.5 s)."""
        wait = self.limiter.acquire(key, 1, 1e6)
        return wait if wait > 0.5 else None


@pytest.fixture
def loop() -> Iterator[EventLoopThread]:
    """The process's event loop, as workers have it."""
    loop = EventLoopThread("test-aio")
    yield loop
    loop.close()


@pytest.fixture
def open_channel(loop: EventLoopThread) -> Iterator[Callable[[type[C], float], C]]:
    """``open_channel(TelegramChannel, timeout_s)``: a channel on ``loop``, closed afterwards."""
    opened: list[HttpChannel] = []

    def open_channel(cls: type[C], timeout_s: float) -> C:
        channel = cls(loop, timeout_s=timeout_s, max_connections=8, policy=LOOPBACK_POLICY)
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        channel.close()


@pytest.fixture
def limiter() -> MemoryLimiter:
    """The in-process shared rate limiter."""
    return MemoryLimiter()


@pytest.fixture
def send_settings(tmp_path: Path) -> Settings:
    """Test settings: 3 attempts per message, backoff from 10 ms to 100 ms."""
    return make_settings("sqlite://", tmp_path)


@pytest.fixture
def probe(loop: EventLoopThread, limiter: MemoryLimiter, secret: str) -> ChannelProbe:
    """A probe on ``loop`` and ``limiter`` for the module's ``secret``."""
    return ChannelProbe(loop, limiter, secret)
