"""The actions on an execution: start, retry, pause, resume, cancel. Only rows change; the
scheduler does the rest. Planning (a worker's first job for an execution) is
:mod:`engine.execution.planning`.

Why this module is long (about 500 lines): it is the one home of the actions a caller takes on
an execution (the HTTP routes, the CLI, bot actions and the campaign catalog call them) and of
the guards they share: one active execution per campaign (``_check_no_active_execution``), a
campaign that can send (``_check_sendable``, :func:`check_audience`), ``Idempotency-Key``
replays (``_keyed_execution``), the touchpoints a retry repeats (``_check_same_touchpoints``),
and every status write going through the lifecycle with its campaign following
(:func:`set_execution_status`). Splitting start from retry, or pause from cancel, would put
those guards in one module and their only callers in others.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlmodel import Session, col, select

from engine.audience.audience_spec import campaign_audience
from engine.audience.targeting import audience_problems, count_audience
from engine.campaigns.campaign import get_campaign, list_touchpoints
from engine.channels import ensure_available
from engine.db import get_owned
from engine.errors import Conflict, InvalidTransition, ValidationFailed
from engine.execution.lifecycle import (
    ACTIVE_EXECUTION_STATUSES,
    CAMPAIGN_STATUS_OF,
    check_execution_transition,
)
from engine.integrations.channel_accounts import check_credentials
from engine.integrations.webhooks import emit_campaign
from engine.logging import get_logger
from engine.models import (
    PRIORITY_RANK,
    Campaign,
    CampaignStatus,
    Chunk,
    ChunkStatus,
    Delivery,
    Execution,
    ExecutionStatus,
    Priority,
    Touchpoint,
    TouchpointType,
)
from engine.models.base import from_iso, utcnow
from engine.secrets import SecretKeys

log = get_logger()


def message_steps(touchpoints: list[Touchpoint]) -> list[tuple[Touchpoint, float]]:
    """Return the message touchpoints in order with the delay before each.

    A ``wait`` touchpoint adds its delay to the next message's own.
    """
    steps: list[tuple[Touchpoint, float]] = []
    pending_wait = 0.0
    for tp in touchpoints:
        if tp.type == TouchpointType.wait:
            pending_wait += tp.delay_s
            continue
        steps.append((tp, pending_wait + tp.delay_s))
        pending_wait = 0.0
    return steps


def check_audience(session: Session, campaign: Campaign) -> None:
    """Refuse to execute a campaign whose audience names missing parts or is empty.

    Raises:
        ValidationFailed: the first problem's code (``SEGMENT_NOT_FOUND`` …) or ``NO_AUDIENCE``.
    """
    spec = campaign_audience(campaign)
    now = utcnow()
    problems = audience_problems(session, campaign.organization_id, spec, now)
    if problems:
        raise ValidationFailed("; ".join(p["message"] for p in problems), code=problems[0]["code"])
    if count_audience(session, campaign.organization_id, spec, now, campaign.channel) == 0:
        raise ValidationFailed(
            f"campaign {campaign.id!r} has no audience: no subscribed contact matches its "
            "targetAudience",
            code="NO_AUDIENCE",
        )


def start_execution(
    session: Session,
    campaign_id: str,
    *,
    secret_key: SecretKeys,
    organization_id: str | None = None,
    priority: str = Priority.normal,
    target_percentage: int = 100,
    scheduled_at: datetime | None = None,
    test_mode: bool = False,
    idempotency_key: str | None = None,
) -> Execution:
    """Validate a campaign and write a ``scheduled`` execution for the scheduler to pick up.

    ``secret_key`` decrypts the organization's channel credentials to check they are complete.
    With ``idempotency_key``, a retried request (same key, same campaign) returns the execution
    the first one started instead of starting another.

    Raises:
        NotFound: no such campaign.
        ValidationFailed: no message touchpoint, no audience, bad priority or percentage,
            missing channel credentials.
        Conflict: the campaign already has an active execution (``EXECUTION_ACTIVE``), or the
            key was used for another campaign (``IDEMPOTENCY_KEY_REUSED``).
    """
    campaign = get_campaign(session, campaign_id, organization_id, lock=True)
    if idempotency_key is not None:
        earlier = _keyed_execution(session, campaign, idempotency_key)
        if earlier is not None:
            return earlier
    _check_no_active_execution(session, campaign.id)
    if priority not in PRIORITY_RANK:
        raise ValidationFailed(
            f"priority must be one of high, normal, low (got {priority!r})", code="INVALID_PRIORITY"
        )
    if not 1 <= target_percentage <= 100:
        raise ValidationFailed("targetPercentage must be between 1 and 100", code="INVALID_TARGET")
    _check_sendable(session, secret_key, campaign)
    check_audience(session, campaign)
    execution = Execution(
        organization_id=campaign.organization_id,
        campaign_id=campaign.id,
        priority=priority,
        target_percentage=target_percentage,
        test_mode=test_mode,
        scheduled_at=scheduled_at or utcnow(),
        idempotency_key=idempotency_key,
    )
    earlier = _schedule(session, campaign, execution)
    if earlier is not None:
        return earlier
    log.info("execution.scheduled", execution_id=execution.id, campaign_id=campaign.id)
    return execution


def _schedule(session: Session, campaign: Campaign, execution: Execution) -> Execution | None:
    """Insert the new execution and set the campaign ``scheduled``.

    The store's unique indexes settle races: a concurrent request that won with the same
    ``Idempotency-Key`` gives its execution back (returned); one that started another
    execution makes this one ``EXECUTION_ACTIVE``.
    """
    try:
        # A savepoint: losing the race leaves the caller's transaction usable.
        with session.begin_nested():
            session.add(execution)
            session.flush()
    except sa_exc.IntegrityError:
        if execution.idempotency_key is not None:
            earlier = _keyed_execution(session, campaign, execution.idempotency_key)
            if earlier is not None:
                return earlier
        _check_no_active_execution(session, campaign.id)
        raise
    _set_status_of_campaign(session, campaign, ExecutionStatus.scheduled)
    return None


def _set_status_of_campaign(session: Session, campaign: Campaign, status: ExecutionStatus) -> None:
    """Give the campaign the status of its execution's ``status``."""
    campaign.status = CAMPAIGN_STATUS_OF[status]
    campaign.updated_at = utcnow()
    session.flush()


