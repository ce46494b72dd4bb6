"""The bot platform's campaign module (bot campaigns API): bots, campaign actions, their log files.

An action becomes an ordinary engine campaign: its recipients go into a contact list of their
own, the campaign sends ``content`` over the bot's channel (and channel account) to that list,
and an execution is scheduled at ``scheduled_date``. The action's status is read through from
that execution. Triggers are in :mod:`engine.bots.triggers`.

Why this module is long (about 440 lines): it is the one service of the bot campaigns API's
campaign module (``engine/api/routes/builder.py`` calls it as ``service``, and
:mod:`engine.bots.triggers` builds on it), in three short sections read together: bots (about
75 lines), actions (about 175) and an action's log file and counts (about 100). An action's
status, its log file and its counts are all read through from the one execution it started;
apart, the sections would import each other's helpers (``refresh_status``, the bot lookups)
for no module that stands alone. The answers' wire shapes are the API's
(``engine/api/bot_campaigns.py``); the log file's CSV is a file format and stays here.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.audience.contact_data import register_fields
from engine.audience.contact_upsert import ContactRow, ContactTarget, insert_contacts
from engine.bots.sheets import (
    Recipients,
    decode_file,
    read_sheet,
    recipient_of,
    recipients,
)
from engine.campaigns.campaign import (
    TouchpointSpec,
    check_length,
    create_campaign,
    get_organization_by_name,
)
from engine.channels import ensure_available
from engine.csv_cells import neutralise_row
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.execution.runs import cancel_execution, start_execution
from engine.models import (
    ActionStatus,
    Bot,
    CampaignAction,
    Contact,
    ContactList,
    Delivery,
    Execution,
    ExecutionStatus,
    Organization,
)
from engine.models.base import as_utc, from_iso, iso, utcnow
from engine.secrets import SecretKeys
from engine.templating import check_template

#: The bot campaigns API's status of an action for each execution status.
STATUS_OF_EXECUTION = {
    ExecutionStatus.scheduled: ActionStatus.not_started,
    ExecutionStatus.queued: ActionStatus.not_started,
    ExecutionStatus.running: ActionStatus.in_progress,
    ExecutionStatus.paused: ActionStatus.in_progress,
    ExecutionStatus.completed: ActionStatus.concluded,
    ExecutionStatus.failed: ActionStatus.error,
    ExecutionStatus.cancelled: ActionStatus.error,
}
#: Columns of an action's log file.
LOG_COLUMNS = ("recipient", "status", "error_code", "time", "detail")


@dataclass(frozen=True)
class ActionInput:
    """What a new action is made of (the bot campaigns API's request body, less what the engine
    sets)."""

    content: str
    campaign_name: str = ""
    name: str = ""
    description: str = ""
    scheduled_date: str | None = None
    file: str | None = None
    sheet_values: list[str] = field(default_factory=list)


# --- bots ------------------------------------------------------------------------------------


def create_bot(
    session: Session, organization_id: str, name: str, channel: str, account: str | None = None
) -> Bot:
    """Create a bot of the organization sending over ``channel`` (with channel ``account``).

    Raises:
        ValidationFailed: bad name, unknown channel. Conflict: ``BOT_EXISTS``.
    """
    check_length("name", name, 200, required=True)
    ensure_available(channel)
    if account is not None:
        check_length("account", account, 100, required=True)
    if _find_bot(session, organization_id, name) is not None:
        raise Conflict(f"a bot named {name!r} exists in this organization", code="BOT_EXISTS")
    bot = Bot(organization_id=organization_id, name=name, channel=channel, account=account)
    session.add(bot)
    session.flush()
    return bot


def create_bot_for(
    session: Session, organization: str, name: str, channel: str, account: str | None = None
) -> Bot:
    """Create a bot of the organization called ``organization`` (``campaign admin create-bot``).

    Raises:
        NotFound: no such organization; and what :func:`create_bot` raises.
    """
    org = get_organization_by_name(session, organization)
    return create_bot(session, org.id, name, channel, account)


def list_bots(session: Session, organization_id: str) -> list[Bot]:
    """The organization's bots by name."""
    query = select(Bot).where(col(Bot.organization_id) == organization_id)
    return list(session.exec(query.order_by(col(Bot.name))))


def _find_bot(session: Session, organization_id: str, name: str) -> Bot | None:
    query = select(Bot).where(col(Bot.organization_id) == organization_id, col(Bot.name) == name)
    return session.exec(query).first()


def get_bot(session: Session, organization_id: str, name: str) -> Bot:
    """The organization's bot called ``name``.

    Raises:
        NotFound: ``BOT_NOT_FOUND``.
    """
    bot = _find_bot(session, organization_id, name)
    if bot is None:
        raise NotFound(f"bot {name!r} not found", code="BOT_NOT_FOUND")
    return bot


