"""Engagement events: provider status callbacks, clicks, conversions and unsubscriptions.

Provider statuses are matched to deliveries by the provider's message id, within the
organization and channel of the account the callback came for. Every write is idempotent where
the sender may retry: ``delivered``, ``read`` and ``failed`` count once per delivery, a
conversion posted twice with the same ``eventId`` once (``EngagementEvent.dedup_key``).
See docs/engagement.md.

Why this module is long (about 415 lines): it is the one service behind the events API
(``engine/api/routes/events.py`` calls it as ``service``), and every event it records (a
provider status, a click, an unsubscription, a conversion) is a row of ``engagement_events``
written through the same idempotent insert (``_insert``, keyed by ``dedup_key``). Its sections
(callback authentication, provider statuses, clicks and unsubscriptions, conversions) are each
under 150 lines; split, they would only share that insert through one more module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.audience.contacts import get_contact
from engine.audience.subscriptions import unsubscribe
from engine.campaigns.campaign import get_campaign
from engine.channels.statuses import MAX_STATUSES, StatusUpdate, parse_time
from engine.db import insert_ignore, table_of
from engine.errors import AuthenticationFailed, NotFound, ValidationFailed
from engine.logging import get_logger
from engine.models import (
    Campaign,
    ChannelAccount,
    Contact,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    EngagementType,
    Execution,
)
from engine.models.base import utcnow
from engine.secrets import SecretKeys, decrypt_json
from engine.signing import verify

log = get_logger()

#: Provider status words and the event each records (others, such as ``sent``, are ignored).
STATUS_EVENTS = {
    "delivered": EngagementType.delivered,
    "read": EngagementType.read,
    "opened": EngagementType.read,
    "clicked": EngagementType.clicked,
    "failed": EngagementType.failed,
    "bounced": EngagementType.failed,
    "undelivered": EngagementType.failed,
}
#: A status reported this recently for a message not recorded yet is answered "retry later":
#: its delivery row is written when the worker records the send batch, which may be after the
#: provider calls. A status without a reported time (or with one that can't be read) is never
#: pending: nothing would ever make it old, so a provider would retry it forever.
PENDING_WINDOW = timedelta(minutes=10)
#: Largest conversion value accepted.
MAX_VALUE = 1e12


@dataclass
class StatusReport:
    """What became of a callback's statuses."""

    recorded: int = 0
    duplicates: int = 0
    ignored: int = 0
    #: Unknown message ids (another system's messages, or deliveries deleted since).
    unmatched: int = 0
    #: Unknown ids with a reported time within :data:`PENDING_WINDOW`: worth retrying.
    pending: int = 0


@dataclass(frozen=True)
class _DeliveryRef:
    id: int
    organization_id: str
    campaign_id: str
    execution_id: str
    touchpoint_id: str
    contact_id: int
    provider_message_id: str


# --- signatures and accounts ---------------------------------------------------------------


def check_signature(secret: Any, body: bytes, header: str | None) -> None:
    """Check ``header`` is ``sha256=<hex HMAC-SHA256 of body with secret>``.

    Raises:
        AuthenticationFailed: ``INVALID_SIGNATURE`` (also when the account has no secret).
    """
    if not isinstance(secret, str) or not secret or not header:
        raise AuthenticationFailed("missing or unverifiable signature", code="INVALID_SIGNATURE")
    if not verify(secret, body, header):
        raise AuthenticationFailed("the signature does not match", code="INVALID_SIGNATURE")


def callback_account(
    session: Session, secret_key: SecretKeys, channel: str, account_id: str
) -> tuple[ChannelAccount, dict[str, Any]]:
    """The channel account a callback is for, with its decrypted secrets.

    Secrets that can't be decrypted (another ``SECRET_KEY``) are logged and read as none, so
    the caller — not authenticated yet — is answered as for a bad signature, never told why.

    Raises:
        NotFound: ``ACCOUNT_NOT_FOUND`` (no such account on that channel).
    """
    account = session.get(ChannelAccount, account_id) if len(account_id) <= 32 else None
    if account is None or account.channel != channel:
        raise NotFound(f"no {channel} account {account_id!r}", code="ACCOUNT_NOT_FOUND")
    try:
        return account, decrypt_json(secret_key, account.secrets)
    except ValidationFailed as exc:
        log.error("callback.credentials_unreadable", account_id=account.id, error=exc.message)
        return account, {}


# --- provider statuses -----------------------------------------------------------------------


