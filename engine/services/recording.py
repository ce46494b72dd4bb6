"""Writing a chunk's outcomes: one transaction for deliveries, counters, errors and timeline."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.db import insert_ignore, table_of, upsert_add
from engine.models import (
    Chunk,
    ChunkStatus,
    Delivery,
    DeliveryStatus,
    Execution,
    ExecutionErrorCount,
    ExecutionRate,
)
from engine.models.base import utcnow
from engine.services.sending import SendOutcome


def record_outcomes(
    session: Session,
    chunk: Chunk,
    attempt: int,
    outcomes: list[SendOutcome],
    stopped: str | None,
    next_step: tuple[str, float] | None,
) -> int:
    """Record a chunk's outcomes and advance it, all in the caller's transaction.

    Deliveries are insert-or-skip on (execution, touchpoint, contact): only rows actually
    inserted are counted, so a chunk delivered twice (a worker presumed dead) counts once.
    Counters are ``UPDATE … SET n = n + :k``, written last to hold the hot row briefly.

    Returns:
        How many new deliveries were recorded.
    """
    dialect = session.get_bind().dialect.name
    now = utcnow()
    inserted = _insert_deliveries(session, dialect, chunk, outcomes, now)
    by_status = Counter(status for status, _ in inserted)
    errors = Counter(code for status, code in inserted if status == DeliveryStatus.failed and code)
    if errors:
        messages = {o.error_code: o.error_message or "" for o in outcomes if o.error_code}
        rows = [
            {
                "execution_id": chunk.execution_id,
                "code": code,
                "count": n,
                "message": messages.get(code, "")[:500],
            }
            for code, n in sorted(errors.items())
        ]
        session.execute(
            upsert_add(
                table_of(ExecutionErrorCount), dialect, ["execution_id", "code"], "count", rows
            )
        )
    if inserted:
        rate_row = [
            {"execution_id": chunk.execution_id, "second": int(time.time()), "count": len(inserted)}
        ]
        session.execute(
            upsert_add(
                table_of(ExecutionRate), dialect, ["execution_id", "second"], "count", rate_row
            )
        )
    _advance_chunk(session, dialect, chunk, attempt, stopped, next_step)
    if inserted:
        session.execute(
            sa.update(Execution)
            .where(col(Execution.id) == chunk.execution_id)
            .values(
                processed=col(Execution.processed) + len(inserted),
                successful=col(Execution.successful) + by_status[DeliveryStatus.sent],
                failed=col(Execution.failed) + by_status[DeliveryStatus.failed],
                skipped=col(Execution.skipped) + by_status[DeliveryStatus.skipped],
                updated_at=now,
            )
        )
    return len(inserted)


def chunk_status_after(stopped: str | None) -> ChunkStatus:
    """The status a chunk takes when its worker finishes (``None``) or stops (why)."""
    if stopped is None:
        return ChunkStatus.done
    return ChunkStatus.pending if stopped == "paused" else ChunkStatus.cancelled


def _insert_deliveries(
    session: Session, dialect: str, chunk: Chunk, outcomes: list[SendOutcome], now: object
) -> list[tuple[str, str | None]]:
    if not outcomes:
        return []
    table = table_of(Delivery)
    rows = [
        {
            "execution_id": chunk.execution_id,
            "touchpoint_id": chunk.touchpoint_id,
            "contact_id": o.contact_id,
            "status": o.status,
            "error_code": o.error_code,
            "attempts": o.attempts,
            "provider_message_id": o.provider_message_id,
            "variation": o.variation[:64] if o.variation else None,
            "created_at": now,
        }
        # Contact order: two attempts of one chunk lock index entries in the same order.
        for o in sorted(outcomes, key=lambda o: o.contact_id)
    ]
    stmt = insert_ignore(table, dialect).returning(table.c.status, table.c.error_code)
    return [(status, code) for status, code in session.execute(stmt, rows)]


def _advance_chunk(
    session: Session,
    dialect: str,
    chunk: Chunk,
    attempt: int,
    stopped: str | None,
    next_step: tuple[str, float] | None,
) -> None:
    """Mark the chunk done (or back to pending when paused) and create the next step's chunk."""
    status = chunk_status_after(stopped)
    updated = cast(
        sa.CursorResult[Any],
        session.execute(
            sa.update(Chunk)
            .where(
                col(Chunk.id) == chunk.id,
                col(Chunk.attempts) == attempt,
                col(Chunk.status) == ChunkStatus.running,
            )
            .values(status=status, heartbeat_at=None, error=None)
        ),
    ).rowcount
    if not updated or status != ChunkStatus.done or next_step is None:
        return
    touchpoint_id, delay_s = next_step
    session.execute(
        insert_ignore(table_of(Chunk), dialect),
        [
            {
                "execution_id": chunk.execution_id,
                "step": chunk.step + 1,
                "touchpoint_id": touchpoint_id,
                "chunk_no": chunk.chunk_no,
                "first_contact_id": chunk.first_contact_id,
                "last_contact_id": chunk.last_contact_id,
                "size": chunk.size,
                "status": ChunkStatus.pending,
                "priority_rank": chunk.priority_rank,
                "not_before": utcnow() + timedelta(seconds=delay_s),
                "attempts": 0,
            }
        ],
    )
