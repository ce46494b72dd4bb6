"""Progress and statistics of an execution: a few indexed reads, never a scan of deliveries.

Progress has the shape of the campaigns API's ``GET /campaigns/:id/progress``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

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
from engine.models.base import iso, utcnow

#: Seconds of the rate timeline that ``currentRate`` averages over.
RATE_WINDOW_S = 10


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


def error_counts(session: Session, execution_id: str) -> list[dict[str, Any]]:
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
    return [{"code": code, "count": count, "message": message} for code, count, message in rows]


def get_progress(
    session: Session, execution_id: str, organization_id: str | None = None
) -> dict[str, Any]:
    """Return an execution's live progress.

    Returns:
        ``{"executionId", "campaignId", "status", "progress": {"percentage", "processed",
        "total", "successful", "failed", "skipped"}, "currentRate", "estimatedCompletion",
        "errors": [{"code", "count", "message"}], "startedAt", "finishedAt"}``.

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
    percentage = round(100.0 * ex.processed / ex.total, 1) if ex.total else 0.0
    return {
        "executionId": ex.id,
        "campaignId": ex.campaign_id,
        "status": ex.status,
        "progress": {
            "percentage": percentage,
            "processed": ex.processed,
            "total": ex.total,
            "successful": ex.successful,
            "failed": ex.failed,
            "skipped": ex.skipped,
        },
        "currentRate": rate,
        "estimatedCompletion": iso(eta),
        "errors": error_counts(session, ex.id),
        "startedAt": iso(ex.started_at),
        "finishedAt": iso(ex.finished_at),
        "error": ex.error,
    }


def get_statistics(
    session: Session, execution_id: str, organization_id: str | None = None
) -> dict[str, Any]:
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
    per_touchpoint: dict[str, dict[str, Any]] = {}
    for tp_id, name, status, count in rows:
        entry = per_touchpoint.setdefault(
            tp_id, {"touchpointId": tp_id, "name": name, "sent": 0, "failed": 0, "skipped": 0}
        )
        entry[status] = count
    end = ex.finished_at or utcnow()
    duration = (end - ex.started_at).total_seconds() if ex.started_at else 0.0
    return {
        "executionId": ex.id,
        "status": ex.status,
        "overview": {
            "messagesSent": ex.successful,
            "failed": ex.failed,
            "skipped": ex.skipped,
            "processed": ex.processed,
        },
        "touchpoints": list(per_touchpoint.values()),
        "durationSeconds": round(duration, 3),
        "averageRate": round(ex.processed / duration, 1) if duration > 0 else 0.0,
    }