def active_execution(session: Session, campaign_id: str) -> Execution | None:
    """Return the campaign's execution that has not finished, if any (there is at most one)."""
    return session.exec(
        select(Execution).where(
            col(Execution.campaign_id) == campaign_id,
            col(Execution.status).in_(sorted(ACTIVE_EXECUTION_STATUSES)),
        )
    ).first()


def check_editable(session: Session, campaign: Campaign, what: str) -> None:
    """Refuse to change what an active execution of the campaign is using.

    Takes the campaign's row lock first (as execute does), so an edit and an execute of the
    campaign never interleave.

    Raises:
        InvalidTransition: the campaign has an execution in progress (``CAMPAIGN_RUNNING``).
    """
    get_campaign(session, campaign.id, lock=True)
    active = active_execution(session, campaign.id)
    if active is not None:
        raise InvalidTransition(
            f"campaign {campaign.id!r} has execution {active.id!r} in progress ({active.status}); "
            f"its {what} can't change until it finishes or is cancelled",
            code="CAMPAIGN_RUNNING",
        )


def _in_progress(session: Session, campaign_id: str, organization_id: str, action: str) -> str:
    """The id of the campaign's execution in progress, for ``action`` (``pause``, ``resume``).

    Raises:
        NotFound: no such campaign in the organization.
        InvalidTransition: nothing in progress (``CANNOT_PAUSE``, ``CANNOT_RESUME``).
    """
    get_campaign(session, campaign_id, organization_id)
    execution = active_execution(session, campaign_id)
    if execution is None:
        raise InvalidTransition(
            f"campaign {campaign_id!r} has no execution in progress to {action}",
            code=f"CANNOT_{action.upper()}",
        )
    return execution.id


