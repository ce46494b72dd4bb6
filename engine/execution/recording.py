"""Recording a chunk as it goes: each send batch's outcomes committed before the next is sent.

One transaction per batch writes deliveries, counters, error counts and the rate timeline, and
reads back whether to go on (paused, cancelled, still owned); :func:`finish_chunk` closes the
chunk. A crash re-sends at most the batch that was in flight.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.db import insert_ignore, table_of, upsert_add
from engine.execution.lifecycle import StopReason, chunk_status_after
from engine.execution.sending import SendOutcome
from engine.models import (
    Chunk,
    ChunkStatus,
    Delivery,
    DeliveryStatus,
    Execution,
    ExecutionErrorCount,
    ExecutionRate,
    ExecutionStatus,
)
from engine.models.base import utcnow


@dataclass(frozen=True, slots=True)
class BatchRecorded:
    """What recording a batch learnt: whether to go on."""

    #: The execution's status, read in the same transaction (pause and cancel show here).
    execution_status: str
    #: Whether this worker's attempt still owns the chunk (not given back as stalled).
    owned: bool


def record_batch(
    session: Session, chunk: Chunk, attempt: int, outcomes: list[SendOutcome]
) -> BatchRecorded:
    """Record one send batch's outcomes, in the caller's transaction, and read what's next.

    Deliveries are insert-or-skip on (execution, touchpoint, contact): only rows actually
    inserted are counted, so a batch recorded twice (a worker presumed dead) counts once.
    Outcomes are recorded whoever owns the chunk now: those contacts were reached. The chunk's
    heartbeat moves with the batch (it shows progress, not mere life). Counters are
    ``UPDATE … SET n = n + :k``, written last to hold the hot row briefly. Statements run on
    the session's connection (Core): the ORM's bulk-update machinery cost more than the SQL.
    """
    conn = session.connection()
    dialect = conn.dialect.name
    now = utcnow()
    inserted = _insert_deliveries(conn, chunk, outcomes, now)
    by_status = Counter(status for status, _ in inserted)
    errors = Counter(code for status, code in inserted if status == DeliveryStatus.failed and code)
    if errors:
        messages = {fit(o.error_code, 64): o.error_message for o in outcomes if o.error_code}
        rows = [
            {
                "execution_id": chunk.execution_id,
                "code": code,
                "count": n,
                "message": fit(messages.get(code), 500) or "",
            }
            for code, n in sorted(errors.items())
        ]
        conn.execute(
            upsert_add(
                table_of(ExecutionErrorCount), dialect, ["execution_id", "code"], "count", rows
            )
        )
    if inserted:
        rate_row = [
            {"execution_id": chunk.execution_id, "second": int(time.time()), "count": len(inserted)}
        ]
        conn.execute(
            upsert_add(
                table_of(ExecutionRate), dialect, ["execution_id", "second"], "count", rate_row
            )
        )
    owned = _rowcount(
        conn.execute(
            sa.update(table_of(Chunk)).where(owned_by(chunk.id, attempt)).values(heartbeat_at=now)
        )
    )
    counters = sa.update(table_of(Execution)).where(col(Execution.id) == chunk.execution_id)
    status: object
    if inserted:
        counters = counters.values(
            processed=col(Execution.processed) + len(inserted),
            successful=col(Execution.successful) + by_status[DeliveryStatus.sent],
            failed=col(Execution.failed) + by_status[DeliveryStatus.failed],
            skipped=col(Execution.skipped) + by_status[DeliveryStatus.skipped],
            updated_at=now,
        )
        status = conn.execute(counters.returning(col(Execution.status))).scalar_one()
    else:
        status = conn.scalar(
            sa.select(col(Execution.status)).where(col(Execution.id) == chunk.execution_id)
        )
    return BatchRecorded(str(status), owned > 0)


def fit(value: str | None, limit: int) -> str | None:
    """Text a provider gave us, storable as is: no NUL characters (PostgreSQL refuses them), at
    most ``limit`` characters."""
    if value is None:
        return None
    return value.replace("\x00", "")[:limit] or None


def finish_chunk(
    session: Session,
    chunk: Chunk,
    attempt: int,
    stopped: StopReason | None,
    next_step: tuple[str, float] | None,
    *,
    retry_after_s: float = 0.0,
) -> bool:
    """Mark the chunk done (or give it back, or cancel it) and create the next step's chunk.

    Fenced by ``attempt``: a worker that no longer owns the chunk changes nothing.
    ``retry_after_s`` delays a chunk given back (an outage's backoff).

    Returns:
        Whether this worker still owned the chunk.
    """
    conn = session.connection()
    # Read under a share lock: a cancel (which locks the row to write it) either lands before
    # and is seen here, or waits and then cancels the next step's chunk created here.
    current = conn.scalar(
        sa.select(col(Execution.status))
        .where(col(Execution.id) == chunk.execution_id)
        .with_for_update(read=True)
    )
    if current == ExecutionStatus.cancelled:
        stopped = StopReason.cancelled
    status = chunk_status_after(stopped)
    values: dict[str, Any] = {"status": status, "heartbeat_at": None, "error": None}
    if status == ChunkStatus.pending and retry_after_s:
        values["not_before"] = utcnow() + timedelta(seconds=retry_after_s)
        values["error"] = f"given back: {stopped}"
    updated = _rowcount(
        conn.execute(sa.update(table_of(Chunk)).where(owned_by(chunk.id, attempt)).values(**values))
    )
    if updated and status == ChunkStatus.done and next_step is not None:
        _create_next_chunk(conn, chunk, next_step)
    return updated > 0


def owned_by(chunk_id: int | None, attempt: int) -> sa.ColumnElement[bool]:
    """The chunk, if the worker of ``attempt`` still runs it: every write of a worker's is
    fenced by this."""
    return sa.and_(
        col(Chunk.id) == chunk_id,
        col(Chunk.attempts) == attempt,
        col(Chunk.status) == ChunkStatus.running,
    )


def _rowcount(result: Any) -> int:
    return int(cast(sa.CursorResult[Any], result).rowcount or 0)


#: PostgreSQL's delivery insert: the batch as one array per column, so the statement's text is
#: the same for every batch (no per-row SQL to build, split and convert; psycopg prepares it
#: on the server after a few runs). Values shared by the batch are bound once, not per row.
#: ``unnest`` yields the arrays in order, so rows are inserted (and locked) in contact order.
_PG_INSERT_DELIVERIES = sa.text(
    """
    INSERT INTO deliveries (execution_id, touchpoint_id, contact_id, status, error_code,
                            attempts, provider_message_id, variation, created_at)
    SELECT CAST(:execution_id AS varchar), CAST(:touchpoint_id AS varchar), u.contact_id,
           u.status, u.error_code, u.attempts, u.provider_message_id, u.variation,
           CAST(:created_at AS timestamptz)
    FROM unnest(CAST(:contact_ids AS bigint[]), CAST(:statuses AS text[]),
                CAST(:error_codes AS text[]), CAST(:attempts AS integer[]),
                CAST(:provider_message_ids AS text[]), CAST(:variations AS text[]))
         AS u(contact_id, status, error_code, attempts, provider_message_id, variation)
    ON CONFLICT DO NOTHING
    RETURNING status, error_code
    """
)


def _insert_deliveries(
    conn: sa.Connection, chunk: Chunk, outcomes: list[SendOutcome], now: object
) -> list[tuple[str, str | None]]:
    """Insert the batch's deliveries, skipping those already there; return what was inserted
    as ``(status, error_code)``."""
    if not outcomes:
        return []
    # Contact order: two attempts of one chunk lock index entries in the same order.
    ordered = sorted(outcomes, key=lambda o: o.contact_id)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return _insert_deliveries_pg(conn, chunk, ordered, now)
    table = table_of(Delivery)
    rows = [
        {
            "execution_id": chunk.execution_id,
            "touchpoint_id": chunk.touchpoint_id,
            "contact_id": o.contact_id,
            "status": o.status,
            # Fitted to the columns: a provider's over-long id must not make the save fail
            # (and a save that fails the same way every time must not re-send anyone).
            "error_code": fit(o.error_code, 64),
            "attempts": o.attempts,
            "provider_message_id": fit(o.provider_message_id, 200),
            "variation": fit(o.variation, 64),
            "created_at": now,
        }
        for o in ordered
    ]
    stmt = insert_ignore(table, dialect).returning(table.c.status, table.c.error_code)
    return [(status, code) for status, code in conn.execute(stmt, rows)]


def _insert_deliveries_pg(
    conn: sa.Connection, chunk: Chunk, ordered: list[SendOutcome], now: object
) -> list[tuple[str, str | None]]:
    params = {
        "execution_id": chunk.execution_id,
        "touchpoint_id": chunk.touchpoint_id,
        "created_at": now,
        "contact_ids": [o.contact_id for o in ordered],
        # Checked against the enum as the ORM column's type would (a stray status is refused).
        "statuses": [DeliveryStatus(o.status).value for o in ordered],
        "error_codes": [fit(o.error_code, 64) for o in ordered],
        "attempts": [o.attempts for o in ordered],
        "provider_message_ids": [fit(o.provider_message_id, 200) for o in ordered],
        "variations": [fit(o.variation, 64) for o in ordered],
    }
    result = conn.execute(_PG_INSERT_DELIVERIES, params)
    return [(DeliveryStatus(status), code) for status, code in result]


def _create_next_chunk(conn: sa.Connection, chunk: Chunk, next_step: tuple[str, float]) -> None:
    """The same contacts' chunk of the next step, due after that step's delay."""
    touchpoint_id, delay_s = next_step
    conn.execute(
        insert_ignore(table_of(Chunk), conn.dialect.name),
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
