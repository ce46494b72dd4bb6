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

from engine.execution.lifecycle import CAMPAIGN_STATUS_OF, moving_from
from engine.integrations.webhooks import emit_campaign
from engine.logging import get_logger
from engine.models import (
    OPEN_CHUNK_STATUSES,
    PRIORITY_RANK,
    Campaign,
    Chunk,
    ChunkStatus,
    Execution,
    ExecutionStatus,
)
from engine.models.base import utcnow

log = get_logger()

#: Priority names by their dispatch rank (0 = high).
_PRIORITY_BY_RANK = sorted(PRIORITY_RANK, key=PRIORITY_RANK.__getitem__)


@dataclass(frozen=True, slots=True)
class ClaimedChunk:
    """A chunk handed to a worker: its id, the dispatch attempt, its priority rank."""

    chunk_id: int
    attempt: int
    rank: int

    @property
    def priority(self) -> str:
        """The priority name (``high``, ``normal``, ``low``): it names the queue."""
        return str(_PRIORITY_BY_RANK[self.rank])


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
            col(Execution.status) == moving_from(ExecutionStatus.scheduled, ExecutionStatus.queued),
        )
        .values(status=ExecutionStatus.queued, claimed_at=now, updated_at=now, plan_attempts=1)
        .returning(col(Execution.id))
    )
    return [row[0] for row in result]


def unclaim_executions(session: Session, execution_ids: list[str]) -> int:
    """Put claimed executions whose planning could not be enqueued back to ``scheduled``.

    The broker was down: nothing was handed to a worker, so it is not a planning attempt.
    """
    result = session.execute(
        sa.update(Execution)
        .where(
            col(Execution.id).in_(execution_ids),
            col(Execution.status) == moving_from(ExecutionStatus.queued, ExecutionStatus.scheduled),
        )
        .values(status=ExecutionStatus.scheduled, claimed_at=None, updated_at=utcnow())
    )
    return _rowcount(result)


def in_flight_chunks(session: Session) -> int:
    """Return how many chunks are queued or running."""
    query = sa.select(sa.func.count()).where(
        col(Chunk.status).in_((ChunkStatus.queued, ChunkStatus.running))
    )
    return int(session.scalar(query) or 0)


#: The PostgreSQL advisory lock that serialises dispatchers (every scheduler's tick, and each
#: worker right after planning): each counts what is in flight, then claims up to the room.
_DISPATCH_LOCK = 0x64697370  # "disp": not the migration lock's key


def dispatch_room(session: Session, max_in_flight: int) -> int:
    """How many more chunks may be queued now (``max_in_flight`` less those queued or running).

    Takes the dispatch lock until the transaction ends, so that two dispatchers never both fill
    the same room (SQLite serialises writing transactions by itself).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DISPATCH_LOCK})
    return max_in_flight - in_flight_chunks(session)


def claim_chunks(session: Session, limit: int) -> list[ClaimedChunk]:
    """Move up to ``limit`` due pending chunks of running executions to ``queued``.

    Highest priority first, then oldest ``not_before``. Each claim increments ``attempts``;
    the worker that takes the chunk owns that attempt (see ``delivery.deliver_chunk``).
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
    claimed = [ClaimedChunk(chunk_id, attempt, rank) for chunk_id, attempt, rank in result]
    return sorted(claimed, key=lambda c: (c.rank, c.chunk_id))


def give_back_chunks(
    session: Session,
    where: sa.ColumnElement[bool],
    reason: str,
    *,
    count_failure: bool,
    max_failures: int,
    retry_after_s: float = 0.0,
) -> int:
    """Send chunks matching ``where`` back to ``pending`` for the scheduler to dispatch again.

    With ``count_failure`` (the worker died or hit an error) the chunk's ``failures`` grows, and
    a chunk that reaches ``max_failures`` is marked ``failed`` with ``reason`` instead. A lost
    or late broker message, or an outage, is not the chunk's failure and does not count.
    ``retry_after_s`` delays the next dispatch (an outage's backoff).

    Returns:
        How many chunks changed.
    """
    changed = 0
    if count_failure:
        failed = session.execute(
            sa.update(Chunk)
            .where(where, col(Chunk.failures) + 1 >= max_failures)
            .values(
                status=ChunkStatus.failed,
                failures=col(Chunk.failures) + 1,
                error=f"{reason} (failed {max_failures} times)"[:2000],
            )
        )
        changed += _rowcount(failed)
    values: dict[str, Any] = {
        "status": ChunkStatus.pending,
        "failures": col(Chunk.failures) + (1 if count_failure else 0),
        "heartbeat_at": None,
        "error": reason[:2000],
    }
    if retry_after_s:
        values["not_before"] = utcnow() + timedelta(seconds=retry_after_s)
    back = session.execute(sa.update(Chunk).where(where).values(**values))
    return changed + _rowcount(back)


def _rowcount(result: Any) -> int:
    return int(cast(sa.CursorResult[Any], result).rowcount or 0)


