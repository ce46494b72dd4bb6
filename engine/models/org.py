"""Organizations: every other row belongs to one."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from engine.models.base import new_id, utcnow


class Organization(SQLModel, table=True):
    """A tenant. Campaigns, contacts and executions are always scoped by organization."""

    __tablename__ = "organizations"

    id: str = Field(default_factory=lambda: new_id("org"), primary_key=True, max_length=32)
    name: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
