"""Touchpoints as a resource of their own (SDK reference): add, change, remove, validate."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from jinja2 import TemplateError
from sqlmodel import Session, col, select

from engine.audience.audience_spec import campaign_audience
from engine.audience.targeting import compile_audience
from engine.campaigns.campaign import (
    TouchpointSpec,
    check_touchpoint,
    get_campaign,
    list_touchpoints,
)
from engine.channels import ensure_available
from engine.errors import EngineError, NotFound
from engine.execution.runs import check_editable
from engine.integrations.channel_accounts import check_credentials
from engine.models import Campaign, Chunk, Contact, Touchpoint, TouchpointType
from engine.models.base import utcnow
from engine.secrets import SecretKeys
from engine.templating import contact_context, error_code, render


def get_touchpoint(
    session: Session, touchpoint_id: str, organization_id: str | None = None
) -> Touchpoint:
    """Return the touchpoint, scoped to the organization of its campaign.

    Raises:
        NotFound: no such touchpoint (or it belongs to another organization).
    """
    touchpoint = session.get(Touchpoint, touchpoint_id)
    if touchpoint is not None:
        campaign = session.get(Campaign, touchpoint.campaign_id)
        if campaign is not None and (
            not organization_id or campaign.organization_id == organization_id
        ):
            return touchpoint
    raise NotFound(f"touchpoint {touchpoint_id!r} not found", code="TOUCHPOINT_NOT_FOUND")


def _editable(session: Session, campaign: Campaign) -> None:
    check_editable(session, campaign, "touchpoints")


def add_touchpoint(
    session: Session, organization_id: str, campaign_id: str, spec: TouchpointSpec
) -> Touchpoint:
    """Append a touchpoint to the campaign's sequence.

    Raises:
        NotFound: no such campaign.
        ValidationFailed: bad type, delay, name or template.
        InvalidTransition: the campaign is executing (code ``CAMPAIGN_RUNNING``).
    """
    campaign = get_campaign(session, campaign_id, organization_id)
    _editable(session, campaign)
    check_touchpoint(spec)
    last = session.scalar(
        sa.select(sa.func.max(col(Touchpoint.position))).where(
            col(Touchpoint.campaign_id) == campaign.id
        )
    )
    position = 0 if last is None else int(last) + 1
    touchpoint = Touchpoint(
        campaign_id=campaign.id,
        position=position,
        name=spec.name or f"step {position + 1}",
        type=spec.type,
        delay_s=spec.delay_s,
        message=spec.message,
    )
    session.add(touchpoint)
    campaign.updated_at = utcnow()
    session.flush()
    return touchpoint


def update_touchpoint(
    session: Session, organization_id: str, touchpoint_id: str, changes: dict[str, Any]
) -> Touchpoint:
    """Change a touchpoint's name, type, message or delay.

    Raises:
        NotFound, ValidationFailed, InvalidTransition: as for :func:`add_touchpoint`.
    """
    touchpoint = get_touchpoint(session, touchpoint_id, organization_id)
    _editable(session, session.get_one(Campaign, touchpoint.campaign_id))
    spec = TouchpointSpec(
        message=changes.get("message", touchpoint.message),
        name=changes.get("name", touchpoint.name),
        type=changes.get("type", touchpoint.type),
        delay_s=changes.get("delay_s", touchpoint.delay_s),
    )
    check_touchpoint(spec)
    touchpoint.message, touchpoint.name, touchpoint.type, touchpoint.delay_s = (
        spec.message,
        spec.name,
        spec.type,
        spec.delay_s,
    )
    session.flush()
    return touchpoint


def delete_touchpoint(session: Session, organization_id: str, touchpoint_id: str) -> None:
    """Remove a touchpoint (and the finished chunks that referenced it).

    Raises:
        NotFound, InvalidTransition: as for :func:`add_touchpoint`.
    """
    touchpoint = get_touchpoint(session, touchpoint_id, organization_id)
    _editable(session, session.get_one(Campaign, touchpoint.campaign_id))
    session.execute(sa.delete(Chunk).where(col(Chunk.touchpoint_id) == touchpoint.id))
    session.delete(touchpoint)
    session.flush()


def validate_touchpoint(
    session: Session, organization_id: str, touchpoint_id: str, secret_key: SecretKeys
) -> dict[str, Any]:
    """Check that a touchpoint can be sent: ``{"valid": bool, "errors": [{"code", "message"}]}``.

    Looks at the touchpoint (message, template, delay, A/B weights) and at what it depends on:
    its campaign's channel, configuration and credentials (``secret_key`` decrypts the
    organization's account), and whether the campaign has an audience.

    Raises:
        NotFound: no such touchpoint in the organization.
    """
    touchpoint = get_touchpoint(session, touchpoint_id, organization_id)
    campaign = session.get_one(Campaign, touchpoint.campaign_id)
    errors: list[dict[str, str]] = []

    def check(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except EngineError as exc:
            errors.append({"code": exc.code, "message": exc.message})

    check(
        check_touchpoint,
        TouchpointSpec(touchpoint.message, touchpoint.name, touchpoint.type, touchpoint.delay_s),
    )
    if not campaign.channel:
        errors.append({"code": "NO_CHANNEL", "message": "the campaign has no channel"})
    else:
        check(check_credentials, session, secret_key, campaign)
        check(ensure_available, campaign.channel)
    audience = compile_audience(
        session, campaign.organization_id, campaign_audience(campaign), utcnow(), campaign.channel
    )
    errors.extend(audience.problems)
    sample = session.exec(
        select(Contact).where(audience.where).order_by(col(Contact.id)).limit(1)
    ).first()
    if sample is None and not audience.problems:
        errors.append(
            {"code": "NO_AUDIENCE", "message": "no subscribed contact matches the targetAudience"}
        )
    if touchpoint.type == TouchpointType.message and sample is not None and not errors:
        errors.extend(_render_errors(sample, touchpoint.message))
    return {"valid": not errors, "errors": errors}


def _render_errors(sample: Contact, message: Any) -> list[dict[str, str]]:
    """Render the message for the audience's first contact: a template that compiles can
    still fail on real data (``{{ plan.name }}`` when ``plan`` is missing)."""
    recipient = {"id": sample.id, "email": sample.email, "phone": sample.phone, "name": sample.name}
    try:
        render(message, contact_context(sample.fields, recipient))
    except TemplateError as exc:
        return [
            {
                "code": error_code(exc),
                "message": f"the message does not render for contact {sample.id}: {exc}",
            }
        ]
    return []


__all__ = [
    "add_touchpoint",
    "delete_touchpoint",
    "get_touchpoint",
    "list_touchpoints",
    "update_touchpoint",
    "validate_touchpoint",
]