def recover_stale_chunks(
    session: Session,
    heartbeat_stale_s: float,
    queued_stale_s: float,
    max_failures: int,
    *,
    dead_workers: bool = True,
) -> int:
    """Give back chunks whose worker died (stale heartbeat) or whose message was lost.

    ``dead_workers=False`` skips the stale-heartbeat sweep: right after the database came back,
    every heartbeat looks stale because nobody could write one, and the workers are alive.

    Returns:
        How many chunks were recovered (or failed, past ``max_failures`` worker deaths).
    """
    now = utcnow()
    dead_worker = sa.and_(
        col(Chunk.status) == ChunkStatus.running,
        col(Chunk.heartbeat_at) < now - timedelta(seconds=heartbeat_stale_s),
    )
    lost_message = sa.and_(
        col(Chunk.status) == ChunkStatus.queued,
        col(Chunk.queued_at) < now - timedelta(seconds=queued_stale_s),
    )
    died = 0
    if dead_workers:
        died = give_back_chunks(
            session,
            dead_worker,
            "worker stopped heartbeating",
            count_failure=True,
            max_failures=max_failures,
        )
    lost = give_back_chunks(
        session,
        lost_message,
        "message not picked up",
        count_failure=False,
        max_failures=max_failures,
    )
    if died or lost:
        log.warning("chunks.recovered", dead_worker=died, lost_message=lost)
    return died + lost


def recover_stale_plans(session: Session, queued_stale_s: float, max_attempts: int) -> list[str]:
    """Re-claim executions queued for planning too long (message lost or planning failing).

    Past ``max_attempts`` the execution fails with the reason.

    Returns:
        Ids of executions to enqueue for planning again.
    """
    now = utcnow()
    stale = sa.and_(
        col(Execution.status) == moving_from(ExecutionStatus.queued, ExecutionStatus.failed),
        col(Execution.claimed_at) < now - timedelta(seconds=queued_stale_s),
    )
    given_up = session.execute(
        sa.update(Execution)
        .where(stale, col(Execution.plan_attempts) >= max_attempts)
        .values(
            status=ExecutionStatus.failed,
            finished_at=now,
            updated_at=now,
            error=f"planning did not complete after {max_attempts} attempts",
        )
        .returning(col(Execution.id))
    ).all()
    for (execution_id,) in given_up:
        _close_campaign(session, execution_id)
    result = session.execute(
        sa.update(Execution)
        .where(stale)
        .values(claimed_at=now, plan_attempts=col(Execution.plan_attempts) + 1)
        .returning(col(Execution.id))
    )
    return [row[0] for row in result]


def finish_execution_if_done(session: Session, execution_id: str) -> str | None:
    """Complete (or fail) a running execution that has no open chunk left.

    Returns:
        The new status, or ``None`` if the execution is not finished.
    """
    of_execution = col(Chunk.execution_id) == execution_id
    open_chunks = sa.exists().where(of_execution, col(Chunk.status).in_(OPEN_CHUNK_STATUSES))
    # Decided inside the UPDATE, so a chunk failed concurrently can't slip past as "completed".
    any_failed = sa.exists().where(of_execution, col(Chunk.status) == ChunkStatus.failed)
    now = utcnow()
    updated = session.execute(
        sa.update(Execution)
        .where(
            col(Execution.id) == execution_id,
            col(Execution.status)
            == moving_from(ExecutionStatus.running, ExecutionStatus.completed),
            ~open_chunks,
        )
        .values(
            status=sa.case(
                (any_failed, ExecutionStatus.failed.value), else_=ExecutionStatus.completed.value
            ),
            finished_at=now,
            updated_at=now,
            error=sa.case((any_failed, "some chunks failed after retries"), else_=None),
        )
        .returning(col(Execution.campaign_id), col(Execution.status))
    ).first()
    if updated is None:
        return None
    campaign_id, status = updated
    _close_campaign(session, execution_id)
    log.info(f"execution.{status}", execution_id=execution_id, campaign_id=campaign_id)
    return str(status)


def _close_campaign(session: Session, execution_id: str) -> None:
    """Give the campaign of a just-finished execution its final status and emit the event."""
    execution = session.get_one(Execution, execution_id, populate_existing=True)
    campaign = session.get_one(Campaign, execution.campaign_id, populate_existing=True)
    failed = execution.status == ExecutionStatus.failed
    campaign.status = CAMPAIGN_STATUS_OF[ExecutionStatus(execution.status)]
    campaign.updated_at = utcnow()
    session.flush()
    event = "campaign.failed" if failed else "campaign.completed"
    extra = {"reason": execution.error} if execution.error else {}
    emit_campaign(session, event, campaign, execution, **extra)


def running_execution_ids(session: Session) -> list[str]:
    """Return ids of executions in ``running`` status (the sweep checks them for completion)."""
    return list(
        session.scalars(
            sa.select(col(Execution.id)).where(col(Execution.status) == ExecutionStatus.running)
        )
    )
