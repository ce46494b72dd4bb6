"""Managing campaigns as the campaigns API does: list, update, delete, clone, and their
executions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.audience.audience_spec import checked_details
from engine.campaigns.campaign import check_length, check_type, get_campaign, list_touchpoints
from engine.errors import InvalidTransition, NotFound, ValidationFailed
from engine.execution.runs import active_execution, check_editable
from engine.integrations.channel_accounts import (
    check_campaign_channel,
    kept_campaign_secrets,
    store_campaign_config,
)
from engine.integrations.webhooks import emit_campaign
from engine.models import (
    Campaign,
    CampaignAction,
    CampaignStatus,
    Chunk,
    Delivery,
    EngagementEvent,
    Execution,
    ExecutionErrorCount,
    ExecutionRate,
    ExecutionRecipient,
    Touchpoint,
)
from engine.models.base import utcnow
from engine.outbound import OutboundPolicy
from engine.secrets import SecretKeys

#: Fields ``sort`` may name (``-`` prefix for descending), API name → column.
SORT_FIELDS = {
    "createdAt": col(Campaign.created_at),
    "updatedAt": col(Campaign.updated_at),
    "name": col(Campaign.name),
    "status": col(Campaign.status),
    "type": col(Campaign.type),
}


@dataclass(frozen=True)
class Page:
    """One page of a listing and the total across pages."""

    items: list[Campaign]
    total: int
    page: int
    limit: int

    @property
    def pages(self) -> int:
        """How many pages the listing has."""
        return (self.total + self.limit - 1) // self.limit


def list_campaigns(
    session: Session,
    organization_id: str,
    *,
    page: int = 1,
    limit: int = 20,
    status: str | None = None,
    type: str | None = None,
    sort: str = "-createdAt",
    search: str | None = None,
) -> Page:
    """Return one page of the organization's campaigns.

    Raises:
        ValidationFailed: page < 1, limit outside 1 to 100, unknown sort field or status.
    """
    if page < 1 or not 1 <= limit <= 100:
        raise ValidationFailed("page must be ≥ 1 and limit between 1 and 100", code="INVALID_PAGE")
    field = SORT_FIELDS.get(sort.removeprefix("-"))
    if field is None:
        raise ValidationFailed(
            f"sort must be one of {', '.join(SORT_FIELDS)} (prefix - for descending)",
            code="INVALID_SORT",
        )
    where = [col(Campaign.organization_id) == organization_id]
    if status is not None:
        if status not in CampaignStatus.__members__:
            raise ValidationFailed(f"unknown status {status!r}", code="INVALID_STATUS")
        where.append(col(Campaign.status) == status)
    if type is not None:
        check_type(type)
        where.append(col(Campaign.type) == type)
    if search:
        pattern = f"%{search.lower()}%"
        where.append(
            sa.or_(
                sa.func.lower(col(Campaign.name)).like(pattern),
                sa.func.lower(col(Campaign.description)).like(pattern),
            )
        )
    total = int(session.scalar(sa.select(sa.func.count()).where(*where)) or 0)
    order = field.desc() if sort.startswith("-") else field.asc()
    items = session.exec(
        select(Campaign)
        .where(*where)
        .order_by(order, col(Campaign.id))
        .offset((page - 1) * limit)
        .limit(limit)
    ).all()
    return Page(list(items), total, page, limit)


@dataclass(frozen=True)
class CampaignFigures:
    """A campaign's delivery counters summed over its executions (test mode left out)."""

    total: int = 0
    successful: int = 0
    failed: int = 0


def campaign_figures(session: Session, campaign_ids: list[str]) -> dict[str, CampaignFigures]:
    """Each campaign's :class:`CampaignFigures`, in one query (campaigns never run are absent)."""
    if not campaign_ids:
        return {}
    rows = session.execute(
        sa.select(
            col(Execution.campaign_id),
            sa.func.sum(col(Execution.total)),
            sa.func.sum(col(Execution.successful)),
            sa.func.sum(col(Execution.failed)),
        )
        .where(col(Execution.campaign_id).in_(campaign_ids), col(Execution.test_mode).is_(False))
        .group_by(col(Execution.campaign_id))
    ).all()
    return {cid: CampaignFigures(int(t or 0), int(s or 0), int(f or 0)) for cid, t, s, f in rows}


def latest_execution(session: Session, campaign_id: str) -> Execution:
    """Return the campaign's newest execution.

    Raises:
        NotFound: the campaign was never executed (code ``NO_EXECUTION``).
    """
    execution = session.exec(
        select(Execution)
        .where(col(Execution.campaign_id) == campaign_id)
        .order_by(col(Execution.created_at).desc())
    ).first()
    if execution is None:
        raise NotFound(f"campaign {campaign_id!r} has not been executed", code="NO_EXECUTION")
    return execution


