"""The bot platform's campaign module (bot campaigns API): bots, campaign actions and triggers.

A :class:`Bot` belongs to one organization and sends over one channel (with one of the
organization's channel accounts). A :class:`CampaignAction` is a campaign scheduled for a bot
from a sheet of recipients; it runs as an ordinary engine campaign and execution. A
:class:`Trigger` ("acionamento") fires an action at once with the JSON it was given.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import BigIntId, StatusType, json_column, new_id, utcnow


class ActionStatus(StrEnum):
    """The bot campaigns API's status of a campaign action, read through from its execution."""

    not_started = "not_started"
    in_progress = "in_progress"
    concluded = "concluded"
    error = "error"


class Bot(SQLModel, table=True):
    """A chatbot of an organization: its name is unique there; it sends over ``channel``."""

    __tablename__ = "bots"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name", name="uq_bots_org_name"),)

    id: str = Field(default_factory=lambda: new_id("bot"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    name: str = Field(max_length=200)
    #: Channel name (``log``, ``telegram``, ``whatsapp``, ``email`` …).
    channel: str = Field(max_length=32)
    #: The organization's channel account it sends with (``None``: the channel's default).
    account: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)


class CampaignAction(SQLModel, table=True):
    """A campaign of a bot built from a sheet (``sheet_values``) or a CSV ``file``."""

    __tablename__ = "campaign_actions"

    id: str = Field(default_factory=lambda: new_id("act"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    bot_id: str = Field(foreign_key="bots.id", index=True, max_length=32)
    campaign_name: str = Field(default="", max_length=200)
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    scheduled_date: datetime = Field(default_factory=utcnow)
    creation_date: datetime = Field(default_factory=utcnow)
    #: As given: a CSV as a ``data:`` URL or base64 text, or only a file name with a sheet.
    file: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    content: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    sheet_values: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    #: Last status seen (refreshed from the execution whenever the action is read).
    status: ActionStatus = Field(default=ActionStatus.not_started, sa_type=StatusType(ActionStatus))
    #: Why the action is in ``error``.
    error: str | None = Field(default=None, max_length=2000)
    #: Rows that could not be sent: ``[{"row", "recipient", "code", "message"}]``.
    invalid_rows: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=json_column(nullable=False)
    )
    list_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("contact_lists.id"), nullable=True),
    )
    campaign_id: str | None = Field(default=None, foreign_key="campaigns.id", max_length=32)
    execution_id: str | None = Field(default=None, foreign_key="executions.id", max_length=32)


class Trigger(SQLModel, table=True):
    """An "acionamento": an action fired at once with the JSON a system posted."""

    __tablename__ = "bot_triggers"

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    bot_id: str = Field(foreign_key="bots.id", max_length=32)
    action_id: str = Field(foreign_key="campaign_actions.id", max_length=32)
    #: The ``json`` object as posted.
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