def generic_statuses(payload: Any) -> list[StatusUpdate]:
    """The statuses of a generic callback: one object or a list of them.

    Each has ``provider_message_id`` (or ``message_id``), ``status`` and optionally
    ``occurred_at`` (ISO 8601 or Unix seconds).

    Raises:
        ValidationFailed: ``INVALID_PAYLOAD`` naming what is wrong.
    """
    items = payload if isinstance(payload, list) else [payload]
    if not items or len(items) > MAX_STATUSES:
        raise ValidationFailed(f"give 1 to {MAX_STATUSES} statuses", code="INVALID_PAYLOAD")
    updates = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValidationFailed(f"status {i} is not an object", code="INVALID_PAYLOAD")
        message_id = item.get("provider_message_id", item.get("message_id"))
        status = item.get("status")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= 200:
            raise ValidationFailed(
                f"status {i}: provider_message_id is required", code="INVALID_PAYLOAD"
            )
        if status not in STATUS_EVENTS:
            raise ValidationFailed(
                f"status {i}: status is one of {', '.join(STATUS_EVENTS)}", code="INVALID_PAYLOAD"
            )
        updates.append(StatusUpdate(message_id, status, parse_time(item.get("occurred_at"))))
    return updates


def _bare(message_id: str) -> str:
    """A message id without the angle brackets of an email ``Message-ID``."""
    return message_id.strip().removeprefix("<").removesuffix(">")


def _find_deliveries(
    session: Session, organization_id: str, channel: str, message_ids: Iterable[str]
) -> dict[str, _DeliveryRef]:
    """The latest delivery of each provider message id (bare), in the organization's channel."""
    wanted = {v for m in message_ids for v in (m, _bare(m), f"<{_bare(m)}>") if len(v) <= 200}
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(
            col(Delivery.id),
            col(Execution.organization_id),
            col(Execution.campaign_id),
            col(Delivery.execution_id),
            col(Delivery.touchpoint_id),
            col(Delivery.contact_id),
            col(Delivery.provider_message_id),
        )
        .join(Execution, col(Execution.id) == col(Delivery.execution_id))
        .join(Campaign, col(Campaign.id) == col(Execution.campaign_id))
        .where(
            col(Delivery.provider_message_id).in_(sorted(wanted)),
            col(Execution.organization_id) == organization_id,
            col(Campaign.channel) == channel,
        )
        .order_by(col(Delivery.id))
    ).all()
    return {_bare(row.provider_message_id): _DeliveryRef(*row) for row in rows}


def _insert(session: Session, row: dict[str, Any]) -> int | None:
    """Insert an event unless its ``dedup_key`` is taken; its id, or ``None`` if it was."""
    table = table_of(EngagementEvent)
    now = utcnow()
    values = {"occurred_at": now, "created_at": now, "data": {}, **row}
    dialect = session.get_bind().dialect.name
    inserted = session.execute(
        insert_ignore(table, dialect).values(**values).returning(table.c.id)
    ).first()
    return int(inserted[0]) if inserted is not None else None


def record_statuses(
    session: Session, organization_id: str, channel: str, updates: list[StatusUpdate]
) -> StatusReport:
    """Store provider statuses as events of the deliveries they are about.

    ``delivered``, ``read`` and ``failed`` are stored once per delivery; a ``clicked`` status
    once per delivery and reported time. An unknown id is ``pending`` only when its reported
    time is within :data:`PENDING_WINDOW`; otherwise, or without a reported time, ``unmatched``.
    """
    report = StatusReport()
    known = _find_deliveries(
        session, organization_id, channel, (u.provider_message_id for u in updates)
    )
    for update in updates:
        kind = STATUS_EVENTS.get(update.status)
        delivery = known.get(_bare(update.provider_message_id))
        if kind is None:
            report.ignored += 1
        elif delivery is None:
            recent = _may_be_pending(update)
            report.pending += recent
            report.unmatched += not recent
        elif _insert(session, _status_row(delivery, kind, update)) is not None:
            report.recorded += 1
        else:
            report.duplicates += 1
    return report


def _may_be_pending(update: StatusUpdate) -> bool:
    """Whether an unknown message id may still be recorded: the provider *reported* it within
    :data:`PENDING_WINDOW`. The time the callback arrives is no evidence (a retry arrives
    "now" forever), so without a reported time the id is unmatched."""
    return update.occurred_at is not None and update.occurred_at > utcnow() - PENDING_WINDOW


def _status_row(delivery: _DeliveryRef, kind: str, update: StatusUpdate) -> dict[str, Any]:
    dedup = f"{kind}:{delivery.id}"
    if kind == EngagementType.clicked and update.occurred_at is not None:
        dedup += f":{update.occurred_at.isoformat()}"
    return {
        "organization_id": delivery.organization_id,
        "campaign_id": delivery.campaign_id,
        "execution_id": delivery.execution_id,
        "touchpoint_id": delivery.touchpoint_id,
        "contact_id": delivery.contact_id,
        "type": kind,
        "provider_message_id": delivery.provider_message_id,
        "dedup_key": dedup,
        "occurred_at": update.occurred_at or utcnow(),
        "data": {"status": update.status, **update.data},
    }


# --- clicks, unsubscriptions, conversions ----------------------------------------------------