def update_campaign(
    session: Session,
    organization_id: str,
    campaign_id: str,
    changes: dict[str, Any],
    secret_key: SecretKeys | None = None,
    *,
    outbound: OutboundPolicy | None = None,
) -> Campaign:
    """Apply ``changes`` (name, description, type, channel, channel_config, status, details).

    ``secret_key`` (``Settings.verification_keys``) encrypts credentials in a new
    ``channel_config``; one without credentials keeps the stored ones while the channel and
    endpoint stay (what GET shows can be PUT back). ``outbound`` is as for
    :func:`~engine.campaigns.campaign.create_campaign`.

    A ``status`` equal to the campaign's is accepted and changes nothing; any other is refused:
    statuses change through execute, pause, resume and cancel. The channel, its configuration
    and the audience can't change while an execution uses them.

    Raises:
        NotFound: no such campaign in the organization.
        ValidationFailed: a value is not acceptable.
        InvalidTransition: a status change (``STATUS_BY_ACTION``), or an edit of what an
            active execution uses (``CAMPAIGN_RUNNING``).
    """
    campaign = get_campaign(session, campaign_id, organization_id)
    if "status" in changes and changes["status"] != campaign.status:
        _refuse_status_change(campaign, changes["status"])
    details = changes.get("details") or {}
    # Only real changes count: a client that PUTs the whole object back must not get a 409.
    if (
        changes.get("channel", campaign.channel) != campaign.channel
        or changes.get("channel_config", campaign.channel_config) != campaign.channel_config
        or details.get("targetAudience", campaign.details.get("targetAudience"))
        != campaign.details.get("targetAudience")
    ):
        check_editable(session, campaign, "channel, channel configuration and audience")
    if "name" in changes:
        check_length("name", changes["name"], 200, required=True)
        campaign.name = changes["name"]
    if "description" in changes:
        check_length("description", changes["description"], 2000)
        campaign.description = changes["description"]
    if "type" in changes:
        check_type(changes["type"])
        campaign.type = changes["type"]
    if "channel" in changes or "channel_config" in changes:
        channel = changes.get("channel", campaign.channel)
        config = dict(changes.get("channel_config", campaign.channel_config) or {})
        if secret_key is not None:
            config = {**kept_campaign_secrets(secret_key, campaign, channel, config), **config}
        check_campaign_channel(session, organization_id, channel, config, policy=outbound)
        campaign.channel = channel
        store_campaign_config(campaign, config, secret_key)
    if changes.get("details"):
        campaign.details = checked_details({**campaign.details, **changes["details"]})
    campaign.updated_at = utcnow()
    session.flush()
    return campaign


def _refuse_status_change(campaign: Campaign, status: str) -> None:
    """A status is the lifecycle's to set: name the action that does what the caller wants."""
    if status not in CampaignStatus.__members__:
        raise ValidationFailed(f"unknown status {status!r}", code="INVALID_STATUS")
    raise InvalidTransition(
        f"a campaign's status changes through its actions, not an update: POST "
        f"/api/v1/campaigns/{campaign.id}/execute, /pause, /resume or /cancel "
        f"(it is {campaign.status}; asked for {status})",
        code="STATUS_BY_ACTION",
    )


def delete_campaign(session: Session, organization_id: str, campaign_id: str) -> None:
    """Delete a draft or cancelled campaign with its touchpoints and execution history.

    Raises:
        NotFound: no such campaign in the organization.
        InvalidTransition: the campaign is neither draft nor cancelled (code ``CANNOT_DELETE``),
            or a bot campaign action is run by it (``IN_USE_BY_ACTION``: the action reads its
            status and log file from the campaign's execution).
    """
    campaign = get_campaign(session, campaign_id, organization_id)
    _check_no_action(session, campaign_id)
    if campaign.status not in (CampaignStatus.draft, CampaignStatus.cancelled):
        raise InvalidTransition(
            f"campaign {campaign_id!r} is {campaign.status}; only draft or cancelled "
            "campaigns can be deleted",
            code="CANNOT_DELETE",
        )
    if active_execution(session, campaign_id) is not None:
        raise InvalidTransition(
            f"campaign {campaign_id!r} has an execution in progress", code="CANNOT_DELETE"
        )
    executions = sa.select(col(Execution.id)).where(col(Execution.campaign_id) == campaign_id)
    for model in (Delivery, Chunk, ExecutionErrorCount, ExecutionRate, ExecutionRecipient):
        session.execute(sa.delete(model).where(model.execution_id.in_(executions)))  # type: ignore[attr-defined]
    session.execute(
        sa.delete(EngagementEvent).where(col(EngagementEvent.campaign_id) == campaign_id)
    )
    session.execute(sa.delete(Execution).where(col(Execution.campaign_id) == campaign_id))
    session.execute(sa.delete(Touchpoint).where(col(Touchpoint.campaign_id) == campaign_id))
    session.delete(campaign)
    session.flush()


def _check_no_action(session: Session, campaign_id: str) -> None:
    """Refuse to delete a campaign a bot campaign action runs as (bot campaigns API)."""
    action = session.scalars(
        sa.select(col(CampaignAction.id))
        .where(col(CampaignAction.campaign_id) == campaign_id)
        .limit(1)
    ).first()
    if action is not None:
        raise InvalidTransition(
            f"campaign {campaign_id!r} is the campaign of bot action {action!r}, which reads its "
            "status and log file from it; it is kept as long as the action exists",
            code="IN_USE_BY_ACTION",
        )


def clone_campaign(
    session: Session, organization_id: str, campaign_id: str, name: str | None = None
) -> Campaign:
    """Copy a campaign and its touchpoints as a new draft (statistics start from zero).

    Raises:
        NotFound: no such campaign in the organization.
    """
    source = get_campaign(session, campaign_id, organization_id)
    new_name = name or f"{source.name} (Copy)"[:200]
    check_length("name", new_name, 200, required=True)
    copy = Campaign(
        organization_id=source.organization_id,
        name=new_name,
        description=source.description,
        type=source.type,
        channel=source.channel,
        channel_config=dict(source.channel_config),
        # Still encrypted: the copy sends with the same credentials, never held in clear.
        secrets=source.secrets,
        details=dict(source.details),
        created_by=source.created_by,
    )
    session.add(copy)
    session.flush()
    for tp in list_touchpoints(session, source.id):
        session.add(
            Touchpoint(
                campaign_id=copy.id,
                position=tp.position,
                name=tp.name,
                type=tp.type,
                delay_s=tp.delay_s,
                message=tp.message,
            )
        )
    session.flush()
    emit_campaign(session, "campaign.created", copy, clonedFrom=source.id)
    return copy
