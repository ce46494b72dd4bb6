"""Delivering one chunk: the hot path of every campaign.

One chunk = one contiguous contact-id range of one step. The worker claims it (fenced by the
attempt number), skips contacts that already have a delivery row (so a re-run after a crash is
exact), sends in rate-limited batches, and writes deliveries, counters, error counts and the
rate timeline in one transaction. Finishing a step's chunk creates the next step's chunk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.channels import OutgoingMessage, idempotency_key
from engine.db import session_scope
from engine.logging import get_logger
from engine.models import (
    Campaign,
    Chunk,
    ChunkStatus,
    Contact,
    Delivery,
    DeliveryStatus,
    Execution,
    ExecutionStatus,
)
from engine.models.base import utcnow
from engine.runtime import Runtime
from engine.services.audience import in_sample
from engine.services.campaigns import list_touchpoints
from engine.services.dispatch import finish_execution_if_done
from engine.services.executions import message_steps
from engine.services.recording import record_outcomes
from engine.services.sending import Sender, SendOutcome
from engine.templating import render

log = get_logger()

#: Largest batch sent between two pause checks when the channel has no rate limit.
UNLIMITED_BATCH = 100
#: Seconds between a running chunk's heartbeats (and pause checks).
HEARTBEAT_EVERY_S = 2.0


@dataclass
class ChunkJob:
    """Everything needed to deliver a claimed chunk, read in the claiming transaction."""

    chunk: Chunk
    execution: Execution
    campaign: Campaign
    touchpoint_id: str
    message: Any
    next_step: tuple[str, float] | None
    to_send: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SendOutcome] = field(default_factory=list)


def deliver_chunk(rt: Runtime, chunk_id: int, attempt: int) -> str:
    """Deliver chunk ``chunk_id`` for dispatch ``attempt``.

    Returns:
        ``done``; ``paused`` or ``cancelled`` if the execution stopped; ``stale`` if the message
        belongs to an older attempt (dropped without effect).
    """
    with session_scope(rt.engine) as session:
        job = _claim(session, chunk_id, attempt)
    if isinstance(job, str):
        return job
    outcomes, stopped = _send_all(rt, job)
    with session_scope(rt.engine) as session:
        record_outcomes(session, job.chunk, attempt, outcomes + job.skipped, stopped, job.next_step)
    log.info(
        "chunk.delivered",
        execution_id=job.execution.id,
        campaign_id=job.campaign.id,
        chunk_id=chunk_id,
        step=job.chunk.step,
        sent=sum(o.status == DeliveryStatus.sent for o in outcomes),
        failed=sum(o.status == DeliveryStatus.failed for o in outcomes),
        skipped=len(job.skipped),
        stopped=stopped,
    )
    if stopped:
        return stopped
    if job.next_step is None:
        with session_scope(rt.engine) as session:
            finish_execution_if_done(session, job.execution.id)
    return "done"


def release_chunk(rt: Runtime, chunk_id: int, attempt: int, reason: str) -> None:
    """Hand a chunk whose worker hit an unexpected error back to the scheduler."""
    with session_scope(rt.engine) as session:
        session.execute(
            sa.update(Chunk)
            .where(
                col(Chunk.id) == chunk_id,
                col(Chunk.attempts) == attempt,
                col(Chunk.status) == ChunkStatus.running,
            )
            .values(status=ChunkStatus.pending, error=reason[:2000])
        )


def _claim(session: Session, chunk_id: int, attempt: int) -> ChunkJob | str:
    now = utcnow()
    claimed = cast(
        sa.CursorResult[Any],
        session.execute(
            sa.update(Chunk)
            .where(
                col(Chunk.id) == chunk_id,
                col(Chunk.attempts) == attempt,
                col(Chunk.status) == ChunkStatus.queued,
            )
            .values(status=ChunkStatus.running, heartbeat_at=now)
        ),
    ).rowcount
    if not claimed:
        return "stale"
    chunk = session.get_one(Chunk, chunk_id)
    execution = session.get_one(Execution, chunk.execution_id)
    if execution.status != ExecutionStatus.running:
        stopped = "paused" if execution.status == ExecutionStatus.paused else "cancelled"
        chunk.status = ChunkStatus.pending if stopped == "paused" else ChunkStatus.cancelled
        return stopped
    campaign = session.get_one(Campaign, execution.campaign_id)
    steps = message_steps(list_touchpoints(session, campaign.id))
    touchpoint, _ = steps[chunk.step]
    following = steps[chunk.step + 1] if chunk.step + 1 < len(steps) else None
    job = ChunkJob(
        chunk=chunk,
        execution=execution,
        campaign=campaign,
        touchpoint_id=touchpoint.id,
        message=touchpoint.message,
        next_step=(following[0].id, following[1]) if following else None,
    )
    previous_tp = steps[chunk.step - 1][0].id if chunk.step > 0 else None
    _select_contacts(session, job, previous_tp)
    return job


def _select_contacts(session: Session, job: ChunkJob, previous_tp: str | None) -> None:
    """Fill ``job.to_send`` and ``job.skipped`` with the chunk's contacts still owed a delivery."""
    chunk, execution = job.chunk, job.execution
    planned_at: datetime = execution.started_at or utcnow()
    in_range = sa.and_(
        col(Contact.organization_id) == execution.organization_id,
        col(Contact.id).between(chunk.first_contact_id, chunk.last_contact_id),
        col(Contact.created_at) <= planned_at,
        # Contacts unsubscribed before planning were never in the audience.
        sa.or_(col(Contact.unsubscribed_at).is_(None), col(Contact.unsubscribed_at) > planned_at),
    )
    rows = session.execute(
        sa.select(
            col(Contact.id),
            col(Contact.email),
            col(Contact.phone),
            col(Contact.name),
            col(Contact.fields),
            col(Contact.unsubscribed_at),
        )
        .where(in_range)
        .order_by(col(Contact.id))
    ).all()
    done = _delivery_statuses(session, execution.id, job.touchpoint_id, chunk)
    previous = (
        _delivery_statuses(session, execution.id, previous_tp, chunk) if previous_tp else None
    )
    for row in rows:
        if row.id in done or not in_sample(execution.id, row.id, execution.target_percentage):
            continue
        if row.unsubscribed_at is not None:
            job.skipped.append(
                SendOutcome(
                    row.id, DeliveryStatus.skipped, 0, "UNSUBSCRIBED", "contact unsubscribed"
                )
            )
        elif previous is not None and previous.get(row.id) != DeliveryStatus.sent:
            job.skipped.append(
                SendOutcome(
                    row.id,
                    DeliveryStatus.skipped,
                    0,
                    "PREVIOUS_STEP_FAILED",
                    "previous touchpoint was not delivered",
                )
            )
        else:
            job.to_send.append(row._asdict())


