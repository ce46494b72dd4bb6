"""``/api/v1/webhooks``: lifecycle event subscriptions and their delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from engine.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from engine.api.presenters import ok
from engine.api.responses import Envelope, Message, WebhookCreated, WebhookDeliveryOut, WebhookOut
from engine.api.schemas import WebhookIn
from engine.integrations import webhooks as service
from engine.models import WEBHOOK_EVENTS, WebhookSubscription
from engine.models.base import iso

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


def _public(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "url": subscription.url,
        "events": subscription.events,
        "active": subscription.active,
        "createdAt": iso(subscription.created_at),
    }


@router.post("", status_code=201, response_model=Envelope[WebhookCreated])
def create(
    body: WebhookIn, session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep
) -> dict[str, Any]:
    """Subscribe a URL to events; the answer shows the signing secret (this once only)."""
    subscription, secret = service.subscribe(
        session,
        principal.organization_id,
        body.url,
        body.events,
        body.secret,
        secret_key=settings.verification_keys,
    )
    return ok(
        {
            **_public(subscription),
            "secret": secret,
            "availableEvents": list(WEBHOOK_EVENTS),
        }
    )


@router.get("", response_model=Envelope[list[WebhookOut]])
def list_all(session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The organization's subscriptions."""
    return ok([_public(s) for s in service.list_subscriptions(session, principal.organization_id)])


@router.get("/{webhook_id}", response_model=Envelope[WebhookOut])
def get(webhook_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One subscription (without its secret)."""
    return ok(_public(service.get_subscription(session, principal.organization_id, webhook_id)))


@router.delete("/{webhook_id}", response_model=Envelope[Message])
def delete(webhook_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Stop sending to this subscription; its delivery log stays readable."""
    service.unsubscribe(session, principal.organization_id, webhook_id)
    return ok({"message": "Webhook deleted successfully"})


@router.get("/{webhook_id}/deliveries", response_model=Envelope[list[WebhookDeliveryOut]])
def deliveries(
    webhook_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """The delivery log: event, status, attempts, the receiver's last status code."""
    log = service.delivery_log(session, principal.organization_id, webhook_id, limit)
    return ok([WebhookDeliveryOut.of(entry) for entry in log])
