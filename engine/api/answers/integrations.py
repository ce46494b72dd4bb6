"""Answers about the edges to other systems: channel accounts, lifecycle webhooks and their
delivery log, conversions and provider status callbacks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from engine.api.answers.base import Time, WireModel
from engine.integrations.events import StatusReport
from engine.integrations.webhooks import LoggedDelivery
from engine.models import (
    WEBHOOK_EVENTS,
    ChannelAccount,
    EngagementEvent,
    WebhookDeliveryStatus,
    WebhookSubscription,
)


class ChannelAccountOut(WireModel):
    """A provider account: its settings, and only the names of its secrets."""

    id: str
    channel: str
    name: str
    settings: dict[str, Any]
    secrets: list[str]
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, account: ChannelAccount) -> ChannelAccountOut:
        """From the stored account (its secrets never leave it)."""
        return cls(
            id=account.id,
            channel=account.channel,
            name=account.name,
            settings=account.settings,
            secrets=account.secret_names,
            created_at=account.created_at,
            updated_at=account.updated_at,
        )


class ChannelAccountList(BaseModel):
    """``{"channels": [...]}``."""

    channels: list[ChannelAccountOut]


class ConversionOut(WireModel):
    """A recorded conversion, attributed to an execution when the contact was messaged."""

    id: int
    type: Literal["conversion"] = "conversion"
    contact_id: int
    campaign_id: str
    execution_id: str | None
    attributed: bool
    value: float | None
    occurred_at: Time

    @classmethod
    def of(cls, event: EngagementEvent) -> ConversionOut:
        """From the stored conversion event."""
        assert event.id is not None and event.contact_id is not None  # read from the store
        return cls(
            id=event.id,
            contact_id=event.contact_id,
            campaign_id=event.campaign_id,
            execution_id=event.execution_id,
            attributed=event.execution_id is not None,
            value=event.value,
            occurred_at=event.occurred_at,
        )


class StatusReportOut(BaseModel):
    """What became of a provider callback's statuses (``/api/v1/providers/…``)."""

    recorded: int
    duplicates: int
    ignored: int
    unmatched: int = Field(description="for messages the engine does not know")
    pending: int = Field(description="for messages not recorded yet: the answer is then 503")

    @classmethod
    def of(cls, report: StatusReport) -> StatusReportOut:
        """From the callback's report."""
        return cls.model_validate(report, from_attributes=True)


class WebhookOut(WireModel):
    """A lifecycle webhook subscription (its secret is shown once, at creation)."""

    id: str
    url: str
    events: list[str]
    active: bool
    created_at: Time

    @classmethod
    def of(cls, subscription: WebhookSubscription) -> WebhookOut:
        """From the stored subscription (without its secret)."""
        return cls.model_validate(subscription)


class WebhookDeliveryOut(WireModel):
    """One lifecycle event's delivery to a subscription: its status, attempts, last answer."""

    id: int
    event_id: str
    event: str
    status: str
    attempts: int
    status_code: int | None
    error: str | None
    next_attempt_at: Time
    delivered_at: Time
    created_at: Time

    @classmethod
    def of(cls, logged: LoggedDelivery) -> WebhookDeliveryOut:
        """From the logged delivery (the next attempt only while one is pending)."""
        d = logged.delivery
        assert d.id is not None  # read from the store
        pending = d.status == WebhookDeliveryStatus.pending
        return cls(
            id=d.id,
            event_id=f"evt_{d.event_id}",
            event=logged.event,
            status=d.status,
            attempts=d.attempts,
            status_code=d.last_status_code,
            error=d.last_error,
            next_attempt_at=d.next_attempt_at if pending else None,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
        )


class WebhookCreated(WebhookOut):
    """A new subscription: its signing secret (shown this once) and the events there are."""

    secret: str
    available_events: list[str] = Field(default_factory=lambda: list(WEBHOOK_EVENTS))

    @classmethod
    def created(cls, subscription: WebhookSubscription, secret: str) -> WebhookCreated:
        """The new subscription and its signing secret."""
        return cls(**WebhookOut.of(subscription).model_dump(), secret=secret)
