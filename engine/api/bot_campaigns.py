"""Answers of the bot campaigns API (``/builder``): its own snake_case shapes, no envelope, built
from the bot services' domain objects (``engine.bots``).

Field names are the API document's (``_id``, ``scheduled_date``, ``sheet_values`` …), plus what
the engine adds (``error``, ``counts``, ``campaign_id``, ``execution_id``); times are ISO 8601
in UTC with a ``Z``. The login's tokens are ``engine.api.responses.BotTokens``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from engine.bots.actions import ActionCounts
from engine.bots.triggers import TriggerReport
from engine.models import ActionStatus, Bot, CampaignAction
from engine.models.base import as_utc, iso

#: ``POST /builder/triggers``: the new trigger's id, a bare number (the document's sample: ``0``).
TriggerId = Annotated[int, Field(description="the trigger's id (GET /builder/triggers/{id})")]

#: A stored time as the API writes it: ISO 8601 in UTC with a ``Z``.
UtcTime = Annotated[datetime, PlainSerializer(lambda t: iso(as_utc(t)), return_type=str)]
#: A log row's time, empty before a delivery.
RowTime = Annotated[datetime | None, PlainSerializer(lambda t: iso(t) or "", return_type=str)]

#: The stored action's columns an answer shows as they are.
_ACTION_COLUMNS = (
    *("id", "scheduled_date", "campaign_name", "status", "creation_date", "description"),
    *("name", "file", "content", "sheet_values", "error", "campaign_id", "execution_id"),
)


class CsvResponse(PlainTextResponse):
    """A CSV file (an action's log file): ``text/csv; charset=utf-8``."""

    media_type = "text/csv"


class BotCampaignsModel(BaseModel):
    """An answer of the bot campaigns API, read from a domain object's attributes."""

    model_config = ConfigDict(from_attributes=True)


class BotOut(BotCampaignsModel):
    """A bot of the caller's organization."""

    id: str
    name: str
    channel: str
    account: str | None = Field(description="the channel account it sends with (null: default)")
    created_at: UtcTime

    @classmethod
    def of(cls, bot: Bot) -> BotOut:
        """From the stored bot."""
        return cls.model_validate(bot)


class CountsOut(BotCampaignsModel):
    """An action's recipients: all of them, and how many were sent, failed, invalid."""

    total: int
    sent: int
    failed: int
    invalid: int


class ActionOut(BotCampaignsModel):
    """A campaign action as the bot campaigns API's document shows it, plus ``error``,
    ``counts`` and the engine's campaign and execution ids."""

    id: str = Field(serialization_alias="_id", description="the engine's id (act_…)")
    organization: str
    scheduled_date: UtcTime
    campaign_name: str
    status: ActionStatus
    bot_name: str
    creation_date: UtcTime
    description: str
    name: str
    file: str | None
    content: str
    sheet_values: list[str]
    log_file: str = Field(description="the path of the action's log file (CSV)")
    error: str | None = Field(description="why the status is error (e.g. cancelled)")
    counts: CountsOut
    campaign_id: str | None
    execution_id: str | None

    @classmethod
    def of(
        cls,
        action: CampaignAction,
        *,
        organization: str,
        bot: Bot,
        log_file: str,
        counts: ActionCounts,
    ) -> ActionOut:
        """From the stored action (status refreshed), its organization and bot, the path of its
        log file and its counts."""
        stored = {column: getattr(action, column) for column in _ACTION_COLUMNS}
        given = {"organization": organization, "bot_name": bot.name, "log_file": log_file}
        return cls.model_validate({**stored, **given, "counts": counts})


class DeliveryOut(BotCampaignsModel):
    """One recipient of a trigger and what became of it: a row of the action's log file."""

    recipient: str
    status: str = Field(description="sent, failed, skipped, pending, not_sent or invalid")
    error_code: str
    time: RowTime = Field(description="ISO 8601; empty before a delivery")
    detail: str


class TriggerOut(BotCampaignsModel):
    """``GET /builder/triggers/{id}``: what became of a trigger."""

    id: int
    status: ActionStatus
    error: str | None
    bot_name: str
    action_id: str
    created_at: UtcTime
    json_: dict[str, Any] = Field(serialization_alias="json", description="the json as posted")
    deliveries: list[DeliveryOut]

    @classmethod
    def of(cls, report: TriggerReport) -> TriggerOut:
        """From the trigger's report."""
        trigger, action = report.trigger, report.action
        assert trigger.id is not None
        deliveries = [DeliveryOut.model_validate(row) for row in report.deliveries]
        return cls(
            id=trigger.id,
            status=ActionStatus(action.status),
            error=action.error,
            bot_name=report.bot.name,
            action_id=action.id,
            created_at=trigger.created_at,
            json_=trigger.payload,
            deliveries=deliveries,
        )
