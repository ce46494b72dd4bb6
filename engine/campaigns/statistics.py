"""Campaign statistics (campaigns API), from stored deliveries and engagement events.

Sends count messages (deliveries); ``delivered`` and ``read`` count messages with a provider
receipt; ``clicked`` and ``converted`` count unique contacts. Rates (percent, one decimal):

- ``deliveryRate`` = delivered / sent; ``readRate`` = read / delivered;
- ``clickRate`` = clicking contacts / contacts known to have received a message (a receipt,
  or a click) — or, when the campaign has no receipts at all (email without a relay callback,
  telegram), / contacts sent to;
- ``conversionRate`` = converting contacts / contacts sent to.

Events of test-mode executions, and conversions the campaign cannot be credited with (the
contact never got one of its messages), are left out. See docs/engagement.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.audience.audience_spec import campaign_audience
from engine.audience.conditions import compile_condition
from engine.errors import ValidationFailed
from engine.models import (
    Campaign,
    Contact,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    EngagementType,
    Execution,
    Segment,
)
from engine.models.base import utcnow

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


@dataclass(frozen=True)
class Overview:
    """Totals: messages sent and failed, receipts, engaged contacts and revenue."""

    messages_sent: int
    failed: int
    delivered: int
    read: int
    clicked: int
    converted: int
    revenue: float
    undelivered: int
    unsubscribed: int
    contacts_reached: int


@dataclass(frozen=True)
class Performance:
    """The rates of the module docstring, in percent with one decimal."""

    send_success_rate: float
    delivery_rate: float
    read_rate: float
    click_rate: float
    conversion_rate: float


@dataclass(frozen=True)
class Day:
    """One day of the timeline (``date`` is ``YYYY-MM-DD`` in UTC)."""

    date: str
    sent: int = 0
    failed: int = 0
    delivered: int = 0
    conversions: int = 0


@dataclass(frozen=True)
class SegmentPerformance:
    """Sends to a segment's contacts and the share of those sent to who converted."""

    sent: int
    failed: int
    send_success_rate: float
    converted: int
    conversion_rate: float


@dataclass(frozen=True)
class SegmentStatistics:
    """One targeted segment's figures."""

    segment_id: str
    name: str
    performance: SegmentPerformance


@dataclass(frozen=True)
class VariationStatistics:
    """One A/B variation of a touchpoint: its sends, share and conversions."""

    touchpoint_id: str
    variation_id: str
    sent: int
    failed: int
    share: float
    conversions: int
    conversion_rate: float


