"""The scheduler's side of the algorithm: claim due work, recover lost work, finish executions.

Every claim is one statement that is safe with several schedulers at once: on PostgreSQL the
candidate rows are locked with ``FOR UPDATE SKIP LOCKED``; SQLite has a single writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.logging import get_logger
from engine.models import (
    OPEN_CHUNK_STATUSES,
    Campaign,
    CampaignStatus,
    Chunk,
    ChunkStatus,
    Execution,
    ExecutionStatus,
)
from engine.models.base import utcnow

log = get_logger()

_PRIORITY_BY_RANK = {0: "high", 1: "normal", 2: "low"}


@dataclass(frozen=True, slots=True)
class ClaimedChunk:
    """A chunk handed to a worker: its id, the attempt the message carries, its priority."""

    chunk_id: int
    attempt: int
    priority: str


def _locked_once(candidates: sa.Select[Any]) -> sa.Select[Any]:
    """Wrap a ``LIMIT … FOR UPDATE SKIP LOCKED`` select so PostgreSQL runs it exactly once.

    As a plain ``IN (subquery)`` the planner may rescan it, and each rescan skips different
    locked rows — the update then claims more rows than the limit.
    """
    cte = candidates.cte("candidates").prefix_with("MATERIALIZED", dialect="postgresql")
    return sa.select(cte.c[0])


def claim_due_executions(session: Session, limit: int = 100) -> list[str]:
    """Move due ``scheduled`` executions to ``queued`` and return their ids (to plan)."""
    now = utcnow()
    candidates = (
        sa.select(col(Execution.id))
        .where(
            col(Execution.status) == ExecutionStatus.scheduled,
            col(Execution.scheduled_at) <= now,
        )
        .order_by(col(Execution.scheduled_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = session.execute(
        sa.update(Execution)
        .where(
            col(Execution.id).in_(_locked_once(candidates)),
            col(Execution.status) == ExecutionStatus.scheduled,
        )
        .values(status=ExecutionStatus.queued, claimed_at=now, updated_at=now)
        .returning(col(Execution.id))
    )
    return [row[0] for row in result]


def in_flight_chunks(session: Session) -> int:
    """Return how many chunks are queued or running."""
    query = sa.select(sa.func.count()).where(
        col(Chunk.status).in_((ChunkStatus.queued, ChunkStatus.running))
    )
    return int(session.scalar(query) or 0)


def claim_chunks(session: Session, limit: int) -> list[ClaimedChunk]:
    """Move up to ``limit`` due pending chunks of running executions to ``queued``.

    Highest priority first, then oldest ``not_before``. Each claim increments ``attempts``,
    which the worker message carries: a stale duplicate message is recognised and dropped.
    """
    if limit <= 0:
        return []
    now = utcnow()
    running = sa.select(col(Execution.id)).where(col(Execution.status) == ExecutionStatus.running)
    candidates = (
        sa.select(col(Chunk.id))
        .where(
            col(Chunk.status) == ChunkStatus.pending,
            col(Chunk.not_before) <= now,
            col(Chunk.execution_id).in_(running),
        )
        .order_by(col(Chunk.priority_rank), col(Chunk.not_before), col(Chunk.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = session.execute(
        sa.update(Chunk)
        .where(
            col(Chunk.id).in_(_locked_once(candidates)),
            col(Chunk.status) == ChunkStatus.pending,
        )
        .values(status=ChunkStatus.queued, attempts=col(Chunk.attempts) + 1, queued_at=now)
        .returning(col(Chunk.id), col(Chunk.attempts), col(Chunk.priority_rank))
    )
    claimed = [
        ClaimedChunk(chunk_id=cid, attempt=attempt, priority=_PRIORITY_BY_RANK.get(rank, "normal"))
        for cid, attempt, rank in result
    ]
    claimed.sort(key=lambda c: (c.priority != "high", c.priority == "low", c.chunk_id))
    return claimed


def recover_stale_chunks(
    session: Session, heartbeat_stale_s: float, queued_stale_s: float, max_attempts: int
) -> int:
    """Put chunks whose worker died (stale heartbeat) or whose message was lost back to pending.

    A chunk that already used ``max_attempts`` is marked ``failed`` with the reason instead.

    Returns:
        How many chunks were recovered or failed.
    """
    now = utcnow()
    stale = sa.or_(
        sa.and_(
            col(Chunk.status) == ChunkStatus.running,
            col(Chunk.heartbeat_at) < now - timedelta(seconds=heartbeat_stale_s),
        ),
        sa.and_(
            col(Chunk.status) == ChunkStatus.queued,
            col(Chunk.queued_at) < now - timedelta(seconds=queued_stale_s),
        ),
    )
    failed = cast(
        sa.CursorResult[Any],
        session.execute(
            sa.update(Chunk)
            .where(stale, col(Chunk.attempts) >= max_attempts)
            .values(status=ChunkStatus.failed, error=f"worker lost {max_attempts} times")
        ),
    ).rowcount
    recovered = cast(
        sa.CursorResult[Any],
        session.execute(
            sa.update(Chunk)
            .where(stale)
            .values(status=ChunkStatus.pending, error="worker lost; retrying")
        ),
    ).rowcount
    if failed or recovered:
        log.warning("chunks.recovered", recovered=recovered, failed=failed)
    return int(failed or 0) + int(recovered or 0)


def recover_stale_plans(session: Session, queued_stale_s: float) -> list[str]:
    """Return ids of executions queued for planning too long (message lost), re-claimed now."""
    now = utcnow()
    result = session.execute(
        sa.update(Execution)
        .where(
            col(Execution.status) == ExecutionStatus.queued,
            col(Execution.claimed_at) < now - timedelta(seconds=queued_stale_s),
        )
        .values(claimed_at=now)
        .returning(col(Execution.id))
    )
    return [row[0] for row in result]


def finish_execution_if_done(session: Session, execution_id: str) -> str | None:
    """Complete (or fail) a running execution that has no open chunk left.

    Returns:
        The new status, or ``None`` if the execution is not finished.
    """
    open_chunks = sa.exists().where(
        col(Chunk.execution_id) == execution_id,
        col(Chunk.status).in_(OPEN_CHUNK_STATUSES),
    )
    failed_chunks = int(
        session.scalar(
            sa.select(sa.func.count()).where(
                col(Chunk.execution_id) == execution_id,
                col(Chunk.status) == ChunkStatus.failed,
            )
        )
        or 0
    )
    status = ExecutionStatus.failed if failed_chunks else ExecutionStatus.completed
    now = utcnow()
    updated = session.execute(
        sa.update(Execution)
        .where(
            col(Execution.id) == execution_id,
            col(Execution.status) == ExecutionStatus.running,
            ~open_chunks,
        )
        .values(
            status=status,
            finished_at=now,
            updated_at=now,
            error=f"{failed_chunks} chunks failed after retries" if failed_chunks else None,
        )
        .returning(col(Execution.campaign_id))
    ).first()
    if updated is None:
        return None
    campaign_status = CampaignStatus.failed if failed_chunks else CampaignStatus.completed
    session.execute(
        sa.update(Campaign)
        .where(col(Campaign.id) == updated[0])
        .values(status=campaign_status, updated_at=now)
    )
    log.info(f"execution.{status}", execution_id=execution_id, campaign_id=updated[0])
    return str(status)


def running_execution_ids(session: Session) -> list[str]:
    """Return ids of executions in ``running`` status (the sweep checks them for completion)."""
    return list(
        session.scalars(
            sa.select(col(Execution.id)).where(col(Execution.status) == ExecutionStatus.running)
        )
    )
