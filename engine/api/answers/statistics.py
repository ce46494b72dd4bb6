"""Campaign statistics as the campaigns API answers them (`GET …/campaigns/{id}/statistics`).

Read from :class:`engine.campaigns.statistics.CampaignStatistics` (its dataclasses' attributes
are these models' fields); a section the caller did not ask for (``?metrics=``) is left out of
the answer, not sent empty.
"""

from __future__ import annotations

from pydantic import field_serializer

from engine.api.answers.base import WireModel
from engine.campaigns.statistics import CampaignStatistics


class OverviewOut(WireModel):
    """Totals: ``messagesSent``, ``failed``, receipts, engaged contacts, ``revenue``."""

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

    @field_serializer("revenue")
    def _whole(self, revenue: float) -> int | float:
        """A whole amount is written without decimals (``120``, not ``120.0``)."""
        return int(revenue) if revenue.is_integer() else revenue


class PerformanceOut(WireModel):
    """Rates in percent, one decimal."""

    send_success_rate: float
    delivery_rate: float
    read_rate: float
    click_rate: float
    conversion_rate: float


class DayOut(WireModel):
    """One day (``YYYY-MM-DD``, UTC) of the timeline."""

    date: str
    sent: int
    failed: int
    delivered: int
    conversions: int


class SegmentPerformanceOut(WireModel):
    """Sends to a segment's contacts and their conversions."""

    sent: int
    failed: int
    send_success_rate: float
    converted: int
    conversion_rate: float


class SegmentStatisticsOut(WireModel):
    """A targeted segment: ``segmentId``, ``name``, ``performance``."""

    segment_id: str
    name: str
    performance: SegmentPerformanceOut


class VariationStatisticsOut(WireModel):
    """One A/B variation of a touchpoint."""

    touchpoint_id: str
    variation_id: str
    sent: int
    failed: int
    share: float
    conversions: int
    conversion_rate: float


class StatisticsOut(WireModel):
    """The sections asked for by ``?metrics=`` (all five by default)."""

    overview: OverviewOut | None = None
    performance: PerformanceOut | None = None
    timeline: list[DayOut] | None = None
    segments: list[SegmentStatisticsOut] | None = None
    variations: list[VariationStatisticsOut] | None = None

    @classmethod
    def of(cls, stats: CampaignStatistics) -> StatisticsOut:
        """From the computed statistics."""
        return cls.model_validate(stats)
