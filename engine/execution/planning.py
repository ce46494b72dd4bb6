"""Planning an execution: the worker's first job for it (``queued`` → ``running``).

The audience is resolved once and frozen into ``execution_recipients`` (a retry copies its
first run's recipients instead), and the first step's chunks are written: contiguous
contact-id ranges sized by :func:`chunk_size_for`. Each later step's chunk is written when the
chunk before it finishes (:func:`engine.execution.recording.finish_chunk`). An empty audience
fails the execution here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from engine.audience.recipients import copy_recipients, freeze_recipients, recipient_ranges
from engine.audience.targeting import campaign_audience_count
from engine.campaigns.campaign import list_touchpoints
from engine.db import table_of
from engine.execution.runs import get_execution, message_steps, set_execution_status
from engine.integrations.channel_accounts import send_rate
from engine.integrations.webhooks import emit_campaign
from engine.logging import get_logger
from engine.models import PRIORITY_RANK, Campaign, Chunk, ChunkStatus, ExecutionStatus, Priority
from engine.models.base import utcnow

log = get_logger()


#: Seconds of sending a chunk should hold at its campaign's rate: well inside the workers'
#: one-hour time limit, and a pause or crash costs at most that much of one worker's time.
CHUNK_SECONDS = 600.0


def chunk_size_for(chunk_size: int, rate: float | None) -> int:
    """Contacts per chunk: ``chunk_size``, fewer when the rate would make a chunk last long."""
    if rate is None:
        return chunk_size
    return max(1, min(chunk_size, int(rate * CHUNK_SECONDS)))


def plan_execution(
    session: Session,
    execution_id: str,
    chunk_size: int,
    default_rates: Mapping[str, float] | None = None,
) -> bool:
    """Resolve the audience once and write the first step's chunks; mark the execution running.

    ``default_rates`` (``RATE_LIMITS``) bound the chunk size of slow channels
    (:func:`chunk_size_for`). Idempotent: an execution that is not ``queued`` is left alone
    (returns False).
    """
    execution = get_execution(session, execution_id, lock=True)
    if execution.status != ExecutionStatus.queued:
        return False
    campaign = session.get_one(Campaign, execution.campaign_id)
    chunk_size = chunk_size_for(chunk_size, send_rate(session, campaign, default_rates or {}))
    steps = message_steps(list_touchpoints(session, campaign.id))
    now = utcnow()
    first_tp, first_delay = steps[0]
    if execution.retry_of:
        copy_recipients(session, execution.retry_of, execution.id, campaign.channel)
    else:
        freeze_recipients(session, execution.id, campaign, now, execution.test_mode)
    ranges = recipient_ranges(session, execution.id, execution.target_percentage, chunk_size)
    contacts = 0
    chunk_no = 0
    rank = PRIORITY_RANK[Priority(execution.priority)]
    chunk_table = table_of(Chunk)
    rows = []
    for first, last, size in ranges:
        rows.append(
            {
                "execution_id": execution.id,
                "step": 0,
                "touchpoint_id": first_tp.id,
                "chunk_no": chunk_no,
                "first_contact_id": first,
                "last_contact_id": last,
                "size": size,
                "status": ChunkStatus.pending,
                "priority_rank": rank,
                "not_before": now + timedelta(seconds=first_delay),
                "attempts": 0,
            }
        )
        contacts += size
        chunk_no += 1
    if rows:
        session.execute(sa.insert(chunk_table), rows)
    execution.total = contacts * len(steps)
    execution.started_at = now
    execution.updated_at = now
    if contacts == 0:
        set_execution_status(session, execution, ExecutionStatus.failed)
        execution.error = "no contact matched the audience"
        execution.finished_at = now
    else:
        set_execution_status(session, execution, ExecutionStatus.running)
    session.flush()
    emit_campaign(
        session,
        "campaign.started" if contacts else "campaign.failed",
        campaign,
        execution,
        **({} if contacts else {"reason": execution.error}),
    )
    log.info(
        "execution.planned",
        execution_id=execution.id,
        campaign_id=campaign.id,
        contacts=contacts,
        chunks=chunk_no,
        total=execution.total,
    )
    return True


def expected_completion(
    session: Session,
    campaign: Campaign,
    scheduled_at: datetime,
    target_percentage: float,
    default_rates: Mapping[str, float],
) -> datetime | None:
    """When a run starting at ``scheduled_at`` should end at the campaign's send rate
    (:func:`send_rate`, the one the workers use), its waits included; ``None`` when unlimited."""
    rate = send_rate(session, campaign, default_rates)
    if not rate:
        return None
    steps = message_steps(list_touchpoints(session, campaign.id))
    contacts = campaign_audience_count(session, campaign) * target_percentage / 100
    delays = sum(delay for _, delay in steps)
    return scheduled_at + timedelta(seconds=contacts * len(steps) / float(rate) + delays)
