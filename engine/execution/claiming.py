"""A worker's claim of a chunk, and who in it is still owed a message.

(The scheduler's claims, ``pending`` → ``queued``, are :mod:`engine.execution.dispatch`.)

The claim is one conditional UPDATE (``queued`` → ``running``) whose returned attempt number
fences the worker's later writes. In the same transaction the worker reads everything a
delivery needs (:class:`ChunkJob`): the step's message, the next step, the channel settings and
rate, and the chunk's recipients split into those to send and those skipped (already sent,
deleted, unsubscribed, suppressed, reached by the run a retry repeats, or not reached by the
previous step). :mod:`engine.execution.delivery` sends what the job holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.audience.recipients import in_sample, test_contacts
from engine.audience.targeting import not_suppressed
from engine.campaigns.campaign import list_touchpoints
from engine.config import Settings
from engine.db import table_of
from engine.execution.lifecycle import StopReason, chunk_status_after, stop_reason_of
from engine.execution.rendering import uses_links
from engine.execution.runs import message_steps, retry_chain
from engine.execution.sending import SendOutcome
from engine.integrations.channel_accounts import channel_config, send_rate
from engine.integrations.links import LinkSigner
from engine.integrations.message_links import step_links
from engine.models import (
    Campaign,
    Chunk,
    ChunkStatus,
    Contact,
    Delivery,
    DeliveryStatus,
    Execution,
    ExecutionRecipient,
)
from engine.models.base import utcnow


@dataclass
class ChunkJob:
    """Everything needed to deliver a claimed chunk, read in the claiming transaction."""

    chunk: Chunk
    #: The attempt this worker owns: every later write to the chunk is fenced by it.
    attempt: int
    execution: Execution
    campaign: Campaign
    message: Any
    next_step: tuple[str, float] | None
    #: The channel configuration: the organization's account merged with the campaign's.
    config: dict[str, Any] = field(default_factory=dict)
    to_send: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SendOutcome] = field(default_factory=list)
    #: Test mode without test contacts: these are rendered, never handed to the channel.
    dry_run: set[int] = field(default_factory=set)
    #: Signs the unsubscribe link of each message and its click-tracking links.
    links: LinkSigner | None = None
    #: Messages per second (``None``: unlimited), shared by every worker on the rate key.
    rate: float | None = None
    #: For a retry: the executions it repeats (whoever they reached is skipped).
    chain: list[str] = field(default_factory=list)


def claim_chunk(
    session: Session, chunk_id: int, settings: Settings
) -> ChunkJob | StopReason | None:
    """Take chunk ``chunk_id`` if it is still queued, and read its job.

    Returns:
        The job; ``None`` when the chunk was not queued (already taken, done or cancelled:
        nothing changed); or why the execution stopped (paused, cancelled …), the chunk then
        set to the status that follows it.
    """
    # Statements of the hot path run on the session's connection (Core): the ORM's execution
    # machinery cost more than the SQL. Objects the job needs are loaded with the session.
    claimed = (
        session.connection()
        .execute(
            sa.update(table_of(Chunk))
            .where(col(Chunk.id) == chunk_id, col(Chunk.status) == ChunkStatus.queued)
            .values(status=ChunkStatus.running, heartbeat_at=utcnow())
            .returning(col(Chunk.attempts))
        )
        .first()
    )
    if claimed is None:
        return None
    chunk = session.get_one(Chunk, chunk_id)
    execution = session.get_one(Execution, chunk.execution_id)
    stopped = stop_reason_of(execution.status)
    if stopped:
        chunk.status = chunk_status_after(stopped)
        return stopped
    campaign = session.get_one(Campaign, execution.campaign_id)
    steps = message_steps(list_touchpoints(session, campaign.id))
    index = next(i for i, (tp, _) in enumerate(steps) if tp.id == chunk.touchpoint_id)
    following = steps[index + 1] if index + 1 < len(steps) else None
    message = steps[index][0].message
    job = ChunkJob(
        chunk=chunk,
        attempt=claimed[0],
        execution=execution,
        campaign=campaign,
        message=message,
        next_step=(following[0].id, following[1]) if following else None,
        config=channel_config(session, settings.verification_keys, campaign),
        links=(
            step_links(session, settings, execution, chunk.touchpoint_id, message)
            if uses_links(campaign.channel, message)
            else None
        ),
        rate=send_rate(session, campaign, settings.rate_limits),
        chain=retry_chain(session, execution),
    )
    previous_tp = steps[index - 1][0].id if index > 0 else None
    _select_contacts(session, job, previous_tp)
    return job


def _select_contacts(session: Session, job: ChunkJob, previous_tp: str | None) -> None:
    """Fill ``job.to_send`` and ``job.skipped``: the chunk's recipients still owed a delivery."""
    chunk, execution = job.chunk, job.execution
    rows = (
        session.connection()
        .execute(
            sa.select(
                col(ExecutionRecipient.contact_id).label("id"),
                # NULL when the contact was deleted after planning: skipped, so processed
                # still reaches total.
                col(Contact.id).label("contact_row"),
                col(Contact.email),
                col(Contact.phone),
                col(Contact.name),
                col(Contact.fields),
                col(Contact.unsubscribed_at),
                # Suppressed since planning: two index probes per row, in the same query.
                sa.not_(not_suppressed(execution.organization_id)).label("suppressed"),
            )
            .select_from(ExecutionRecipient)
            .outerjoin(Contact, col(ExecutionRecipient.contact_id) == col(Contact.id))
            .where(
                col(ExecutionRecipient.execution_id) == execution.id,
                col(ExecutionRecipient.contact_id).between(
                    chunk.first_contact_id, chunk.last_contact_id
                ),
            )
            .order_by(col(ExecutionRecipient.contact_id))
        )
        .all()
    )
    done = _delivery_statuses(session, [execution.id], chunk.touchpoint_id, chunk)
    # A retry: whoever an earlier run of the chain reached is not sent again.
    reached = _sent(_delivery_statuses(session, job.chain, chunk.touchpoint_id, chunk))
    previous_ok: set[int] | None = None
    if previous_tp:
        previous_ok = _sent(
            _delivery_statuses(session, [execution.id, *job.chain], previous_tp, chunk)
        )
    rows = [
        row
        for row in rows
        if row.id not in done and in_sample(execution.id, row.id, execution.target_percentage)
    ]
    for row in rows:
        reason = _skip_reason(row, reached, previous_ok)
        if reason is None:
            job.to_send.append(
                {
                    "id": row.id,
                    "email": row.email,
                    "phone": row.phone,
                    "name": row.name,
                    "fields": row.fields,
                }
            )
        else:
            job.skipped.append(SendOutcome(row.id, DeliveryStatus.skipped, 0, *reason))
    if execution.test_mode:
        ids = [contact["id"] for contact in job.to_send]
        job.dry_run = set(ids) - test_contacts(session, execution.organization_id, ids)