def resolve_bot(
    session: Session, caller_organization_id: str, organization_name: str, bot_name: str
) -> tuple[Organization, Bot]:
    """The organization and bot named in a path, for a caller of ``caller_organization_id``.

    Another organization's name answers as if it did not exist (nothing leaks).

    Raises:
        NotFound: ``ORGANIZATION_NOT_FOUND`` or ``BOT_NOT_FOUND``.
    """
    org = session.exec(select(Organization).where(Organization.name == organization_name)).first()
    if org is None or org.id != caller_organization_id:
        raise NotFound(
            f"organization {organization_name!r} not found", code="ORGANIZATION_NOT_FOUND"
        )
    return org, get_bot(session, org.id, bot_name)


# --- actions ---------------------------------------------------------------------------------


def parse_scheduled_date(value: str | None) -> datetime:
    """An ISO 8601 date-time (UTC when it has no zone); none or empty means now.

    Raises:
        ValidationFailed: ``INVALID_SCHEDULED_DATE``.
    """
    if value is None or not value.strip():
        return utcnow()
    try:
        return from_iso(value)
    except ValueError as exc:
        raise ValidationFailed(
            f"scheduled_date {value!r} is not an ISO 8601 date-time (e.g. 2026-05-01T14:30:00Z)",
            code="INVALID_SCHEDULED_DATE",
        ) from exc


def _sheet_text(data: ActionInput) -> str:
    if data.sheet_values:
        if not all(isinstance(v, str) for v in data.sheet_values):
            raise ValidationFailed("sheet_values holds strings (CSV lines)", code="INVALID_SHEET")
        return "\n".join(data.sheet_values)
    if data.file:
        return decode_file(data.file)
    raise ValidationFailed(
        "give the recipients in sheet_values (CSV lines, the first a header) or file",
        code="NO_RECIPIENTS",
    )


def _message(bot: Bot, data: ActionInput) -> Any:
    if not data.content.strip():
        raise ValidationFailed("content (the message) is required", code="MISSING_CONTENT")
    check_template(data.content)
    if bot.channel == "email":
        return {"subject": data.campaign_name or data.name or bot.name, "text": data.content}
    return data.content


def _check_input(data: ActionInput) -> datetime:
    when = parse_scheduled_date(data.scheduled_date)
    check_length("campaign_name", data.campaign_name, 200)
    check_length("name", data.name, 200)
    check_length("description", data.description, 2000)
    return when


def create_action(
    session: Session,
    secret_key: SecretKeys,
    bot: Bot,
    data: ActionInput,
    *,
    created_by: str | None = None,
) -> CampaignAction:
    """Store an action, its recipients, its campaign and its execution (at ``scheduled_date``).

    Rows that can't be sent are kept for the log file; the others are sent.

    Raises:
        ValidationFailed: ``INVALID_SCHEDULED_DATE``, ``MISSING_CONTENT``, a bad template,
            ``INVALID_SHEET``, ``INVALID_FILE``, ``NO_RECIPIENTS`` (no row can be sent),
            ``MISSING_CREDENTIALS`` (the bot's channel account lacks them).
    """
    when = _check_input(data)
    message = _message(bot, data)
    _, rows, malformed = read_sheet(_sheet_text(data))
    found = recipients(rows, bot.channel)
    invalid = sorted(malformed + found.invalid, key=lambda r: int(r["row"]))
    if not found.contacts:
        raise ValidationFailed(
            f"no row of the sheet can be sent ({len(invalid)} invalid)", code="NO_RECIPIENTS"
        )
    action = CampaignAction(
        organization_id=bot.organization_id,
        bot_id=bot.id,
        campaign_name=data.campaign_name,
        name=data.name,
        description=data.description,
        scheduled_date=when,
        file=data.file,
        content=data.content,
        sheet_values=list(data.sheet_values),
        invalid_rows=invalid,
    )
    session.add(action)
    session.flush()
    action.list_id = _store_contacts(session, action, found)
    campaign = create_campaign(
        session,
        bot.organization_id,
        data.campaign_name or data.name or f"{bot.name} {action.id}",
        bot.channel,
        [TouchpointSpec(message=message, name=data.name or "message")],
        channel_config={"account": bot.account} if bot.account else {},
        description=data.description,
        details={"targetAudience": {"lists": [action.list_id]}, "bot": bot.name},
        created_by=created_by,
    )
    execution = start_execution(session, campaign.id, secret_key=secret_key, scheduled_at=when)
    action.campaign_id, action.execution_id = campaign.id, execution.id
    session.flush()
    return action


def _store_contacts(session: Session, action: CampaignAction, found: Recipients) -> int:
    # Private: these recipients get this action's message, not the organization's next campaign.
    contact_list = ContactList(
        organization_id=action.organization_id, name=f"bot action {action.id}", private=True
    )
    session.add(contact_list)
    session.flush()
    assert contact_list.id is not None
    target = ContactTarget.of(session, action.organization_id, contact_list.id)
    insert_contacts(session, target, [ContactRow(**contact) for contact in found.contacts])
    register_fields(
        session, action.organization_id, {k for c in found.contacts for k in c["fields"]}
    )
    session.flush()
    return contact_list.id


