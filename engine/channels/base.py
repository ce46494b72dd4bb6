"""The channel interface: what every way of reaching a contact implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    from engine.aio import EventLoopThread
    from engine.config import Settings


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One rendered message for one contact, ready to hand to a channel.

    Attributes:
        idempotency_key: stable for (execution, touchpoint, contact); channels pass it on.
        recipient: the contact's addressable fields (``id``, ``email``, ``phone``, ``name``).
        body: the rendered message (a string or an object).
        config: the campaign's channel configuration.
        variation: the A/B variation this contact receives (``None`` without variations).
    """

    execution_id: str
    campaign_id: str
    touchpoint_id: str
    contact_id: int
    idempotency_key: str
    recipient: dict[str, Any]
    body: Any
    config: dict[str, Any] = field(default_factory=dict)
    variation: str | None = None


def idempotency_key(execution_id: str, touchpoint_id: str, contact_id: int) -> str:
    """Return the idempotency key of one delivery: the same on every retry and re-run."""
    return f"{execution_id}:{touchpoint_id}:{contact_id}"


class ChannelBase(Protocol):
    """What every channel (``null``, ``log``, ``webhook`` …) has.

    One instance per worker process, shared by its threads: implementations are thread-safe.
    Sending is in :class:`SyncChannel` (local work) or :class:`AsyncChannel` (network I/O).
    Either returns the provider's message id (or ``None``) and raises
    :class:`~engine.errors.TransientDeliveryError` or
    :class:`~engine.errors.PermanentDeliveryError` when it cannot deliver.
    """

    #: Registry name, as campaigns spell it.
    name: str

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Raise :class:`~engine.errors.ValidationFailed` when ``config`` cannot work.

        A static method: the registry validates a campaign's config on the channel class,
        without building (and connecting) an instance.
        """

    @classmethod
    def from_settings(cls, settings: Settings, loop: EventLoopThread) -> Self:
        """Build the process's instance: how a channel joins the registry (one line in
        :data:`engine.channels.CHANNEL_CLASSES`)."""

    def rate_key(self, config: dict[str, Any]) -> str:
        """Return the rate-limit key: the provider account this config sends through."""

    def close(self) -> None:
        """Release connections and files."""


@runtime_checkable
class SyncChannel(ChannelBase, Protocol):
    """A channel whose sends are local and quick (``null``, ``log``): called from worker threads."""

    def send(self, message: OutgoingMessage) -> str | None:
        """Deliver one message; return the provider's message id."""


@runtime_checkable
class AsyncChannel(ChannelBase, Protocol):
    """A channel that waits on the network: many sends at once on the process's event loop."""

    async def send_async(self, message: OutgoingMessage) -> str | None:
        """Deliver one message; return the provider's message id."""


#: Any channel.
Channel = SyncChannel | AsyncChannel
