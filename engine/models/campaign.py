"""Campaigns and their ordered touchpoints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import StatusType, json_column, new_id, utcnow


class CampaignStatus(StrEnum):
    """Lifecycle of a campaign (campaigns API)."""

    draft = "draft"
    scheduled = "scheduled"
    active = "active"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"
    failed = "failed"


class TouchpointType(StrEnum):
    """What a touchpoint does: send a message, or only wait before the next one."""

    message = "message"
    wait = "wait"


class Campaign(SQLModel, table=True):
    """A named sequence of touchpoints sent over one channel to an audience."""

    __tablename__ = "campaigns"

    id: str = Field(default_factory=lambda: new_id("cmp"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    type: str = Field(default="message", max_length=32)
    status: CampaignStatus = Field(default=CampaignStatus.draft, sa_type=StatusType(CampaignStatus))
    #: Channel name (``log``, ``webhook``, ``null`` …) — see ``engine.channels``.
    channel: str = Field(max_length=32)
    #: Channel options, e.g. ``{"url": …}`` for webhook or ``{"rate_per_s": 50}`` — without its
    #: credentials (password, bot token, secret …), which are in ``secrets``.
    channel_config: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    #: Fernet token of the credentials of ``channel_config`` (engine/secrets.py), ``""`` when it
    #: has none; never shown or logged (engine/integrations/channel_accounts.py).
    secrets: str = Field(
        default="", sa_column=sa.Column(sa.Text, nullable=False, server_default="")
    )
    #: What the campaigns API describes beyond the core: goals, targetAudience, messages, strategy,
    #: budget, startDate, endDate, workflow, abTests — kept as given, returned as given.
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=json_column(nullable=False, server_default="{}")
    )
    #: The user (or API key) that created it.
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Touchpoint(SQLModel, table=True):
    """One step of a campaign; ``delay_s`` is the wait after the previous step for a contact."""

    __tablename__ = "touchpoints"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "position"),)

    id: str = Field(default_factory=lambda: new_id("tp"), primary_key=True, max_length=32)
    campaign_id: str = Field(foreign_key="campaigns.id", index=True, max_length=32)
    position: int = Field(ge=0)
    name: str = Field(default="", max_length=200)
    type: str = Field(default=TouchpointType.message, max_length=16)
    delay_s: float = Field(default=0.0, ge=0)
    #: A string, or an object such as ``{"text": "Hi {{ name }}"}`` (SDK reference).
    message: Any = Field(default=None, sa_column=json_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