def pause_campaign(session: Session, campaign_id: str, organization_id: str) -> Execution:
    """Pause the campaign's execution in progress (see :func:`pause_execution`)."""
    return pause_execution(session, _in_progress(session, campaign_id, organization_id, "pause"))


def resume_campaign(session: Session, campaign_id: str, organization_id: str) -> Execution:
    """Resume the campaign's paused execution (see :func:`resume_execution`)."""
    execution_id = _in_progress(session, campaign_id, organization_id, "resume")
    return resume_execution(session, execution_id)


def cancel_campaign(session: Session, campaign_id: str, organization_id: str) -> Campaign:
    """Cancel the campaign: its active execution if it has one, else retire the campaign.

    A campaign with no execution in progress (draft, completed, failed) becomes ``cancelled``,
    which is also what makes a finished campaign deletable.

    Raises:
        NotFound: no such campaign in the organization.
        InvalidTransition: the campaign is already cancelled (``CANNOT_CANCEL``).
    """
    campaign = get_campaign(session, campaign_id, organization_id)
    active = active_execution(session, campaign.id)
    if active is not None:
        # The execution's lock first, as pause, resume and planning take them.
        cancel_execution(session, active.id)
        return campaign
    # Nothing in progress: lock the campaign (as execute does) and look again, so an execute
    # racing this cancel is either refused after it or seen here.
    campaign = get_campaign(session, campaign_id, organization_id, lock=True)
    if active_execution(session, campaign.id) is not None:
        raise InvalidTransition(
            f"campaign {campaign_id!r} started an execution while it was being cancelled; "
            "cancel again to stop it",
            code="CANCEL_RACED",
        )
    if campaign.status == CampaignStatus.cancelled:
        raise InvalidTransition(
            f"campaign {campaign_id!r} is already cancelled", code="CANNOT_CANCEL"
        )
    campaign.status = CampaignStatus.cancelled
    campaign.updated_at = utcnow()
    session.flush()
    emit_campaign(session, "campaign.cancelled", campaign)
    log.info("campaign.cancelled", campaign_id=campaign.id)
    return campaign


def _check_no_active_execution(session: Session, campaign_id: str) -> None:
    """Raise ``EXECUTION_ACTIVE`` if the campaign has an execution that has not finished."""
    active = active_execution(session, campaign_id)
    if active is not None:
        raise Conflict(
            f"campaign {campaign_id!r} already has execution {active.id!r} ({active.status}); "
            "pause, resume or cancel it, or wait until it finishes",
            code="EXECUTION_ACTIVE",
        )


def _keyed_execution(session: Session, campaign: Campaign, key: str) -> Execution | None:
    """The execution an earlier request with ``key`` started, if any.

    Raises:
        Conflict: the key started an execution of another campaign.
    """
    earlier = session.exec(
        select(Execution).where(
            col(Execution.organization_id) == campaign.organization_id,
            col(Execution.idempotency_key) == key,
        )
    ).first()
    if earlier is not None and earlier.campaign_id != campaign.id:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used to execute another campaign",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    return earlier