def record_click(
    session: Session, execution_id: str, touchpoint_id: str, contact_id: int, url: str
) -> bool:
    """Store a click on a tracking link (every click; statistics count unique clickers).

    Returns ``False`` (nothing stored) when the execution no longer exists.
    """
    execution = session.get(Execution, execution_id)
    if execution is None:
        return False
    _insert(
        session,
        {
            "organization_id": execution.organization_id,
            "campaign_id": execution.campaign_id,
            "execution_id": execution_id,
            "touchpoint_id": touchpoint_id,
            "contact_id": contact_id,
            "type": EngagementType.clicked,
            "url": url[:2000],
        },
    )
    return True


def record_unsubscribe(
    session: Session,
    organization_id: str,
    campaign_id: str,
    execution_id: str,
    touchpoint_id: str,
    contact_id: int,
) -> bool:
    """Unsubscribe the contact from a message's link; an ``unsubscribed`` event if it is new.

    Returns whether the contact was subscribed until now.

    Raises:
        NotFound: the contact no longer exists.
    """
    contact = session.get(Contact, contact_id)
    was_subscribed = contact is not None and contact.unsubscribed_at is None
    unsubscribe(session, organization_id, contact_id)
    if was_subscribed:
        _insert(
            session,
            {
                "organization_id": organization_id,
                "campaign_id": campaign_id,
                "execution_id": execution_id,
                "touchpoint_id": touchpoint_id,
                "contact_id": contact_id,
                "type": EngagementType.unsubscribed,
                "dedup_key": f"unsubscribed:{execution_id}:{contact_id}",
            },
        )
    return was_subscribed


@dataclass(frozen=True)
class Conversion:
    """A conversion the client reports."""

    campaign_id: str
    contact_id: int
    value: float | None = None
    occurred_at: Any = None
    #: The client's id of the conversion: posting it again records nothing new.
    event_id: str | None = None


def _check_conversion(session: Session, organization_id: str, conversion: Conversion) -> None:
    get_campaign(session, conversion.campaign_id, organization_id)
    get_contact(session, organization_id, conversion.contact_id)
    value = conversion.value
    if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_VALUE):
        raise ValidationFailed(f"value is a number from 0 to {MAX_VALUE:.0f}", code="INVALID_VALUE")
    if conversion.event_id is not None and not 0 < len(conversion.event_id) <= 100:
        raise ValidationFailed("eventId has 1 to 100 characters", code="INVALID_EVENT_ID")


def _attribution(session: Session, campaign_id: str, contact_id: int) -> tuple[str, str] | None:
    """``(execution, touchpoint)`` of the contact's latest message of the campaign, real runs
    before test runs; ``None`` if the campaign never reached the contact."""
    row = session.execute(
        sa.select(col(Delivery.execution_id), col(Delivery.touchpoint_id))
        .join(Execution, col(Execution.id) == col(Delivery.execution_id))
        .where(
            col(Execution.campaign_id) == campaign_id,
            col(Delivery.contact_id) == contact_id,
            col(Delivery.status) == DeliveryStatus.sent,
        )
        .order_by(col(Execution.test_mode), col(Delivery.id).desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def record_conversion(
    session: Session, organization_id: str, conversion: Conversion
) -> tuple[EngagementEvent, bool]:
    """Store a conversion, attributed to the campaign's latest message to the contact.

    A conversion of a contact the campaign never messaged is stored unattributed (no
    execution) and not counted in statistics.

    Returns:
        The event and whether it is new (``False``: its ``eventId`` was posted before).

    Raises:
        NotFound: ``CAMPAIGN_NOT_FOUND`` / ``CONTACT_NOT_FOUND`` in the organization.
        ValidationFailed: ``INVALID_VALUE``, ``INVALID_TIME``, ``INVALID_EVENT_ID``.
    """
    _check_conversion(session, organization_id, conversion)
    occurred_at = parse_time(conversion.occurred_at) or utcnow()
    attributed = _attribution(session, conversion.campaign_id, conversion.contact_id)
    dedup = f"converted:{organization_id}:{conversion.event_id}" if conversion.event_id else None
    new_id = _insert(
        session,
        {
            "organization_id": organization_id,
            "campaign_id": conversion.campaign_id,
            "execution_id": attributed[0] if attributed else None,
            "touchpoint_id": attributed[1] if attributed else None,
            "contact_id": conversion.contact_id,
            "type": EngagementType.converted,
            "value": conversion.value,
            "dedup_key": dedup,
            "occurred_at": occurred_at,
            "data": {"eventId": conversion.event_id} if conversion.event_id else {},
        },
    )
    where = (
        col(EngagementEvent.id) == new_id
        if new_id is not None
        else col(EngagementEvent.dedup_key) == dedup
    )
    return session.scalars(sa.select(EngagementEvent).where(where)).one(), new_id is not None