@dataclass(frozen=True)
class CampaignStatistics:
    """The sections asked for; a section not asked for is ``None``."""

    overview: Overview | None = None
    performance: Performance | None = None
    timeline: list[Day] | None = None
    segments: list[SegmentStatistics] | None = None
    variations: list[VariationStatistics] | None = None


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def campaign_statistics(
    session: Session, campaign_id: str, period: str = "all", metrics: str | None = None
) -> CampaignStatistics:
    """Return overview, performance rates, a daily timeline, segments and variations.

    Test-mode executions are left out. Engagement (delivered, read, clicked, converted) counts
    provider events (status callbacks, tracked clicks, posted conversions: docs/engagement.md);
    what a provider never reports stays 0, not guessed.

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
    real_executions = sa.select(col(Execution.id)).where(
        col(Execution.campaign_id) == campaign_id, col(Execution.test_mode).is_(False)
    )
    where: list[sa.ColumnElement[bool]] = [col(Delivery.execution_id).in_(real_executions)]
    events: list[sa.ColumnElement[bool]] = [
        col(EngagementEvent.campaign_id) == campaign_id,
        col(EngagementEvent.execution_id).in_(real_executions),
    ]
    since = PERIODS[period]
    if since is not None:
        where.append(col(Delivery.created_at) >= utcnow() - since)
        events.append(col(EngagementEvent.occurred_at) >= utcnow() - since)
    overview, performance = (
        _overview(session, where, events)
        if {"overview", "performance"} & set(wanted)
        else (None, None)
    )
    return CampaignStatistics(
        overview=overview if "overview" in wanted else None,
        performance=performance if "performance" in wanted else None,
        timeline=_timeline(session, where, events) if "timeline" in wanted else None,
        segments=_segments(session, campaign_id, where, events) if "segments" in wanted else None,
        variations=_variations(session, where, events) if "variations" in wanted else None,
    )


def _sends(session: Session, where: list[Any]) -> tuple[int, int, int]:
    """``(sent, failed, contacts sent to)`` of the deliveries matching ``where``."""
    counts = dict(
        session.execute(
            sa.select(col(Delivery.status), sa.func.count())
            .where(*where)
            .group_by(col(Delivery.status))
        ).all()
    )
    reached = session.scalar(
        sa.select(sa.func.count(sa.distinct(col(Delivery.contact_id)))).where(
            *where, col(Delivery.status) == DeliveryStatus.sent
        )
    )
    return (
        int(counts.get(DeliveryStatus.sent, 0)),
        int(counts.get(DeliveryStatus.failed, 0)),
        int(reached or 0),
    )


def _receipts(session: Session, events: list[Any]) -> tuple[int, int]:
    """``(messages with a delivery receipt, contacts known to have received one)``.

    A receipt is ``delivered`` (or ``read`` alone); a click proves receipt of a contact too.
    """
    received = (
        sa.select(
            col(EngagementEvent.execution_id),
            col(EngagementEvent.touchpoint_id),
            col(EngagementEvent.contact_id),
        )
        .where(
            *events,
            col(EngagementEvent.type).in_([EngagementType.delivered, EngagementType.read]),
        )
        .distinct()
        .subquery()
    )
    messages = session.scalar(sa.select(sa.func.count()).select_from(received))
    contacts = session.scalar(
        sa.select(sa.func.count(sa.distinct(col(EngagementEvent.contact_id)))).where(
            *events,
            col(EngagementEvent.type).in_(
                [EngagementType.delivered, EngagementType.read, EngagementType.clicked]
            ),
        )
    )
    return int(messages or 0), int(contacts or 0)


def _engagement(session: Session, events: list[Any]) -> dict[str, tuple[int, int, float]]:
    """Per event type: ``(events, unique contacts, sum of values)``."""
    rows = session.execute(
        sa.select(
            col(EngagementEvent.type),
            sa.func.count(),
            sa.func.count(sa.distinct(col(EngagementEvent.contact_id))),
            sa.func.sum(col(EngagementEvent.value)),
        )
        .where(*events)
        .group_by(col(EngagementEvent.type))
    ).all()
    return {
        str(kind): (int(n), int(contacts), float(total or 0)) for kind, n, contacts, total in rows
    }


def _overview(
    session: Session, where: list[Any], events: list[Any]
) -> tuple[Overview, Performance]:
    """The campaigns API's ``overview`` and ``performance`` (the rates of the module docstring)."""
    sent, failed, reached = _sends(session, where)
    delivered, delivered_contacts = _receipts(session, events)
    found = _engagement(session, events)
    none = (0, 0, 0.0)
    read = found.get(EngagementType.read, none)[0]
    clicked = found.get(EngagementType.clicked, none)[1]
    converted = found.get(EngagementType.converted, none)
    overview = Overview(
        messages_sent=sent,
        failed=failed,
        delivered=delivered,
        read=read,
        clicked=clicked,
        converted=converted[1],
        revenue=round(converted[2], 2),
        undelivered=found.get(EngagementType.failed, none)[0],
        unsubscribed=found.get(EngagementType.unsubscribed, none)[1],
        contacts_reached=reached,
    )
    performance = Performance(
        send_success_rate=_rate(sent, sent + failed),
        delivery_rate=_rate(delivered, sent),
        read_rate=_rate(read, delivered),
        click_rate=_rate(clicked, delivered_contacts if delivered else reached),
        conversion_rate=_rate(converted[1], reached),
    )
    return overview, performance


