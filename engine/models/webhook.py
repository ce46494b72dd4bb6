"""Lifecycle webhooks: subscriptions, the outbox of events, and each delivery's log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import BigIntId, StatusType, json_column, new_id, utcnow

#: Campaign lifecycle events a webhook subscription can receive.
WEBHOOK_EVENTS = (
    "campaign.created",
    "campaign.started",
    "campaign.completed",
    "campaign.failed",
    "campaign.paused",
    "campaign.resumed",
    "campaign.cancelled",
)


class WebhookDeliveryStatus(StrEnum):
    """``pending`` until a 2xx (``delivered``) or the last attempt (``failed``)."""

    pending = "pending"
    sending = "sending"
    delivered = "delivered"
    failed = "failed"


class WebhookSubscription(SQLModel, table=True):
    """An organization's endpoint for some lifecycle events; bodies are signed with ``secret``."""

    __tablename__ = "webhook_subscriptions"

    id: str = Field(default_factory=lambda: new_id("whk"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    #: Fernet token of the shared secret for the HMAC-SHA256 signature (engine/secrets.py):
    #: decrypted to sign; shown once, at creation, never after.
    secret: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class OutboxEvent(SQLModel, table=True):
    """A lifecycle event, written in the same transaction as the change it reports."""

    __tablename__ = "outbox_events"

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    organization_id: str = Field(max_length=32, index=True)
    event: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription: its attempts and the receiver's last answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "event_id"),
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    subscription_id: str = Field(foreign_key="webhook_subscriptions.id", max_length=32)
    event_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    status: WebhookDeliveryStatus = Field(
        default=WebhookDeliveryStatus.pending, sa_type=StatusType(WebhookDeliveryStatus)
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
