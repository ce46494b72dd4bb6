"""Sending one message with retries, and a batch of them.

Transient errors are retried with tenacity: exponential backoff with jitter, never shorter than
the provider's ``retry_after``, which also pushes the shared rate-limit key for every worker.
Local channels send from the worker thread; network channels send a whole batch concurrently on
the process's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from engine.aio import EventLoopThread
from engine.channels import AsyncChannel, Channel, OutgoingMessage, SyncChannel
from engine.config import Settings
from engine.errors import DeliveryError, TransientDeliveryError
from engine.logging import get_logger
from engine.models import DeliveryStatus
from engine.outages import ServiceOutage, is_outage, through_outages
from engine.ratelimit import Limiter

log = get_logger()

#: Longest provider retry-after we wait inside a chunk; beyond it the delivery fails as retryable.
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What happened to one message: ``sent`` or ``failed`` (with a code), after ``attempts``."""

    contact_id: int
    status: str
    attempts: int
    error_code: str | None = None
    error_message: str | None = None
    provider_message_id: str | None = None
    variation: str | None = None


class BatchInterrupted(Exception):
    """A batch stopped part-way by an outage: ``outcomes`` of the messages that were sent.

    They must be recorded like any other: those contacts were reached.
    """

    def __init__(self, outcomes: list[SendOutcome], cause: BaseException) -> None:
        super().__init__(f"batch interrupted after {len(outcomes)} sends: {cause}")
        self.outcomes = outcomes
        self.cause = cause


def _ids(message: OutgoingMessage) -> dict[str, object]:
    # Explicit, not contextvars: async sends run on the event loop's thread and context.
    return {
        "execution_id": message.execution_id,
        "campaign_id": message.campaign_id,
        "contact_id": message.contact_id,
    }


def _failure(message: OutgoingMessage, exc: Exception, attempts: int) -> SendOutcome:
    """Turn the exception that ended a send into its outcome (and a log line)."""
    ids = _ids(message)
    if isinstance(exc, DeliveryError):
        code, text = exc.code, exc.message
    else:  # a channel bug must not lose the rest of the chunk
        log.error("delivery.error", **ids, exc_info=exc)
        code, text = "INTERNAL_ERROR", str(exc)[:500]
    log.info("delivery.failed", **ids, code=code, attempts=attempts)
    return SendOutcome(
        message.contact_id, DeliveryStatus.failed, attempts, code, text, variation=message.variation
    )


def _success(message: OutgoingMessage, provider_id: str | None, attempts: int) -> SendOutcome:
    log.debug("delivery.sent", **_ids(message), attempts=attempts)
    return SendOutcome(
        message.contact_id,
        DeliveryStatus.sent,
        attempts,
        provider_message_id=provider_id,
        variation=message.variation,
    )


