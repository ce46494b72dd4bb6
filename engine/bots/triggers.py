"""Triggers ("acionamentos", the bot campaigns API): an action fired at once with the JSON a system
posts.

The posted ``json`` object:

* ``bot_name`` — the bot that sends (of the API key's organization); or
* ``action_id`` — an earlier action to fire again: its bot, its ``content`` and its sheet,
  unless the trigger gives its own;
* ``content`` — the message template (required without ``action_id``);
* ``recipients`` — a list of objects, each one row of a sheet (``email`` / ``phone`` /
  ``telegram_chat_id``, ``name``, any other column); without it, the ``json`` object itself is
  the one recipient (a single-contact touchpoint);
* ``campaign_name`` — optional; every other key is a template parameter shared by every
  recipient (a recipient's own value wins).

The trigger is stored with its ``json``; what happened (status and deliveries) is read from
the action it created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from engine.bots.actions import (
    ActionInput,
    LogRow,
    create_action,
    get_bot,
    log_rows,
    refresh_status,
)
from engine.bots.sheets import ADDRESS_COLUMNS, rows_to_sheet
from engine.db import get_owned
from engine.errors import ValidationFailed
from engine.models import Bot, CampaignAction, Trigger
from engine.secrets import SecretKeys

#: Keys of the ``json`` object that steer the trigger (the rest are template parameters).
RESERVED = frozenset({"bot_name", "action_id", "content", "recipients", "campaign_name"})
#: Most recipients one trigger may name.
MAX_RECIPIENTS = 1000


def _fail(message: str, code: str = "INVALID_TRIGGER") -> ValidationFailed:
    return ValidationFailed(message, code=code)


def _source(session: Session, organization_id: str, payload: dict[str, Any]) -> tuple[Bot, Any]:
    """The bot and the earlier action (or ``None``) a trigger names."""
    action_id = payload.get("action_id")
    if action_id is None:
        bot_name = payload.get("bot_name")
        if not isinstance(bot_name, str) or not bot_name:
            raise _fail("json needs bot_name (or action_id): the bot that sends")
        return get_bot(session, organization_id, bot_name), None
    action = get_owned(
        session,
        CampaignAction,
        str(action_id),
        organization_id,
        what="campaign action",
        code="ACTION_NOT_FOUND",
    )
    return session.get_one(Bot, action.bot_id), action


def _recipient_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    params = {k: v for k, v in payload.items() if k not in RESERVED and _scalar(v)}
    given = payload.get("recipients")
    if given is None:
        if not any(params.get(c) for c in ADDRESS_COLUMNS):
            raise _fail("json needs recipients, or its own email, phone or telegram_chat_id")
        return [params]
    if not isinstance(given, list) or not 0 < len(given) <= MAX_RECIPIENTS:
        raise _fail(f"recipients is a list of 1 to {MAX_RECIPIENTS} objects")
    if not all(isinstance(r, dict) and all(_scalar(v) for v in r.values()) for r in given):
        raise _fail("each recipient is an object of texts and numbers")
    return [{**params, **r} for r in given]


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _action_input(payload: dict[str, Any], previous: CampaignAction | None) -> ActionInput:
    content = payload.get("content", previous.content if previous else None)
    if not isinstance(content, str) or not content:
        raise _fail("json needs content: the message template", code="MISSING_CONTENT")
    name = payload.get("campaign_name", previous.campaign_name if previous else "trigger")
    if previous is not None and "recipients" not in payload:
        return ActionInput(
            content=content,
            campaign_name=str(name),
            file=previous.file,
            sheet_values=list(previous.sheet_values),
        )
    return ActionInput(
        content=content,
        campaign_name=str(name),
        sheet_values=rows_to_sheet(_recipient_rows(payload)),
    )


def fire_trigger(
    session: Session,
    secret_key: SecretKeys,
    organization_id: str,
    payload: Any,
    *,
    created_by: str | None = None,
) -> Trigger:
    """Fire an action now with ``payload`` (the posted ``json``); return the stored trigger.

    Raises:
        ValidationFailed: ``INVALID_TRIGGER``, ``MISSING_CONTENT``, ``NO_RECIPIENTS`` …
        NotFound: ``BOT_NOT_FOUND``, ``ACTION_NOT_FOUND``.
    """
    if not isinstance(payload, dict):
        raise _fail("json must be an object")
    bot, previous = _source(session, organization_id, payload)
    action = create_action(
        session, secret_key, bot, _action_input(payload, previous), created_by=created_by
    )
    trigger = Trigger(
        organization_id=organization_id, bot_id=bot.id, action_id=action.id, payload=payload
    )
    session.add(trigger)
    session.flush()
    return trigger


def get_trigger(session: Session, organization_id: str, trigger_id: int) -> Trigger:
    """One trigger of the organization.

    Raises:
        NotFound: ``TRIGGER_NOT_FOUND``.
    """
    return get_owned(
        session, Trigger, trigger_id, organization_id, what="trigger", code="TRIGGER_NOT_FOUND"
    )


@dataclass(frozen=True)
class TriggerReport:
    """What became of a trigger: the stored trigger, the action it created (status refreshed),
    the bot that sends and one log row per recipient."""

    trigger: Trigger
    action: CampaignAction
    bot: Bot
    deliveries: list[LogRow]


def trigger_report(session: Session, trigger: Trigger) -> TriggerReport:
    """What happened: the action's status (the bot campaigns API's), its error and deliveries."""
    action = refresh_status(session, session.get_one(CampaignAction, trigger.action_id))
    bot = session.get_one(Bot, trigger.bot_id)
    return TriggerReport(
        trigger=trigger, action=action, bot=bot, deliveries=log_rows(session, action)
    )
