"""Campaign statistics (seed 004), computed from stored executions and deliveries only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.errors import ValidationFailed
from engine.models import Campaign, Contact, Delivery, DeliveryStatus, Execution, Segment
from engine.models.base import utcnow
from engine.services.audience import campaign_audience
from engine.services.conditions import compile_condition

#: ``period`` values and how far back each looks (``all``: no limit).
PERIODS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
#: Sections ``metrics`` may select.
METRICS = ("overview", "performance", "timeline", "segments", "variations")


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def campaign_statistics(
    session: Session, campaign_id: str, period: str = "all", metrics: str | None = None
) -> dict[str, Any]:
    """Return overview, performance rates, a daily timeline, segments and variations.

    Test-mode executions are left out. Engagement (delivered, read, clicked, converted) counts
    provider events; until channels report them (the real-channels issue) they are 0, not guessed.

    Raises:
        ValidationFailed: unknown ``period`` or metric name.
    """
    if period not in PERIODS:
        raise ValidationFailed(f"period must be one of {', '.join(PERIODS)}", code="INVALID_PERIOD")
    wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else list(METRICS)
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise ValidationFailed(
            f"unknown metrics {unknown}; known: {', '.join(METRICS)}", code="INVALID_METRICS"
        )
    where: list[sa.ColumnElement[bool]] = [
        col(Delivery.execution_id).in_(
            sa.select(col(Execution.id)).where(
                col(Execution.campaign_id) == campaign_id, col(Execution.test_mode).is_(False)
            )
        )
    ]
    since = PERIODS[period]
    if since is not None:
        where.append(col(Delivery.created_at) >= utcnow() - since)
    counts = dict(
        session.execute(
            sa.select(col(Delivery.status), sa.func.count())
            .where(*where)
            .group_by(col(Delivery.status))
        ).all()
    )
    sent = int(counts.get(DeliveryStatus.sent, 0))
    failed = int(counts.get(DeliveryStatus.failed, 0))
    sections: dict[str, Any] = {
        "overview": {
            "messagesSent": sent,
            "failed": failed,
            "delivered": 0,
            "read": 0,
            "clicked": 0,
            "converted": 0,
            "revenue": 0,
        },
        "performance": {
            "sendSuccessRate": _rate(sent, sent + failed),
            "deliveryRate": 0.0,
            "readRate": 0.0,
            "clickRate": 0.0,
            "conversionRate": 0.0,
        },
        "timeline": _timeline(session, where),
        "segments": _segments(session, campaign_id, where) if "segments" in wanted else [],
        "variations": _variations(session, where) if "variations" in wanted else [],
    }
    return {name: sections[name] for name in wanted}


def _segments(session: Session, campaign_id: str, where: list[Any]) -> list[dict[str, Any]]:
    """Deliveries to the contacts of each segment the campaign targets (seed 004 ``segments``).

    A contact counts for a segment it matches now; a segment deleted since, or whose condition
    no longer compiles, is left out.
    """
    campaign = session.get_one(Campaign, campaign_id)
    wanted = campaign_audience(campaign).segments
    if not wanted:
        return []
    segments = session.scalars(
        sa.select(Segment).where(
            col(Segment.organization_id) == campaign.organization_id,
            col(Segment.id).in_(list(wanted)),
        )
    ).all()
    result = []
    for segment in sorted(segments, key=lambda s: wanted.index(s.id)):
        try:
            matches = compile_condition(session, campaign.organization_id, segment.condition)
        except ValidationFailed:
            continue
        counts = dict(
            session.execute(
                sa.select(col(Delivery.status), sa.func.count())
                .join(Contact, col(Contact.id) == col(Delivery.contact_id))
                .where(*where, matches)
                .group_by(col(Delivery.status))
            ).all()
        )
        sent, failed = (
            int(counts.get(DeliveryStatus.sent, 0)),
            int(counts.get(DeliveryStatus.failed, 0)),
        )
        result.append(
            {
                "segmentId": segment.id,
                "name": segment.name,
                "performance": {
                    "sent": sent,
                    "failed": failed,
                    "sendSuccessRate": _rate(sent, sent + failed),
                    "conversionRate": 0.0,
                },
            }
        )
    return result


def _variations(session: Session, where: list[Any]) -> list[dict[str, Any]]:
    """Sends per A/B variation of each touchpoint that has variations."""
    rows = session.execute(
        sa.select(
            col(Delivery.touchpoint_id),
            col(Delivery.variation),
            col(Delivery.status),
            sa.func.count(),
        )
        .where(*where, col(Delivery.variation).is_not(None))
        .group_by(col(Delivery.touchpoint_id), col(Delivery.variation), col(Delivery.status))
        .order_by(col(Delivery.touchpoint_id), col(Delivery.variation))
    ).all()
    found: dict[tuple[str, str], dict[str, int]] = {}
    for touchpoint_id, variation, status, count in rows:
        found.setdefault((touchpoint_id, variation), {})[str(status)] = int(count)
    totals: dict[str, int] = {}
    for (touchpoint_id, _), counts in found.items():
        totals[touchpoint_id] = totals.get(touchpoint_id, 0) + sum(counts.values())
    return [
        {
            "touchpointId": touchpoint_id,
            "variationId": variation,
            "sent": counts.get(DeliveryStatus.sent, 0),
            "failed": counts.get(DeliveryStatus.failed, 0),
            "share": _rate(sum(counts.values()), totals[touchpoint_id]),
            "conversionRate": 0.0,
        }
        for (touchpoint_id, variation), counts in found.items()
    ]


def _timeline(session: Session, where: list[Any]) -> list[dict[str, Any]]:
    day = sa.func.date(col(Delivery.created_at))
    rows = session.execute(
        sa.select(day, col(Delivery.status), sa.func.count())
        .where(*where)
        .group_by(day, col(Delivery.status))
        .order_by(day)
    ).all()
    by_day: dict[str, dict[str, Any]] = {}
    for date, status, count in rows:
        entry = by_day.setdefault(
            str(date), {"date": str(date), "sent": 0, "failed": 0, "delivered": 0, "conversions": 0}
        )
        if status in (DeliveryStatus.sent, DeliveryStatus.failed):
            entry[str(status)] = int(count)
    return list(by_day.values())
