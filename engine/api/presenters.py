"""How the HTTP API shows engine objects (campaigns API: ``id``, camelCase, ISO 8601 with ``Z``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.audience.targeting import campaign_audience_counts
from engine.integrations.channel_accounts import SECRET_SETTINGS
from engine.models import Campaign, Execution, Touchpoint
from engine.models.base import iso

#: Channel settings never shown back (they are credentials).
SECRET_KEYS = SECRET_SETTINGS | {"apiKey"}


def ok(data: Any) -> dict[str, Any]:
    """The success envelope."""
    return {"success": True, "data": data}


def pagination(page: int, limit: int, total: int) -> dict[str, int]:
    """The campaigns API's ``pagination`` object."""
    return {"page": page, "limit": limit, "total": total, "pages": -(-total // limit)}


def campaign_counts(session: Session, campaign_ids: list[str]) -> dict[str, dict[str, int]]:
    """Delivery counters summed over each campaign's executions (test mode excluded)."""
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
    return {
        cid: {"total": int(t or 0), "successful": int(s or 0), "failed": int(f or 0)}
        for cid, t, s, f in rows
    }


def campaign_public(
    campaign: Campaign, counts: dict[str, int] | None, audience: int
) -> dict[str, Any]:
    """A campaign as the campaigns API shows it; ``statistics`` and the audience count are
    computed."""
    details = dict(campaign.details or {})
    counts = counts or {"total": 0, "successful": 0, "failed": 0}
    target = dict(details.pop("targetAudience", None) or {})
    target["totalCount"] = audience
    return {
        "id": campaign.id,
        "name": campaign.name,
        "description": campaign.description,
        "type": campaign.type,
        "status": campaign.status,
        "channel": campaign.channel or None,
        "channelConfig": {k: v for k, v in campaign.channel_config.items() if k not in SECRET_KEYS},
        "targetAudience": target,
        **details,
        "statistics": {
            "totalTasks": counts["total"],
            "completedTasks": counts["successful"],
            "failedTasks": counts["failed"],
            "messagesSent": counts["successful"],
            "conversionsAchieved": 0,
        },
        "createdBy": campaign.created_by,
        "createdAt": iso(campaign.created_at),
        "updatedAt": iso(campaign.updated_at),
    }


def present_campaigns(
    session: Session, campaigns: list[Campaign], organization_id: str
) -> list[dict[str, Any]]:
    """Several campaigns of one organization, with two queries for all of their figures."""
    counts = campaign_counts(session, [c.id for c in campaigns])
    audiences = campaign_audience_counts(session, organization_id, campaigns)
    return [campaign_public(c, counts.get(c.id), audiences[c.id]) for c in campaigns]


def touchpoint_public(touchpoint: Touchpoint) -> dict[str, Any]:
    """A touchpoint as the API shows it."""
    return {
        "id": touchpoint.id,
        "campaignId": touchpoint.campaign_id,
        "name": touchpoint.name,
        "type": touchpoint.type,
        "position": touchpoint.position,
        "delay": touchpoint.delay_s,
        "message": touchpoint.message,
        "createdAt": iso(touchpoint.created_at),
    }