def refresh_status(session: Session, action: CampaignAction) -> CampaignAction:
    """Bring ``status`` and ``error`` up to date with the action's execution."""
    execution = session.get(Execution, action.execution_id) if action.execution_id else None
    if execution is None:
        return action
    status = STATUS_OF_EXECUTION.get(ExecutionStatus(execution.status), ActionStatus.error)
    error = None
    if execution.status == ExecutionStatus.failed:
        error = execution.error or "the execution failed"
    elif execution.status == ExecutionStatus.cancelled:
        error = "cancelled"
    if (action.status, action.error) != (status, error):
        action.status, action.error = status, error
        session.flush()
    return action


def get_action(session: Session, bot: Bot, action_id: str) -> CampaignAction:
    """One action of the bot, its status refreshed.

    Raises:
        NotFound: ``ACTION_NOT_FOUND``.
    """
    action = session.get(CampaignAction, action_id)
    if action is None or action.bot_id != bot.id:
        raise NotFound(f"campaign action {action_id!r} not found", code="ACTION_NOT_FOUND")
    return refresh_status(session, action)


def list_actions(session: Session, bot: Bot) -> list[CampaignAction]:
    """The bot's actions, newest first, statuses refreshed."""
    query = select(CampaignAction).where(col(CampaignAction.bot_id) == bot.id)
    found = list(session.exec(query.order_by(col(CampaignAction.creation_date).desc())))
    return [refresh_status(session, action) for action in found]


def cancel_action(session: Session, bot: Bot, action_id: str) -> CampaignAction:
    """Cancel an action that has not finished (its status becomes ``error``: ``cancelled``).

    Raises:
        NotFound: ``ACTION_NOT_FOUND``. InvalidTransition: ``CANNOT_CANCEL`` once it finished.
    """
    action = get_action(session, bot, action_id)
    if action.execution_id:
        cancel_execution(session, action.execution_id, action.organization_id)
    return refresh_status(session, action)


# --- log file --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRow:
    """One recipient of an action and what became of it (a line of its log file).

    ``status`` is ``sent``, ``failed`` or ``skipped`` (from the delivery), ``pending`` (not
    delivered yet), ``not_sent`` (the action ended without it) or ``invalid`` (a bad row);
    ``time`` is the delivery's (an invalid row's: the action's creation), ``None`` before one.
    """

    recipient: str
    status: str
    error_code: str = ""
    time: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class ActionCounts:
    """How many recipients an action has, and how many were sent, failed, invalid."""

    total: int
    sent: int
    failed: int
    invalid: int


def log_rows(session: Session, action: CampaignAction) -> list[LogRow]:
    """One row per recipient: the delivered or pending ones, then the invalid rows."""
    ended = action.status in (ActionStatus.concluded, ActionStatus.error)
    rows = [
        _log_row(contact, delivery, ended) for contact, delivery in _deliveries(session, action)
    ]
    created = as_utc(action.creation_date)
    rows += [
        LogRow(
            recipient=bad["recipient"],
            status="invalid",
            error_code=bad["code"],
            time=created,
            detail=f"row {bad['row']}: {bad['message']}",
        )
        for bad in action.invalid_rows
    ]
    return rows


def _deliveries(session: Session, action: CampaignAction) -> list[tuple[Contact, Delivery | None]]:
    on = sa.and_(
        col(Delivery.contact_id) == col(Contact.id),
        col(Delivery.execution_id) == (action.execution_id or ""),
    )
    query = (
        select(Contact, Delivery)
        .outerjoin(Delivery, on)  # type: ignore[arg-type]
        .where(col(Contact.list_id) == action.list_id)
        .order_by(col(Contact.id))
    )
    return [(contact, delivery) for contact, delivery in session.exec(query)]


def _log_row(contact: Contact, delivery: Delivery | None, ended: bool) -> LogRow:
    recipient = recipient_of(contact.email, contact.phone, contact.fields or {})
    if delivery is None:
        return LogRow(recipient=recipient, status="not_sent" if ended else "pending")
    return LogRow(
        recipient=recipient,
        status=delivery.status,
        error_code=delivery.error_code or "",
        time=as_utc(delivery.created_at),
    )


def log_csv(session: Session, action: CampaignAction) -> str:
    """The action's log file as CSV text (header ``recipient,status,error_code,time,detail``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LOG_COLUMNS)
    # Recipients and details come from the sheet a third party filled: no cell may run.
    writer.writerows(
        neutralise_row((row.recipient, row.status, row.error_code, iso(row.time) or "", row.detail))
        for row in log_rows(session, action)
    )
    return buffer.getvalue()


def counts(session: Session, action: CampaignAction) -> ActionCounts:
    """How many recipients the action has, and how many were sent, failed, invalid."""
    execution = session.get(Execution, action.execution_id) if action.execution_id else None
    invalid = len(action.invalid_rows)
    if execution is None:
        return ActionCounts(total=invalid, sent=0, failed=0, invalid=invalid)
    return ActionCounts(
        total=execution.total + invalid,
        sent=execution.successful,
        failed=execution.failed + execution.skipped,
        invalid=invalid,
    )
