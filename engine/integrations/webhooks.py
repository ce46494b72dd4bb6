"""Lifecycle webhooks: subscribe, emit events through the outbox, deliver them signed, in order.

``emit`` writes the event and one delivery row per matching subscription in the caller's
transaction, so an event exists if and only if its change was committed. The scheduler claims
due deliveries (the oldest undelivered event of each subscription first, so a receiver sees
events in order); a worker POSTs them signed with HMAC-SHA256 of the body; failures are retried
with exponential backoff and logged per delivery. A subscription's secret is stored encrypted
(engine/secrets.py) and shown once, when it is created.

Receivers are reached through the outbound guard (the worker's client, engine/outbound): an
internal address is refused when subscribed (``OUTBOUND_TARGET_REFUSED``) and when sent to
(the delivery fails at once, not retried); redirects are not followed and answers not read.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.db import get_owned, table_of
from engine.errors import ValidationFailed
from engine.logging import get_logger
from engine.models import (
    WEBHOOK_EVENTS,
    OutboxEvent,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookSubscription,
)
from engine.models.base import iso, utcnow
from engine.outbound import OutboundPolicy, TargetRefused, check_configured_url
from engine.outbound.policy import process_policy
from engine.secrets import SecretKeys, decrypt_text, encrypt_text
from engine.signing import sign

log = get_logger()

#: Attempts per event and subscription before the delivery is marked failed.
MAX_ATTEMPTS = 8
#: Backoff before attempt n+1: ``BASE_BACKOFF_S * 2**(n-1)`` (plus up to 20 % jitter), capped.
BASE_BACKOFF_S = 1.0
MAX_BACKOFF_S = 3600.0
#: A delivery in ``sending`` longer than this is taken for lost (its worker died).
SENDING_STALE_S = 120.0


def subscribe(
    session: Session,
    organization_id: str,
    url: str,
    events: list[str],
    secret: str | None = None,
    *,
    secret_key: SecretKeys,
    policy: OutboundPolicy | None = None,
) -> tuple[WebhookSubscription, str]:
    """Create a subscription; a secret is generated when none is given.

    ``secret_key`` (``Settings.verification_keys``) encrypts the stored secret; ``policy`` says
    which internal networks may be subscribed (default: this process's).

    Returns:
        The subscription, and its signing secret in clear (to show this once).

    Raises:
        ValidationFailed: not an http(s) URL (``INVALID_URL``), an internal address
            (``OUTBOUND_TARGET_REFUSED``), no events, or an unknown event name.
    """
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc or len(url) > 2000:
        raise ValidationFailed("url must be an http(s) URL", code="INVALID_URL")
    check_configured_url(url, policy or process_policy(), "url")
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if not events or unknown:
        raise ValidationFailed(
            f"events must be among {', '.join(WEBHOOK_EVENTS)}"
            + (f" (unknown: {unknown})" if unknown else ""),
            code="INVALID_EVENTS",
        )
    if secret is not None and not 8 <= len(secret) <= 200:
        raise ValidationFailed("secret must have 8 to 200 characters", code="INVALID_SECRET")
    secret = secret or secrets.token_urlsafe(32)
    subscription = WebhookSubscription(
        organization_id=organization_id,
        url=url,
        events=sorted(set(events)),
        secret=encrypt_text(secret_key, secret),
    )
    session.add(subscription)
    session.flush()
    return subscription, secret


def get_subscription(
    session: Session, organization_id: str, subscription_id: str
) -> WebhookSubscription:
    """Return the organization's subscription.

    Raises:
        NotFound: no such subscription in the organization.
    """
    return get_owned(
        session,
        WebhookSubscription,
        subscription_id,
        organization_id,
        what="webhook",
        code="WEBHOOK_NOT_FOUND",
    )


def list_subscriptions(session: Session, organization_id: str) -> list[WebhookSubscription]:
    """The organization's subscriptions, oldest first."""
    return list(
        session.exec(
            select(WebhookSubscription)
            .where(col(WebhookSubscription.organization_id) == organization_id)
            .order_by(col(WebhookSubscription.created_at))
        )
    )


def unsubscribe(session: Session, organization_id: str, subscription_id: str) -> None:
    """Deactivate a subscription: no new deliveries; its log stays readable."""
    get_subscription(session, organization_id, subscription_id).active = False
    session.flush()


def emit(session: Session, organization_id: str, event: str, data: dict[str, Any]) -> None:
    """Record a lifecycle event and its deliveries, in the caller's transaction."""
    subscriptions = [
        s
        for s in session.exec(
            select(WebhookSubscription).where(
                col(WebhookSubscription.organization_id) == organization_id,
                col(WebhookSubscription.active).is_(True),
            )
        )
        if event in s.events
    ]
    if not subscriptions:
        return  # nobody listens: nothing to keep
    now = utcnow()
    outbox = OutboxEvent(
        organization_id=organization_id,
        event=event,
        payload={"event": event, "occurredAt": iso(now), "data": data},
        created_at=now,
    )
    session.add(outbox)
    session.flush()
    assert outbox.id is not None
    for subscription in subscriptions:
        session.add(
            WebhookDelivery(
                subscription_id=subscription.id, event_id=outbox.id, next_attempt_at=now
            )
        )
    session.flush()


def emit_campaign(
    session: Session, event: str, campaign: Any, execution: Any = None, **extra: Any
) -> None:
    """Emit a lifecycle event about ``campaign`` (and its ``execution``)."""
    data: dict[str, Any] = {
        "campaignId": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
    }
    if execution is not None:
        data |= {
            "executionId": execution.id,
            "executionStatus": execution.status,
            "progress": {
                "processed": execution.processed,
                "total": execution.total,
                "successful": execution.successful,
                "failed": execution.failed,
            },
        }
    emit(session, campaign.organization_id, event, data | extra)


def claim_due_deliveries(session: Session, limit: int = 100) -> list[int]:
    """Move due deliveries to ``sending`` (the oldest pending event of each subscription only).

    Also takes back deliveries stuck in ``sending`` (their worker died).

    Returns:
        Ids of the deliveries to hand to workers.
    """
    now = utcnow()
    session.execute(
        sa.update(WebhookDelivery)
        .where(
            col(WebhookDelivery.status) == WebhookDeliveryStatus.sending,
            col(WebhookDelivery.next_attempt_at) < now - timedelta(seconds=SENDING_STALE_S),
        )
        .values(status=WebhookDeliveryStatus.pending)
    )
    earlier = table_of(WebhookDelivery).alias("earlier")
    blocked = sa.exists().where(
        earlier.c.subscription_id == col(WebhookDelivery.subscription_id),
        earlier.c.event_id < col(WebhookDelivery.event_id),
        earlier.c.status.in_([WebhookDeliveryStatus.pending, WebhookDeliveryStatus.sending]),
    )
    candidates = (
        sa.select(col(WebhookDelivery.id))
        .where(
            col(WebhookDelivery.status) == WebhookDeliveryStatus.pending,
            col(WebhookDelivery.next_attempt_at) <= now,
            ~blocked,
        )
        .order_by(col(WebhookDelivery.event_id))
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    result = session.execute(
        sa.update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id).in_(sa.select(candidates.c[0])),
            col(WebhookDelivery.status) == WebhookDeliveryStatus.pending,
        )
        .values(status=WebhookDeliveryStatus.sending, next_attempt_at=now)
        .returning(col(WebhookDelivery.id))
    )
    return [row[0] for row in result]


