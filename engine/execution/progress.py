"""Progress and statistics of an execution: a few indexed reads, never a scan of deliveries.

They are answered as :class:`Progress` and :class:`ExecutionStatistics`; the API and the CLI
choose how to show them (the campaigns API's ``GET /campaigns/:id/progress`` shape).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.execution.runs import get_execution
from engine.models import (
    FINAL_EXECUTION_STATUSES,
    Delivery,
    ExecutionErrorCount,
    ExecutionRate,
    Touchpoint,
)
from engine.models.base import utcnow

#: Seconds of the rate timeline that ``currentRate`` averages over.
RATE_WINDOW_S = 10


@dataclass(frozen=True)
class ErrorCount:
    """How many deliveries failed with one error code, and the last message seen."""

    code: str
    count: int
    message: str | None


@dataclass(frozen=True)
class Progress:
    """Where an execution stands: counts, the current rate and when it should finish."""

    execution_id: str
    campaign_id: str
    status: str
    processed: int
    total: int
    successful: int
    failed: int
    skipped: int
    #: Deliveries per second over the last :data:`RATE_WINDOW_S` seconds.
    current_rate: float
    #: When it finished, or should at the current rate (``None`` when nothing moves).
    estimated_completion: datetime | None
    errors: list[ErrorCount]
    started_at: datetime | None
    finished_at: datetime | None
    #: Why it failed, when it did.
    error: str | None

    @property
    def percentage(self) -> float:
        """Processed share of the audience, in percent with one decimal."""
        return round(100.0 * self.processed / self.total, 1) if self.total else 0.0


@dataclass(frozen=True)
class TouchpointCounts:
    """Deliveries of one touchpoint by outcome."""

    touchpoint_id: str
    name: str
    sent: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class ExecutionStatistics:
    """An execution's outcome per touchpoint, its duration and average rate."""

    execution_id: str
    status: str
    messages_sent: int
    failed: int
    skipped: int
    processed: int
    touchpoints: list[TouchpointCounts]
    duration_s: float
    average_rate: float


def current_rate(
    session: Session, execution_id: str, started_at: datetime | None, window_s: int = RATE_WINDOW_S
) -> float:
    """Return deliveries per second over the last ``window_s`` seconds (or since the start)."""
    now = int(time.time())
    if started_at is not None:
        window_s = max(1, min(window_s, now - int(started_at.timestamp())))
    total = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(col(ExecutionRate.count)), 0)).where(
            col(ExecutionRate.execution_id) == execution_id,
            col(ExecutionRate.second) >= now - window_s,
            col(ExecutionRate.second) < now,
        )
    )
    return round(float(total or 0) / window_s, 1)


def error_counts(session: Session, execution_id: str) -> list[ErrorCount]:
    """Return the execution's failures grouped by code, most frequent first."""
    rows = session.execute(
        sa.select(
            col(ExecutionErrorCount.code),
            col(ExecutionErrorCount.count),
            col(ExecutionErrorCount.message),
        )
        .where(col(ExecutionErrorCount.execution_id) == execution_id)
        .order_by(col(ExecutionErrorCount.count).desc(), col(ExecutionErrorCount.code))
    )
    return [ErrorCount(code, count, message) for code, count, message in rows]


def get_progress(
    session: Session, execution_id: str, organization_id: str | None = None
) -> Progress:
    """Return an execution's live progress.

    Raises:
        NotFound: no such execution in the organization.
    """
    ex = get_execution(session, execution_id, organization_id)
    rate = current_rate(session, ex.id, ex.started_at)
    remaining = max(ex.total - ex.processed, 0)
    if ex.status in FINAL_EXECUTION_STATUSES:
        eta: datetime | None = ex.finished_at
        rate = (
            0.0
            if ex.finished_at and (utcnow() - ex.finished_at).total_seconds() > RATE_WINDOW_S
            else rate
        )
    elif rate > 0:
        eta = utcnow() + timedelta(seconds=remaining / rate)
    else:
        eta = None
    return Progress(
        execution_id=ex.id,
        campaign_id=ex.campaign_id,
        status=ex.status,
        processed=ex.processed,
        total=ex.total,
        successful=ex.successful,
        failed=ex.failed,
        skipped=ex.skipped,
        current_rate=rate,
        estimated_completion=eta,
        # Only failures write error counts (with ``failed``, in one transaction): a run without
        # any is answered without reading them.
        errors=error_counts(session, ex.id) if ex.failed else [],
        started_at=ex.started_at,
        finished_at=ex.finished_at,
        error=ex.error,
    )


def get_statistics(
    session: Session, execution_id: str, organization_id: str | None = None
) -> ExecutionStatistics:
    """Return delivery counts per touchpoint and status, the duration and the average rate.

    Computed from the stored deliveries (one grouped query on the unique index).
    """
    ex = get_execution(session, execution_id, organization_id)
    rows = session.execute(
        sa.select(
            col(Delivery.touchpoint_id),
            col(Touchpoint.name),
            col(Delivery.status),
            sa.func.count(),
        )
        .join(Touchpoint, col(Touchpoint.id) == col(Delivery.touchpoint_id))
        .where(col(Delivery.execution_id) == ex.id)
        .group_by(
            col(Delivery.touchpoint_id),
            col(Touchpoint.name),
            col(Touchpoint.position),
            col(Delivery.status),
        )
        .order_by(col(Touchpoint.position))
    )
    per_touchpoint: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    for tp_id, name, status, count in rows:
        names[tp_id] = name
        per_touchpoint.setdefault(tp_id, {})[status] = count
    end = ex.finished_at or utcnow()
    duration = (end - ex.started_at).total_seconds() if ex.started_at else 0.0
    return ExecutionStatistics(
        execution_id=ex.id,
        status=ex.status,
        messages_sent=ex.successful,
        failed=ex.failed,
        skipped=ex.skipped,
        processed=ex.processed,
        touchpoints=[
            TouchpointCounts(tp_id, names[tp_id], **counts)
            for tp_id, counts in per_touchpoint.items()
        ],
        duration_s=round(duration, 3),
        average_rate=round(ex.processed / duration, 1) if duration > 0 else 0.0,
    )