def _skip_reason(
    row: Any, reached: set[int], previous_ok: set[int] | None
) -> tuple[str, str] | None:
    """Why a recipient is not sent this step (unsubscribed or suppressed since planning …).

    ``reached``: sent this touchpoint by the execution a retry repeats; ``previous_ok``: sent
    the previous touchpoint (``None`` on the first step).
    """
    if row.contact_row is None:
        return "CONTACT_DELETED", "the contact was deleted after the execution was planned"
    if row.id in reached:
        return "ALREADY_SENT", "reached by the execution this one retries"
    if row.unsubscribed_at is not None:
        return "UNSUBSCRIBED", "contact unsubscribed"
    if row.suppressed:
        return "SUPPRESSED", "the contact's address is on the suppression list"
    if previous_ok is not None and row.id not in previous_ok:
        return "PREVIOUS_STEP_FAILED", "previous touchpoint was not delivered"
    return None


def _sent(statuses: dict[int, str]) -> set[int]:
    """The contacts whose status is ``sent``."""
    return {contact_id for contact_id, status in statuses.items() if status == DeliveryStatus.sent}


def _delivery_statuses(
    session: Session, execution_ids: list[str], touchpoint_id: str, chunk: Chunk
) -> dict[int, str]:
    """Each contact's delivery status of the touchpoint in these executions (``sent`` wins)."""
    if not execution_ids:
        return {}
    rows = session.connection().execute(
        sa.select(col(Delivery.contact_id), col(Delivery.status)).where(
            col(Delivery.execution_id).in_(execution_ids),
            col(Delivery.touchpoint_id) == touchpoint_id,
            col(Delivery.contact_id).between(chunk.first_contact_id, chunk.last_contact_id),
        )
    )
    statuses: dict[int, str] = {}
    for contact_id, status in rows:
        if statuses.get(contact_id) != DeliveryStatus.sent:
            statuses[contact_id] = status
    return statuses