class Sender:
    """Sends messages of one campaign through one channel under one rate-limit key."""

    def __init__(
        self,
        channel: Channel,
        limiter: Limiter,
        settings: Settings,
        loop: EventLoopThread,
        rate: float | None,
        rate_key: str,
    ) -> None:
        self.channel = channel
        # Checked once: isinstance against a runtime Protocol costs ~25 µs, per message it showed.
        self._async = isinstance(channel, AsyncChannel)
        self.limiter = limiter
        self.loop = loop
        self.rate = rate
        self.rate_key = rate_key
        self._concurrency = settings.send_concurrency
        self._limiter_wait_s = settings.limiter_wait_s
        self._stop = stop_after_attempt(settings.send_max_attempts)
        self._retry = retry_if_exception_type(TransientDeliveryError)
        self._backoff = wait_exponential_jitter(
            multiplier=settings.send_backoff_initial_s,
            jitter=settings.send_backoff_initial_s,
            max=settings.send_backoff_max_s,
        )

    @property
    def concurrency(self) -> int:
        """Messages of one batch in flight at once on a network channel."""
        return self._concurrency

    @property
    def is_network(self) -> bool:
        """Whether the channel sends over the network (its messages reach people)."""
        return self._async

    def reserve(self, n: int) -> float:
        """Reserve ``n`` sends under the key's rate; return the seconds to wait before them.

        An unreachable limiter is waited for (``limiter_wait_s``): sending never goes on
        without it, since that would exceed the provider's limit.

        Raises:
            ServiceOutage: the limiter stayed unreachable.
        """
        if not self.rate:
            return 0.0
        rate = self.rate
        return through_outages(
            lambda: self.limiter.acquire(self.rate_key, n, rate),
            "limiter",
            wait_s=self._limiter_wait_s,
        )

    def _wait(self, state: RetryCallState) -> float:
        """Backoff before the next attempt: never shorter than the provider's retry-after."""
        backoff = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return max(backoff, min(float(retry_after), MAX_RETRY_AFTER_S)) if retry_after else backoff

    def _penalize(self, exc: TransientDeliveryError) -> None:
        """Push the key's next free time for every worker by the provider's retry-after.

        Best effort: with the limiter unreachable this message still backs off by itself.
        """
        if not exc.retry_after:
            return
        try:
            self.limiter.penalize(self.rate_key, min(exc.retry_after, MAX_RETRY_AFTER_S))
        except Exception as error:
            if not is_outage(error):
                raise
            log.warning("limiter.penalize_failed", error=str(error)[:200])

    def send_one(self, message: OutgoingMessage) -> SendOutcome:
        """Send one message on a local channel, retrying transient errors; never raises.

        The first attempt runs bare: most messages succeed at once, and building tenacity's
        retry state for each of them cost more than a local channel's send.
        """
        channel = cast(SyncChannel, self.channel)
        try:
            return _success(message, channel.send(message), 1)
        except TransientDeliveryError as exc:
            first: TransientDeliveryError = exc
        except ServiceOutage:
            raise  # the limiter, not the message: the chunk waits, the contact isn't failed
        except Exception as exc:
            return _failure(message, exc, 1)
        attempts = 1
        try:
            for attempt in Retrying(
                stop=self._stop, wait=self._wait, retry=self._retry, reraise=True
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    if attempts == 1:  # the bare attempt's error: tenacity backs off from it
                        self._penalize(first)
                        raise first
                    time.sleep(self.reserve(1))
                    try:
                        provider_id = channel.send(message)
                    except TransientDeliveryError as exc:
                        self._penalize(exc)
                        raise
        except ServiceOutage:
            raise
        except Exception as exc:
            return _failure(message, exc, attempts)
        return _success(message, provider_id, attempts)

    async def send_one_async(self, message: OutgoingMessage) -> SendOutcome:
        """Send one message on a network channel, retrying transient errors; never raises.

        The first attempt runs bare, as in :meth:`send_one`.
        """
        channel = cast(AsyncChannel, self.channel)
        try:
            return _success(message, await channel.send_async(message), 1)
        except TransientDeliveryError as exc:
            first: TransientDeliveryError = exc
        except ServiceOutage:
            raise
        except Exception as exc:
            return _failure(message, exc, 1)
        attempts = 1
        retrying = AsyncRetrying(stop=self._stop, wait=self._wait, retry=self._retry, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    if attempts == 1:  # the bare attempt's error: tenacity backs off from it
                        # The limiter may call Redis: off the event loop, never blocking it.
                        await asyncio.to_thread(self._penalize, first)
                        raise first
                    await asyncio.sleep(await asyncio.to_thread(self.reserve, 1))
                    try:
                        provider_id = await channel.send_async(message)
                    except TransientDeliveryError as exc:
                        await asyncio.to_thread(self._penalize, exc)
                        raise
        except ServiceOutage:
            raise  # the limiter, not the message: the chunk waits, the contact isn't failed
        except Exception as exc:
            return _failure(message, exc, attempts)
        return _success(message, provider_id, attempts)

    async def _send_all_async(self, messages: list[OutgoingMessage]) -> list[SendOutcome]:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(message: OutgoingMessage) -> SendOutcome:
            async with gate:
                return await self.send_one_async(message)

        results = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
        outcomes = [r for r in results if isinstance(r, SendOutcome)]
        errors = [r for r in results if not isinstance(r, SendOutcome)]
        if errors:
            raise BatchInterrupted(outcomes, errors[0])
        return outcomes

    def send_batch(
        self, messages: list[OutgoingMessage], on_wait: Callable[[float], None] | None = None
    ) -> list[SendOutcome]:
        """Take tokens for the whole batch at once, wait for them, then send it.

        Network channels send the batch concurrently on the event loop; local ones in order.
        ``on_wait(seconds)`` hears how long the rate limit makes the batch wait (heartbeats).

        Raises:
            ServiceOutage: the limiter is unreachable; nothing of the batch was sent.
            BatchInterrupted: it became unreachable during a retry; what was sent is attached.
        """
        wait = self.reserve(len(messages))
        if on_wait is not None:
            on_wait(wait)
        if wait > 0:
            time.sleep(wait)
        if self._async:
            return self.loop.run(self._send_all_async(messages))
        outcomes: list[SendOutcome] = []
        for message in messages:
            try:
                outcomes.append(self.send_one(message))
            except ServiceOutage as exc:
                raise BatchInterrupted(outcomes, exc) from exc
        return outcomes
