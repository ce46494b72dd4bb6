"""What campaigns target: saved segments, the suppression list and each execution's recipients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import BigIntId, json_column, new_id, utcnow


class Segment(SQLModel, table=True):
    """A named condition over an organization's contacts (the contact lists API's condition
    language)."""

    __tablename__ = "segments"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    id: str = Field(default_factory=lambda: new_id("seg"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    condition: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Suppression(SQLModel, table=True):
    """An address never to be messaged by the organization (an email or a phone number)."""

    __tablename__ = "suppressions"
    __table_args__ = (sa.UniqueConstraint("organization_id", "address"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    #: A normalised email (lower-case) or phone number, as contacts store them.
    address: str = Field(max_length=320)
    reason: str = Field(default="manual", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class ExecutionRecipient(SQLModel, table=True):
    """A contact an execution targets, frozen when the execution is planned.

    Chunks are contact-id ranges over these rows, so every step of every chunk sends to exactly
    the audience resolved at planning, however contacts or segments change afterwards.
    """

    __tablename__ = "execution_recipients"

    #: No foreign key on purpose: checking one per row tripled the time to freeze 1,000,000
    #: recipients (bench/audience.py). Deleting a campaign deletes its recipients.
    execution_id: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    contact_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))


class ChannelBlock(SQLModel, table=True):
    """A contact a channel can no longer reach (the user blocked the bot …): never targeted there.

    Written when a delivery fails with a blocking code (``USER_BLOCKED``); other channels still
    reach the contact.
    """

    __tablename__ = "channel_blocks"

    contact_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    channel: str = Field(primary_key=True, max_length=32)
    code: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
