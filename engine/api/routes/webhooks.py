"""``/api/v1/webhooks``: lifecycle event subscriptions and their delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from engine.api.answers.base import Envelope, Message, ok
from engine.api.answers.integrations import WebhookCreated, WebhookDeliveryOut, WebhookOut
from engine.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from engine.api.schemas import WebhookIn
from engine.integrations import webhooks as service
from engine.outbound import OutboundPolicy

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.post("", status_code=201, response_model=Envelope[WebhookCreated])
def create(
    body: WebhookIn, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Subscribe a URL to events; the answer shows the signing secret (this once only).

    A URL on an internal address is refused (400 ``OUTBOUND_TARGET_REFUSED``)."""
    subscription, secret = service.subscribe(
        session,
        principal.organization_id,
        body.url,
        body.events,
        body.secret,
        secret_key=settings.verification_keys,
        policy=OutboundPolicy.from_settings(settings),
    )
    return ok(WebhookCreated.created(subscription, secret))


@router.get("", response_model=Envelope[list[WebhookOut]])
def list_all(session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The organization's subscriptions."""
    return ok(
        [WebhookOut.of(s) for s in service.list_subscriptions(session, principal.organization_id)]
    )


@router.get("/{webhook_id}", response_model=Envelope[WebhookOut])
def get(webhook_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One subscription (without its secret)."""
    return ok(
        WebhookOut.of(service.get_subscription(session, principal.organization_id, webhook_id))
    )


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
