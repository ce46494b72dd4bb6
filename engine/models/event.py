"""Engagement events: what providers and clients report after a message was sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import BigIntId, json_column, utcnow


class EngagementType(StrEnum):
    """What happened to a message, or because of it."""

    delivered = "delivered"
    read = "read"
    clicked = "clicked"
    failed = "failed"
    converted = "converted"
    unsubscribed = "unsubscribed"


class EngagementEvent(SQLModel, table=True):
    """One engagement event of one contact in one campaign.

    ``dedup_key`` is unique when set: a provider retrying the same status callback, or a client
    re-posting a conversion with the same ``eventId``, inserts nothing the second time.
    ``delivered``, ``read`` and ``failed`` are keyed by the delivery (once each per message);
    clicks through a tracking link are not keyed (every click is stored; statistics count
    unique clickers).
    """

    __tablename__ = "engagement_events"
    __table_args__ = (
        sa.UniqueConstraint("dedup_key"),
        sa.Index("ix_engagement_events_campaign", "campaign_id", "type", "occurred_at"),
        sa.Index("ix_engagement_events_provider_message_id", "provider_message_id"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    organization_id: str = Field(max_length=32)
    campaign_id: str = Field(max_length=32)
    #: The execution (and message) it is attributed to; ``None``: a conversion of a contact
    #: the campaign never messaged (stored, not counted).
    execution_id: str | None = Field(default=None, max_length=32)
    touchpoint_id: str | None = Field(default=None, max_length=32)
    contact_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    type: str = Field(max_length=16)
    provider_message_id: str | None = Field(default=None, max_length=200)
    #: The target of a click.
    url: str | None = Field(default=None, max_length=2000)
    #: Revenue of a conversion.
    value: float | None = Field(
        default=None, sa_column=sa.Column(sa.Numeric(18, 4, asdecimal=False), nullable=True)
    )
    dedup_key: str | None = Field(default=None, max_length=300)
    occurred_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