def _delivery_statuses(
    session: Session, execution_id: str, touchpoint_id: str, chunk: Chunk
) -> dict[int, str]:
    rows = session.execute(
        sa.select(col(Delivery.contact_id), col(Delivery.status)).where(
            col(Delivery.execution_id) == execution_id,
            col(Delivery.touchpoint_id) == touchpoint_id,
            col(Delivery.contact_id).between(chunk.first_contact_id, chunk.last_contact_id),
        )
    )
    return {contact_id: status for contact_id, status in rows}


def _outgoing(job: ChunkJob, contact: dict[str, Any]) -> OutgoingMessage:
    recipient = {k: contact[k] for k in ("id", "email", "phone", "name")}
    context = {**(contact.get("fields") or {}), **recipient}
    return OutgoingMessage(
        execution_id=job.execution.id,
        campaign_id=job.campaign.id,
        touchpoint_id=job.touchpoint_id,
        contact_id=contact["id"],
        idempotency_key=idempotency_key(job.execution.id, job.touchpoint_id, contact["id"]),
        recipient=recipient,
        body=render(job.message, context),
        config=job.campaign.channel_config,
    )


def _sender(rt: Runtime, campaign: Campaign) -> Sender:
    channel = rt.channels.get(campaign.channel)
    config = campaign.channel_config
    rate = config.get("rate_per_s", rt.settings.rate_limits.get(campaign.channel))
    return Sender(
        channel,
        rt.limiter,
        rt.settings,
        rt.loop,
        rate=float(rate) if rate else None,
        rate_key=channel.rate_key(config),
    )


def _send_all(rt: Runtime, job: ChunkJob) -> tuple[list[SendOutcome], str | None]:
    """Send the job's messages in batches; stop early (returning why) if the execution stops."""
    sender = _sender(rt, job.campaign)
    batch = max(1, min(UNLIMITED_BATCH, int(sender.rate / 5))) if sender.rate else UNLIMITED_BATCH
    outcomes: list[SendOutcome] = []
    last_beat = time.monotonic()
    for start in range(0, len(job.to_send), batch):
        if time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
            last_beat = time.monotonic()
            stopped = _heartbeat(rt, job.chunk.id, job.execution.id)  # type: ignore[arg-type]
            if stopped:
                return outcomes, stopped
        messages = [_outgoing(job, c) for c in job.to_send[start : start + batch]]
        outcomes.extend(sender.send_batch(messages))
    return outcomes, None


def _heartbeat(rt: Runtime, chunk_id: int, execution_id: str) -> str | None:
    """Refresh the chunk's heartbeat; return ``paused``/``cancelled`` if the execution stopped."""
    with session_scope(rt.engine) as session:
        session.execute(
            sa.update(Chunk).where(col(Chunk.id) == chunk_id).values(heartbeat_at=utcnow())
        )
        status = session.scalar(
            sa.select(col(Execution.status)).where(col(Execution.id) == execution_id)
        )
    if status == ExecutionStatus.paused:
        return "paused"
    if status != ExecutionStatus.running:
        return "cancelled"
    return None
