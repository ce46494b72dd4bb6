"""Organizations, campaigns and touchpoints: creating and reading them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from engine.audience.audience_spec import checked_details
from engine.campaigns.variations import check_variations
from engine.db import get_owned
from engine.errors import NotFound, ValidationFailed
from engine.integrations.channel_accounts import check_campaign_channel, store_campaign_config
from engine.integrations.webhooks import emit_campaign
from engine.models import Campaign, Organization, Touchpoint, TouchpointType
from engine.outbound import OutboundPolicy
from engine.secrets import SecretKeys
from engine.templating import check_template

#: Longest wait before a touchpoint: one year.
MAX_DELAY_S = 365 * 24 * 3600.0


@dataclass(frozen=True)
class TouchpointSpec:
    """What a new touchpoint needs: a message (for ``message``) and the delay before it."""

    message: Any = None
    name: str = ""
    type: str = TouchpointType.message
    delay_s: float = 0.0


def get_or_create_organization(session: Session, name: str) -> Organization:
    """Return the organization called ``name``, creating it if needed."""
    org = session.exec(select(Organization).where(Organization.name == name)).first()
    if org is None:
        org = Organization(name=name)
        session.add(org)
        session.flush()
    return org


#: Campaign types of the campaigns API.
CAMPAIGN_TYPES = ("message", "invitation", "data_collection", "engagement", "custom")


def get_organization_by_name(session: Session, name: str) -> Organization:
    """Return the organization called ``name``.

    Raises:
        NotFound: there is none (code ``ORGANIZATION_NOT_FOUND``).
    """
    org = session.exec(select(Organization).where(Organization.name == name)).first()
    if org is None:
        raise NotFound(f"organization {name!r} not found", code="ORGANIZATION_NOT_FOUND")
    return org


def create_campaign(
    session: Session,
    organization_id: str,
    name: str,
    channel: str | None,
    touchpoints: list[TouchpointSpec],
    channel_config: dict[str, Any] | None = None,
    description: str = "",
    *,
    type: str = "message",
    details: dict[str, Any] | None = None,
    created_by: str | None = None,
    secret_key: SecretKeys | None = None,
    outbound: OutboundPolicy | None = None,
) -> Campaign:
    """Create a draft campaign with its ordered touchpoints.

    A draft may have no channel yet (``None``); it needs one before it can execute.
    ``secret_key`` (``Settings.verification_keys``) encrypts the credentials ``channel_config``
    holds; a config with credentials needs it. ``outbound`` says which internal networks its
    ``channel_config`` may name (default: this process's ``OUTBOUND_ALLOWED_NETWORKS``).

    Raises:
        ValidationFailed: unknown channel or type, bad channel config, touchpoint or template.
        NotFound: the organization does not exist.
    """
    if session.get(Organization, organization_id) is None:
        raise NotFound(f"organization {organization_id!r} not found")
    check_length("name", name, 200, required=True)
    check_length("description", description, 2000)
    check_type(type)
    config = dict(channel_config or {})
    if channel:
        check_campaign_channel(session, organization_id, channel, config, policy=outbound)
    for spec in touchpoints:
        check_touchpoint(spec)
    details = checked_details(details)
    campaign = Campaign(
        organization_id=organization_id,
        name=name,
        channel=channel or "",
        description=description,
        type=type,
        details=details,
        created_by=created_by,
    )
    store_campaign_config(campaign, config, secret_key)
    session.add(campaign)
    session.flush()
    for position, spec in enumerate(touchpoints):
        session.add(
            Touchpoint(
                campaign_id=campaign.id,
                position=position,
                name=spec.name or f"step {position + 1}",
                type=spec.type,
                delay_s=spec.delay_s,
                message=spec.message,
            )
        )
    session.flush()
    emit_campaign(session, "campaign.created", campaign)
    return campaign


def create_campaign_from_document(
    session: Session, document: Any, secret_key: SecretKeys | None = None
) -> Campaign:
    """Create a campaign from a JSON-like document (``campaign create FILE``); ``secret_key``
    encrypts the credentials of its ``channel_config``.

    Shape: ``{"organization", "name", "channel", "channel_config"?, "description"?,
    "touchpoints": [{"name"?, "type"?, "message"?, "delay_s"?}]}``; the organization is
    created if it does not exist.

    Raises:
        ValidationFailed: a required field is missing or has the wrong type.
    """
    if not isinstance(document, dict):
        raise ValidationFailed("a campaign document must be a JSON object", code="INVALID_DOCUMENT")
    missing = [k for k in ("organization", "name", "channel", "touchpoints") if k not in document]
    if missing:
        raise ValidationFailed(f"missing fields: {', '.join(missing)}", code="INVALID_DOCUMENT")
    steps = document["touchpoints"]
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ValidationFailed("touchpoints must be a list of objects", code="INVALID_DOCUMENT")
    try:
        specs = [
            TouchpointSpec(
                message=s.get("message"),
                name=str(s.get("name", "")),
                type=str(s.get("type", TouchpointType.message)),
                delay_s=float(s.get("delay_s", 0)),
            )
            for s in steps
        ]
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"bad touchpoint: {exc}", code="INVALID_DOCUMENT") from exc
    config = document.get("channel_config") or {}
    if not isinstance(config, dict):
        raise ValidationFailed("channel_config must be an object", code="INVALID_DOCUMENT")
    org = get_or_create_organization(session, str(document["organization"]))
    return create_campaign(
        session,
        org.id,
        str(document["name"]),
        str(document["channel"]),
        specs,
        channel_config=config,
        description=str(document.get("description", "")),
        secret_key=secret_key,
    )


def check_type(value: str) -> None:
    """Raise :class:`ValidationFailed` unless ``value`` is a campaign type of the campaigns API."""
    if value not in CAMPAIGN_TYPES:
        raise ValidationFailed(
            f"type must be one of {', '.join(CAMPAIGN_TYPES)} (got {value!r})", code="INVALID_TYPE"
        )


def check_length(field: str, value: str, limit: int, *, required: bool = False) -> None:
    """Raise :class:`ValidationFailed` unless ``value`` is text of at most ``limit`` characters."""
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise ValidationFailed(
            f"{field} must be {'a non-empty' if required else 'a'} text "
            f"of at most {limit} characters",
            code="INVALID_FIELD",
        )


def check_touchpoint(spec: TouchpointSpec) -> None:
    """Raise :class:`ValidationFailed` unless the touchpoint can be stored as given."""
    check_length("touchpoint name", spec.name, 200)
    if spec.type not in TouchpointType.__members__:
        raise ValidationFailed(
            f"unknown touchpoint type {spec.type!r}; known: message, wait",
            code="INVALID_TOUCHPOINT",
        )
    if not 0 <= spec.delay_s <= MAX_DELAY_S:  # also false for NaN
        raise ValidationFailed(
            f"touchpoint delay must be between 0 and {MAX_DELAY_S:.0f} seconds "
            f"(got {spec.delay_s})",
            code="INVALID_TOUCHPOINT",
        )
    if spec.type == TouchpointType.message:
        if spec.message in (None, "", {}):
            raise ValidationFailed("a message touchpoint needs a message", code="MISSING_MESSAGE")
        check_template(spec.message)
        check_variations(spec.message)


def get_campaign(
    session: Session, campaign_id: str, organization_id: str | None = None, *, lock: bool = False
) -> Campaign:
    """Return the campaign, scoped to ``organization_id`` when given.

    ``lock`` takes its row lock (PostgreSQL) until the transaction ends: execute, cancel and
    retry take it, so that a cancel and an execute of one campaign never interleave.

    Raises:
        NotFound: no such campaign (or it belongs to another organization).
    """
    # populate_existing: a locked read must see the row as it is now, not as first loaded.
    return get_owned(
        session,
        Campaign,
        campaign_id,
        organization_id,
        what="campaign",
        code="CAMPAIGN_NOT_FOUND",
        with_for_update=lock or None,
        populate_existing=lock,
    )


def list_touchpoints(session: Session, campaign_id: str) -> list[Touchpoint]:
    """Return the campaign's touchpoints in order."""
    return list(
        session.exec(
            select(Touchpoint)
            .where(Touchpoint.campaign_id == campaign_id)
            .order_by(col(Touchpoint.position))
        )
    )
