"""Contacts: the people campaigns reach."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import BigIntId, json_column, utcnow


class Contact(SQLModel, table=True):
    """A person of an organization's audience.

    Ids are integers so an audience splits into chunks of contiguous id ranges.
    """

    __tablename__ = "contacts"
    __table_args__ = (sa.Index("ix_contacts_org_id", "organization_id", "id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    unsubscribed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