def retry_execution(
    session: Session,
    execution_id: str,
    organization_id: str | None = None,
    *,
    secret_key: SecretKeys,
) -> Execution:
    """Start a new execution of a finished one's campaign for the people it did not reach.

    The retry has the same recipients (the audience frozen by the first run, its sample
    included, minus contacts the channel has since blocked); a worker skips, per touchpoint,
    every contact with a ``sent`` delivery of it in the first run or any retry of it
    (``ALREADY_SENT``), so only those not reached get it.

    Raises:
        NotFound: no such execution in the organization.
        InvalidTransition: the execution has not finished (``CANNOT_RETRY``), or the campaign's
            touchpoints were replaced since (``TOUCHPOINTS_CHANGED``).
        ValidationFailed: the campaign can't send (no channel, credentials, touchpoints).
        Conflict: the campaign has an execution in progress (``EXECUTION_ACTIVE``).
    """
    original = get_execution(session, execution_id, organization_id)
    if original.status in ACTIVE_EXECUTION_STATUSES:
        raise InvalidTransition(
            f"execution {execution_id!r} is {original.status}; only a finished execution can be "
            "retried (resume a paused one)",
            code="CANNOT_RETRY",
        )
    campaign = get_campaign(session, original.campaign_id, lock=True)
    _check_no_active_execution(session, campaign.id)
    _check_sendable(session, secret_key, campaign)
    root = _first_run(session, original)
    _check_same_touchpoints(session, campaign, [root, *retry_chain_of(session, root)])
    retry = Execution(
        organization_id=original.organization_id,
        campaign_id=original.campaign_id,
        priority=original.priority,
        test_mode=original.test_mode,
        # Every retry points at the first run: siblings and retries of retries share one
        # history, and whoever any of them reached is skipped.
        retry_of=root,
    )
    _schedule(session, campaign, retry)
    log.info("execution.retry_scheduled", execution_id=retry.id, retry_of=original.id)
    return retry


def retry_chain(session: Session, execution: Execution) -> list[str]:
    """Ids of the executions a retry repeats: the first run and every other retry of it."""
    if not execution.retry_of:
        return []
    others = retry_chain_of(session, execution.retry_of)
    return [execution.retry_of, *(other for other in others if other != execution.id)]


def retry_chain_of(session: Session, first_run: str) -> list[str]:
    """Ids of every retry of ``first_run``."""
    return list(
        session.scalars(sa.select(col(Execution.id)).where(col(Execution.retry_of) == first_run))
    )


def _first_run(session: Session, execution: Execution) -> str:
    """The execution a chain of retries started from (retries point at it)."""
    seen = {execution.id}
    current = execution
    while current.retry_of and current.retry_of not in seen:
        seen.add(current.retry_of)
        current = session.get_one(Execution, current.retry_of)
    return current.id


def _check_sendable(session: Session, secret_key: SecretKeys, campaign: Campaign) -> None:
    """Refuse what can't send: no channel, one this version lacks, missing credentials, or
    no message touchpoint.

    Raises:
        ValidationFailed: ``NO_CHANNEL``, ``UNKNOWN_CHANNEL``, a credentials code, or
            ``NO_TOUCHPOINTS``.
    """
    if not campaign.channel:
        raise ValidationFailed(
            f"campaign {campaign.id!r} has no channel; set one before executing",
            code="NO_CHANNEL",
        )
    ensure_available(campaign.channel)
    check_credentials(session, secret_key, campaign)
    if not message_steps(list_touchpoints(session, campaign.id)):
        raise ValidationFailed(
            f"campaign {campaign.id!r} has no message touchpoints", code="NO_TOUCHPOINTS"
        )


def _check_same_touchpoints(session: Session, campaign: Campaign, run_ids: list[str]) -> None:
    """A retry skips by touchpoint: refuse it if a touchpoint the earlier runs delivered is gone
    (a replaced touchpoint would send everyone again). Read from deliveries, which outlive the
    chunks a deleted touchpoint takes with it.

    Raises:
        InvalidTransition: ``TOUCHPOINTS_CHANGED``.
    """
    root_id = run_ids[0]
    sent = set(
        session.scalars(
            sa.select(col(Delivery.touchpoint_id))
            .where(col(Delivery.execution_id).in_(run_ids))
            .distinct()
        )
    )
    current = {tp.id for tp, _ in message_steps(list_touchpoints(session, campaign.id))}
    if not sent <= current:
        raise InvalidTransition(
            f"campaign {campaign.id!r} changed its touchpoints since execution {root_id!r}: a "
            "retry could not tell who was reached; execute the campaign instead",
            code="TOUCHPOINTS_CHANGED",
        )


