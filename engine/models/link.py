"""What links in messages refer to: the small ids that keep click and unsubscribe tokens short."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import BigIntId, json_column, utcnow


class MessageLinks(SQLModel, table=True):
    """The links of one message step in one execution, written once when its first chunk is
    claimed (never once per message).

    A link token names this row by its small ``id`` instead of carrying the organization,
    campaign, execution and touchpoint ids; a click token names its target by its position in
    ``urls`` (the URLs written in the step's template), so a token stays short enough for a
    plain ``List-Unsubscribe`` header. No foreign keys: a link in an old email must keep
    working (an unsubscription) after its campaign is gone.
    """

    __tablename__ = "message_links"
    __table_args__ = (sa.UniqueConstraint("execution_id", "touchpoint_id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    organization_id: str = Field(max_length=32)
    campaign_id: str = Field(max_length=32)
    execution_id: str = Field(max_length=32)
    touchpoint_id: str = Field(max_length=32)
    #: The http(s) URLs of the step's template, in order of appearance: a click token's target
    #: number is an index into it (a URL a template builds per contact travels in the token).
    urls: list[Any] = Field(default_factory=list, sa_column=json_column(nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
