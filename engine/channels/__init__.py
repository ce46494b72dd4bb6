"""Channels: one module per way of reaching a contact, behind :class:`Channel`."""

from __future__ import annotations

import threading
from typing import Any

from engine.aio import EventLoopThread
from engine.channels.base import (
    AsyncChannel,
    Channel,
    OutgoingMessage,
    SyncChannel,
    idempotency_key,
)
from engine.channels.email.channel import EmailChannel
from engine.channels.log import LogChannel
from engine.channels.null import NullChannel
from engine.channels.telegram import TelegramChannel
from engine.channels.webhook import WebhookChannel
from engine.channels.whatsapp import WhatsAppChannel
from engine.config import Settings
from engine.errors import ValidationFailed
from engine.outbound import OutboundPolicy
from engine.outbound.policy import process_policy

#: Every channel a campaign may name, by name.
CHANNEL_CLASSES: dict[str, type[SyncChannel] | type[AsyncChannel]] = {
    "null": NullChannel,
    "log": LogChannel,
    "webhook": WebhookChannel,
    "email": EmailChannel,
    "telegram": TelegramChannel,
    "whatsapp": WhatsAppChannel,
}
CHANNEL_NAMES = tuple(CHANNEL_CLASSES)


def _build(name: str, settings: Settings, loop: EventLoopThread) -> Channel:
    ensure_available(name)
    return CHANNEL_CLASSES[name].from_settings(settings, loop)


class ChannelRegistry:
    """Builds each channel once per process and hands out the shared instance."""

    def __init__(self, settings: Settings, loop: EventLoopThread) -> None:
        self._settings = settings
        self._loop = loop
        self._channels: dict[str, Channel] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Channel:
        """Return the channel called ``name``.

        Raises:
            ValidationFailed: the name is not a known channel (code ``UNKNOWN_CHANNEL``).
        """
        with self._lock:
            if name not in self._channels:
                self._channels[name] = _build(name, self._settings, self._loop)
            return self._channels[name]

    def close(self) -> None:
        """Close every channel built so far."""
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()


def validate_channel(
    name: str,
    config: dict[str, Any],
    *,
    check_config: bool = True,
    policy: OutboundPolicy | None = None,
) -> None:
    """Raise :class:`ValidationFailed` unless ``name`` is known and ``config`` suits it.

    Validation is a pure function of the config: it opens no connection. The URLs and hosts
    the config names are checked against the outbound guard even when ``check_config`` is off
    (an incomplete draft): ``policy``, else this process's (``OUTBOUND_ALLOWED_NETWORKS``).

    Raises:
        ValidationFailed: ``UNKNOWN_CHANNEL``, ``INVALID_CHANNEL_CONFIG``, or
            ``OUTBOUND_TARGET_REFUSED`` for a target that can only be internal.
    """
    cls = CHANNEL_CLASSES.get(name)
    if cls is None:
        known = ", ".join(CHANNEL_NAMES)
        raise ValidationFailed(
            f"unknown channel {name!r}; known channels: {known}", code="UNKNOWN_CHANNEL"
        )
    if check_config:
        _check_rate(config.get("rate_per_s"))
        cls.validate_config(config)
    check_targets = getattr(cls, "check_targets", None)
    if check_targets is not None and config:
        check_targets(config, policy or process_policy())


def ensure_available(name: str) -> None:
    """Raise :class:`ValidationFailed` (``UNKNOWN_CHANNEL``) unless this version can send over
    ``name`` (a campaign stored by another version may name a channel this one lacks)."""
    validate_channel(name, {}, check_config=False)


#: Slowest and fastest rate a tenant may set, in messages per second. Below the floor a chunk
#: would hold a worker for hours per contact; above the ceiling the limit means nothing.
MIN_RATE_PER_S, MAX_RATE_PER_S = 0.01, 100_000.0


def _check_rate(rate: Any) -> None:
    """``rate_per_s``, when set, is a number of messages per second within the bounds."""
    if rate is None:
        return
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not MIN_RATE_PER_S <= rate <= MAX_RATE_PER_S
    ):
        raise ValidationFailed(
            f"channel_config.rate_per_s must be a number from {MIN_RATE_PER_S:g} to "
            f"{MAX_RATE_PER_S:g} (got {rate!r})",
            code="INVALID_CHANNEL_CONFIG",
        )


__all__ = [
    "CHANNEL_CLASSES",
    "CHANNEL_NAMES",
    "AsyncChannel",
    "Channel",
    "ChannelRegistry",
    "OutgoingMessage",
    "SyncChannel",
    "ensure_available",
    "idempotency_key",
    "validate_channel",
]