def parse_scheduled_at(value: str) -> datetime:
    """Parse an ISO 8601 start time; one without a timezone is taken as UTC.

    Raises:
        ValidationFailed: not an ISO 8601 date-time (code ``INVALID_SCHEDULED_AT``).
    """
    try:
        return from_iso(value)
    except ValueError as exc:
        raise ValidationFailed(
            f"scheduledAt {value!r} is not an ISO 8601 date-time", code="INVALID_SCHEDULED_AT"
        ) from exc


def get_execution(
    session: Session, execution_id: str, organization_id: str | None = None, *, lock: bool = False
) -> Execution:
    """Return the execution (row-locked with ``lock`` on PostgreSQL).

    Raises:
        NotFound: no such execution in the organization.
    """
    return get_owned(
        session,
        Execution,
        execution_id,
        organization_id,
        what="execution",
        code="EXECUTION_NOT_FOUND",
        with_for_update=lock or None,
        populate_existing=lock,
    )


def pause_execution(
    session: Session, execution_id: str, organization_id: str | None = None
) -> Execution:
    """Pause a running (or not yet planned) execution; workers stop within one chunk.

    Raises:
        InvalidTransition: the execution is already paused or finished.
    """
    execution = get_execution(session, execution_id, organization_id, lock=True)
    set_execution_status(session, execution, ExecutionStatus.paused, code="CANNOT_PAUSE")
    execution.paused_at = execution.updated_at
    emit_campaign(
        session, "campaign.paused", session.get_one(Campaign, execution.campaign_id), execution
    )
    log.info("execution.paused", execution_id=execution.id, campaign_id=execution.campaign_id)
    return execution


def resume_execution(
    session: Session, execution_id: str, organization_id: str | None = None
) -> Execution:
    """Resume a paused execution; contacts already delivered are never sent again.

    A paused execution that was never planned goes back to ``scheduled``.

    Raises:
        InvalidTransition: the execution is not paused.
    """
    execution = get_execution(session, execution_id, organization_id, lock=True)
    if execution.status != ExecutionStatus.paused:  # running → running is no resume
        check_execution_transition(
            execution.id, execution.status, ExecutionStatus.paused, "CANNOT_RESUME"
        )
    planned = execution.started_at is not None
    status = ExecutionStatus.running if planned else ExecutionStatus.scheduled
    set_execution_status(session, execution, status, code="CANNOT_RESUME")
    execution.paused_at = None
    emit_campaign(
        session, "campaign.resumed", session.get_one(Campaign, execution.campaign_id), execution
    )
    log.info("execution.resumed", execution_id=execution.id, campaign_id=execution.campaign_id)
    return execution


def cancel_execution(
    session: Session, execution_id: str, organization_id: str | None = None
) -> Execution:
    """Cancel an execution: chunks not started are dropped, running ones stop after their batch.

    Raises:
        InvalidTransition: the execution already finished.
    """
    execution = get_execution(session, execution_id, organization_id, lock=True)
    set_execution_status(session, execution, ExecutionStatus.cancelled, code="CANNOT_CANCEL")
    execution.finished_at = execution.updated_at
    session.execute(
        sa.update(Chunk)
        .where(
            col(Chunk.execution_id) == execution.id,
            # Queued too: a worker that takes one finds it no longer queued and does nothing.
            col(Chunk.status).in_((ChunkStatus.pending, ChunkStatus.queued)),
        )
        .values(status=ChunkStatus.cancelled)
    )
    emit_campaign(
        session, "campaign.cancelled", session.get_one(Campaign, execution.campaign_id), execution
    )
    log.info("execution.cancelled", execution_id=execution.id, campaign_id=execution.campaign_id)
    return execution


def set_execution_status(
    session: Session,
    execution: Execution,
    status: ExecutionStatus,
    code: str = "INVALID_TRANSITION",
) -> None:
    """Move the execution to ``status`` (if the lifecycle allows it) and its campaign along.

    Raises:
        InvalidTransition: the lifecycle has no such transition (``code``).
    """
    check_execution_transition(execution.id, execution.status, status, code)
    execution.status = status
    execution.updated_at = utcnow()
    _set_status_of_campaign(session, session.get_one(Campaign, execution.campaign_id), status)
