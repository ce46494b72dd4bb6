"""An organization's credentials for a provider (a bot token, an SMTP login …), encrypted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import json_column, new_id, utcnow


class ChannelAccount(SQLModel, table=True):
    """How one organization reaches one provider: public settings plus encrypted secrets.

    Campaigns of the organization on that channel use its account named in
    ``channel_config.account`` (default: the account named ``default``, or the only one).
    """

    __tablename__ = "channel_accounts"
    __table_args__ = (sa.UniqueConstraint("organization_id", "channel", "name"),)

    id: str = Field(default_factory=lambda: new_id("cha"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    channel: str = Field(max_length=32)
    name: str = Field(default="default", max_length=100)
    #: Settings that may be shown (host, port, from_email, phone_number_id, base_url …).
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    #: Fernet token of the secret settings (engine/secrets.py); never shown or logged.
    secrets: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    #: Names of the secret settings (shown, so users see what is set; values never are).
    secret_names: list[str] = Field(default_factory=list, sa_column=json_column())
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