def _segments(
    session: Session, campaign_id: str, where: list[Any], events: list[Any]
) -> list[SegmentStatistics]:
    """Deliveries to the contacts of each segment the campaign targets (campaigns API ``segments``),
    and the share of the segment's contacts sent to who converted.

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
        in_segment = sa.select(col(Contact.id)).where(matches)
        sent, failed, reached = _sends(session, [*where, col(Delivery.contact_id).in_(in_segment)])
        converted = session.scalar(
            sa.select(sa.func.count(sa.distinct(col(EngagementEvent.contact_id)))).where(
                *events,
                col(EngagementEvent.type) == EngagementType.converted,
                col(EngagementEvent.contact_id).in_(in_segment),
            )
        )
        performance = SegmentPerformance(
            sent=sent,
            failed=failed,
            send_success_rate=_rate(sent, sent + failed),
            converted=int(converted or 0),
            conversion_rate=_rate(int(converted or 0), reached),
        )
        result.append(SegmentStatistics(segment.id, segment.name, performance))
    return result


def _variations(session: Session, where: list[Any], events: list[Any]) -> list[VariationStatistics]:
    """Sends per A/B variation of each touchpoint that has variations, and their conversions:
    messages sent whose contact converted afterwards in the same execution."""
    converted = (
        sa.select(col(EngagementEvent.id))
        .where(
            *events,
            col(EngagementEvent.type) == EngagementType.converted,
            col(EngagementEvent.execution_id) == col(Delivery.execution_id),
            col(EngagementEvent.contact_id) == col(Delivery.contact_id),
        )
        .exists()
    )
    is_conversion = sa.case((sa.and_(col(Delivery.status) == DeliveryStatus.sent, converted), 1))
    rows = session.execute(
        sa.select(
            col(Delivery.touchpoint_id),
            col(Delivery.variation),
            col(Delivery.status),
            sa.func.count(),
            sa.func.count(is_conversion),
        )
        .where(*where, col(Delivery.variation).is_not(None))
        .group_by(col(Delivery.touchpoint_id), col(Delivery.variation), col(Delivery.status))
        .order_by(col(Delivery.touchpoint_id), col(Delivery.variation))
    ).all()
    found: dict[tuple[str, str], dict[str, int]] = {}
    for touchpoint_id, variation, status, count, conversions in rows:
        counts = found.setdefault((touchpoint_id, variation), {"conversions": 0})
        counts[str(status)] = int(count)
        counts["conversions"] += int(conversions)
    totals: dict[str, int] = {}
    for (touchpoint_id, _), counts in found.items():
        totals[touchpoint_id] = totals.get(touchpoint_id, 0) + _messages(counts)
    return [
        VariationStatistics(
            touchpoint_id=touchpoint_id,
            variation_id=variation,
            sent=counts.get(DeliveryStatus.sent, 0),
            failed=counts.get(DeliveryStatus.failed, 0),
            share=_rate(_messages(counts), totals[touchpoint_id]),
            conversions=counts["conversions"],
            conversion_rate=_rate(counts["conversions"], counts.get(DeliveryStatus.sent, 0)),
        )
        for (touchpoint_id, variation), counts in found.items()
    ]


def _messages(counts: dict[str, int]) -> int:
    """Deliveries in a variation's counts (whatever their status)."""
    return sum(n for key, n in counts.items() if key != "conversions")


def _timeline(session: Session, where: list[Any], events: list[Any]) -> list[Day]:
    """Per day: messages sent and failed, delivery receipts and conversions."""
    day = sa.func.date(col(Delivery.created_at))
    rows = list(
        session.execute(
            sa.select(day, col(Delivery.status), sa.func.count())
            .where(*where)
            .group_by(day, col(Delivery.status))
        ).all()
    )
    event_day = sa.func.date(col(EngagementEvent.occurred_at))
    events_kept: dict[str, str] = {
        EngagementType.delivered: "delivered",
        EngagementType.converted: "conversions",
    }
    keys: dict[str, str] = {"sent": "sent", "failed": "failed", **events_kept}
    rows += session.execute(
        sa.select(event_day, col(EngagementEvent.type), sa.func.count())
        .where(*events, col(EngagementEvent.type).in_(list(events_kept)))
        .group_by(event_day, col(EngagementEvent.type))
    ).all()
    by_day: dict[str, dict[str, int]] = {}
    for date, kind, count in rows:
        entry = by_day.setdefault(str(date), {})
        if kind in keys:  # skipped deliveries make the day appear, uncounted
            entry[keys[kind]] = int(count)
    return [Day(date, **by_day[date]) for date in sorted(by_day)]