def deliver(
    session_factory: Any, http: httpx.Client, delivery_id: int, secret_key: SecretKeys
) -> str:
    """POST one delivery and record the answer; return its new status.

    Reads in one transaction, sends outside any transaction, records in another;
    ``secret_key`` decrypts the subscription's signing secret.
    """
    with session_factory() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.status != WebhookDeliveryStatus.sending:
            return "stale"
        subscription = session.get_one(WebhookSubscription, delivery.subscription_id)
        event = session.get_one(OutboxEvent, delivery.event_id)
        body = json.dumps(
            {"id": f"evt_{event.id}", **event.payload}, separators=(",", ":")
        ).encode()
        url, event_name = subscription.url, event.event
        stored_secret = subscription.secret
    try:
        secret = decrypt_text(secret_key, stored_secret)
    except ValidationFailed as exc:  # SECRET_KEY changed without its fallback: retried later
        with session_factory() as session:
            return _record(session, delivery_id, None, exc.message)
    headers = {
        "Content-Type": "application/json",
        "X-Signature": sign(secret, body),
        "X-Event": event_name,
        "X-Delivery-Id": str(delivery_id),
    }
    code: int | None = None
    error: str | None = None
    final = False
    try:
        # Streamed and closed unread: only the status counts, a body is never read.
        with http.stream("POST", url, content=body, headers=headers) as response:
            code = response.status_code
        if 300 <= code < 400:
            error = f"receiver answered {code}, a redirect: not followed (subscribe the final URL)"
        elif code >= 400:
            error = f"receiver answered {code}"
    except TargetRefused as exc:
        error, final = f"{exc.code}: {exc.message}"[:500], True
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    with session_factory() as session:
        return _record(session, delivery_id, code, error, final=final)


def _record(
    session: Session,
    delivery_id: int,
    code: int | None,
    error: str | None,
    *,
    final: bool = False,
) -> str:
    """Record an attempt; a ``final`` error (a refused target) fails the delivery at once."""
    delivery = session.get_one(WebhookDelivery, delivery_id)
    now = utcnow()
    delivery.attempts += 1
    delivery.last_status_code = code
    delivery.last_error = error
    if error is None:
        delivery.status = WebhookDeliveryStatus.delivered
        delivery.delivered_at = now
    elif final or delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = WebhookDeliveryStatus.failed
    else:
        backoff = min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** (delivery.attempts - 1))
        delivery.status = WebhookDeliveryStatus.pending
        delivery.next_attempt_at = now + timedelta(seconds=backoff * (1 + random.random() / 5))
    log.info(
        "webhook.attempted",
        delivery_id=delivery_id,
        status=delivery.status,
        code=code,
        attempts=delivery.attempts,
    )
    session.flush()
    return str(delivery.status)


@dataclass(frozen=True)
class LoggedDelivery:
    """One lifecycle event's delivery to a subscription, and the event's name."""

    delivery: WebhookDelivery
    event: str


def delivery_log(
    session: Session, organization_id: str, subscription_id: str, limit: int = 100
) -> list[LoggedDelivery]:
    """The subscription's deliveries, newest first: event, status, attempts, last answer."""
    get_subscription(session, organization_id, subscription_id)
    rows = session.execute(
        sa.select(WebhookDelivery, col(OutboxEvent.event))
        .join(OutboxEvent, col(OutboxEvent.id) == col(WebhookDelivery.event_id))
        .where(col(WebhookDelivery.subscription_id) == subscription_id)
        .order_by(col(WebhookDelivery.event_id).desc())
        .limit(limit)
    ).all()
    return [LoggedDelivery(d, event) for d, event in rows]
