"""Sending one message with retries, and a batch of them concurrently.

Transient errors are retried with tenacity: exponential backoff with jitter, never shorter than
the provider's ``retry_after``, which also pushes the shared rate-limit key for every worker.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from engine.channels import Channel, OutgoingMessage
from engine.config import Settings
from engine.errors import DeliveryError, TransientDeliveryError
from engine.logging import get_logger
from engine.models import DeliveryStatus
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


class Sender:
    """Sends messages of one campaign through one channel under one rate-limit key."""

    def __init__(
        self,
        channel: Channel,
        limiter: Limiter,
        settings: Settings,
        rate_key: str,
        rate: float | None,
    ) -> None:
        self.channel = channel
        self.limiter = limiter
        self.rate_key = rate_key
        self.rate = rate
        self._stop = stop_after_attempt(settings.send_max_attempts)
        self._backoff = wait_exponential_jitter(
            multiplier=settings.send_backoff_initial_s,
            jitter=settings.send_backoff_initial_s,
            max=settings.send_backoff_max_s,
        )

    def throttle(self, n: int) -> None:
        """Block until ``n`` more messages may go out under the key's rate."""
        if self.rate:
            wait = self.limiter.acquire(self.rate_key, n, self.rate)
            if wait > 0:
                time.sleep(wait)

    def _wait(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            retry_after = min(float(retry_after), MAX_RETRY_AFTER_S)
            self.limiter.penalize(self.rate_key, retry_after)
            return max(backoff, retry_after)
        return backoff

    def send_one(self, message: OutgoingMessage) -> SendOutcome:
        """Send one message, retrying transient errors; never raises for delivery failures."""
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception_type(TransientDeliveryError),
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    if attempts > 1:
                        self.throttle(1)
                    provider_id = self.channel.send(message)
        except DeliveryError as exc:
            log.info(
                "delivery.failed",
                execution_id=message.execution_id,
                contact_id=message.contact_id,
                code=exc.code,
                attempts=attempts,
            )
            return SendOutcome(
                message.contact_id, DeliveryStatus.failed, attempts, exc.code, exc.message
            )
        except Exception as exc:  # a channel bug must not lose the rest of the chunk
            log.exception(
                "delivery.error", execution_id=message.execution_id, contact_id=message.contact_id
            )
            return SendOutcome(
                message.contact_id,
                DeliveryStatus.failed,
                attempts,
                "INTERNAL_ERROR",
                str(exc)[:500],
            )
        return SendOutcome(
            message.contact_id, DeliveryStatus.sent, attempts, provider_message_id=provider_id
        )

    def send_batch(self, messages: list[OutgoingMessage], pool: Executor) -> list[SendOutcome]:
        """Take tokens for the whole batch at once, then send it.

        Channels that wait on the network send the batch concurrently on ``pool``.
        """
        self.throttle(len(messages))
        if self.channel.concurrent and len(messages) > 1:
            return list(pool.map(self.send_one, messages))
        return [self.send_one(m) for m in messages]
