"""Delivering one chunk: the hot path of every campaign.

One chunk = one contiguous contact-id range of one step. A worker claims it (``queued`` →
``running``; the chunk's current attempt number becomes the worker's fencing token), skips
contacts that already have a delivery row (so a re-run after a crash is exact), and sends in
rate-limited batches, committing each batch's deliveries, counters, error counts and rate
timeline before the next batch is sent: a crash re-sends at most the batch in flight. The same
commit reads the execution's status, so pause and cancel take effect within one batch.
Finishing a step's chunk creates the next step's chunk.

This module runs the attempt and gives the chunk back when it cannot finish. The claim and the
choice of recipients are :mod:`engine.execution.claiming`; rendering each message is
:mod:`engine.execution.rendering`; sending a batch is :mod:`engine.execution.sending`;
recording it is :mod:`engine.execution.recording`.
"""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import col

from engine.audience.subscriptions import block_contacts
from engine.db import session_scope
from engine.execution.claiming import ChunkJob, claim_chunk
from engine.execution.dispatch import finish_execution_if_done, give_back_chunks
from engine.execution.lifecycle import StopReason, stop_reason_of
from engine.execution.recording import BatchRecorded, finish_chunk, owned_by, record_batch
from engine.execution.rendering import outgoing, rendered_only
from engine.execution.sending import MAX_RETRY_AFTER_S, BatchInterrupted, Sender, SendOutcome
from engine.logging import get_logger
from engine.models import Chunk, ChunkStatus, DeliveryStatus
from engine.outages import ServiceOutage, is_outage, through_outages
from engine.runtime import Runtime

log = get_logger()

#: Largest send batch (recorded before the next is sent) of a network channel: what a crash
#: may send twice to people.
NETWORK_BATCH = 100
#: Largest send batch of a local channel (null, log): nobody is messaged, so a bigger batch
#: buys speed (fewer commits) at no cost to anyone.
LOCAL_BATCH = 500


class ChunkOutcome(StrEnum):
    """How a worker's handling of a chunk message ended (``deliver_chunk``'s answer)."""

    #: Every recipient of the chunk has a recorded outcome.
    done = "done"
    #: The chunk was not queued (already taken, done or cancelled): nothing happened.
    stale = "stale"
    #: An error retrying cannot fix: the chunk was given back and counts a failure.
    released = "released"
    paused = StopReason.paused.value
    cancelled = StopReason.cancelled.value
    outage = StopReason.outage.value
    fenced = StopReason.fenced.value
    interrupted = StopReason.interrupted.value


def deliver_chunk(rt: Runtime, chunk_id: int) -> ChunkOutcome:
    """Deliver chunk ``chunk_id`` if it is still queued, recording each send batch as it goes.

    Any message for a queued chunk may take it (one wins: the claim is one conditional
    UPDATE), so a late message is never wasted and a duplicate never runs twice. Every exit
    records what was sent, ``BaseException`` included (dramatiq's time limit, a shutdown).
    """

    def claim() -> ChunkJob | ChunkOutcome:
        with session_scope(rt.engine) as session:
            claimed = claim_chunk(session, chunk_id, rt.settings)
        if claimed is None:
            return ChunkOutcome.stale
        if isinstance(claimed, StopReason):
            return ChunkOutcome(claimed.value)
        return claimed

    try:
        # A database outage is waited out here: the message in hand is the chunk's dispatch.
        job = through_outages(claim, "chunk.claim", wait_s=rt.settings.save_wait_s)
    except Exception as exc:  # the claim rolled back: the chunk is still queued
        return _give_back_unclaimed(rt, chunk_id, exc)
    if not isinstance(job, ChunkJob):
        return job
    rt.heartbeats.add(chunk_id, job.attempt)
    run = _ChunkRun(rt, job)
    try:
        stopped = run.send_and_record()
        run.finish(stopped)
    except BaseException as exc:
        return run.give_back(exc)
    finally:
        rt.heartbeats.remove(chunk_id)
    log.info(
        "chunk.delivered",
        execution_id=job.execution.id,
        campaign_id=job.campaign.id,
        chunk_id=chunk_id,
        step=job.chunk.step,
        sent=run.sent,
        failed=run.failed,
        skipped=len(job.skipped),
        stopped=stopped,
    )
    if stopped:
        return ChunkOutcome(stopped.value)
    if job.next_step is None:
        _finish_execution(rt, job.execution.id)
    return ChunkOutcome.done


class _ChunkRun:
    """One worker's attempt at a chunk: send batch by batch, record each before the next."""

    def __init__(self, rt: Runtime, job: ChunkJob) -> None:
        self.rt = rt
        self.job = job
        #: Outcomes sent (or decided) but not yet recorded: held until a save succeeds.
        self.pending: list[SendOutcome] = list(job.skipped)
        self.sent = 0
        self.failed = 0
        s = rt.settings
        #: How long one batch may take without counting as stalled: every attempt of a send
        #: timing out, with the longest backoff or provider retry-after between attempts.
        self.allowance = s.send_max_attempts * (
            s.http_timeout_s + max(s.send_backoff_max_s, MAX_RETRY_AFTER_S)
        )

    def send_and_record(self) -> StopReason | None:
        """Send the job's messages in batches, recording each; return why it stopped early."""
        rt, job = self.rt, self.job
        sender = _sender(rt, job)
        size = _batch_size(sender)
        if self.pending:
            stopped = self.save()
            if stopped:
                return stopped
        chunk_id = job.chunk.id or 0
        for start in range(0, len(job.to_send), size):
            messages = []
            for contact in job.to_send[start : start + size]:
                item = outgoing(job, contact)
                if isinstance(item, SendOutcome):
                    self.pending.append(item)
                elif item.contact_id in job.dry_run:
                    self.pending.append(rendered_only(item))
                else:
                    messages.append(item)
            rounds = -(-len(messages) // sender.concurrency) if sender.is_network else 1
            rt.heartbeats.progress(chunk_id, self.allowance * max(1, rounds))
            try:
                self.pending.extend(
                    sender.send_batch(messages, lambda s: rt.heartbeats.progress(chunk_id, s))
                )
            except BatchInterrupted as exc:
                self.pending.extend(exc.outcomes)
                raise ServiceOutage(str(exc.cause)) from exc.cause
            stopped = self.save()
            if stopped:
                return stopped
        return None

    def save(self, wait_s: float | None = None) -> StopReason | None:
        """Record the pending outcomes, waiting out a database outage; say whether to stop.

        Raises:
            ServiceOutage: the database stayed unreachable for ``save_wait_s``.
        """
        job, outcomes = self.job, self.pending
        chunk_id = job.chunk.id or 0

        def record() -> BatchRecorded:
            with session_scope(self.rt.engine) as session:
                recorded = record_batch(session, job.chunk, job.attempt, outcomes)
                block_contacts(
                    session, job.campaign.channel, [(o.contact_id, o.error_code) for o in outcomes]
                )
                return recorded

        wait = self.rt.settings.save_wait_s if wait_s is None else wait_s
        recorded = through_outages(
            record,
            "chunk.save",
            wait_s=wait,
            while_waiting=lambda: self.rt.heartbeats.progress(chunk_id),
        )
        self.sent += sum(o.status == DeliveryStatus.sent for o in outcomes)
        self.failed += sum(o.status == DeliveryStatus.failed for o in outcomes)
        self.pending = []
        self.rt.heartbeats.progress(chunk_id)
        if not recorded.owned:
            return StopReason.fenced
        return stop_reason_of(recorded.execution_status)

    def finish(self, stopped: StopReason | None) -> None:
        """Close the chunk (done, back to pending, cancelled) and create the next step's."""
        job = self.job

        def close() -> bool:
            with session_scope(self.rt.engine) as session:
                return finish_chunk(session, job.chunk, job.attempt, stopped, job.next_step)

        through_outages(close, "chunk.finish", wait_s=self.rt.settings.save_wait_s)

    def _save_bare(self) -> Exception | None:
        """Record the pending outcomes without any provider text (ids, codes, messages): that
        someone was sent matters more than the details. Returns the error if even that fails."""
        self.pending = [SendOutcome(o.contact_id, o.status, o.attempts) for o in self.pending]
        try:
            self.save(wait_s=0)
        except Exception as error:
            log.exception("chunk.save_failed", chunk_id=self.job.chunk.id, bare=True)
            return error
        return None

    def give_back(self, exc: BaseException) -> ChunkOutcome:
        """After an error: record what was sent, then give the chunk back.

        An outage (or an interrupted worker) is nobody's fault: the chunk goes back to pending
        (after ``outage_backoff_s``) without counting. Anything else counts toward
        ``CHUNK_MAX_ATTEMPTS``. A ``BaseException`` is re-raised once the chunk is safe.
        """
        job, settings = self.job, self.rt.settings
        ids = {"execution_id": job.execution.id, "chunk_id": job.chunk.id}
        interrupted = not isinstance(exc, Exception)
        unsaved: Exception | None = None
        if self.pending:
            try:
                self.save(wait_s=0 if interrupted else settings.save_wait_s)
            except Exception as error:
                log.exception("chunk.save_failed", **ids, unsaved=len(self.pending))
                unsaved = error
        if unsaved is not None and not interrupted and not is_outage(unsaved):
            unsaved = self._save_bare()
        if unsaved is not None and not interrupted and not is_outage(unsaved):
            # What was sent cannot be recorded even bare, and giving the chunk back would send
            # it again: fail the chunk now.
            with session_scope(self.rt.engine) as session:
                give_back_chunks(
                    session,
                    owned_by(job.chunk.id, job.attempt),
                    f"outcomes could not be recorded: {type(unsaved).__name__}: {unsaved}",
                    count_failure=True,
                    max_failures=1,
                )
            return ChunkOutcome.released
        if interrupted or is_outage(exc):
            reason = StopReason.interrupted if interrupted else StopReason.outage
            log.warning(f"chunk.{reason}", **ids, error=f"{type(exc).__name__}: {exc}"[:300])
            try:
                with session_scope(self.rt.engine) as session:
                    finish_chunk(
                        session,
                        job.chunk,
                        job.attempt,
                        reason,
                        None,
                        retry_after_s=0 if interrupted else settings.outage_backoff_s,
                    )
            except Exception:  # the scheduler recovers it when its heartbeat goes stale
                log.exception("chunk.give_back_failed", **ids)
            if interrupted:
                raise exc
            return ChunkOutcome(reason.value)
        log.error("chunk.error", **ids, campaign_id=job.campaign.id, exc_info=exc)
        release_chunk(self.rt, job.chunk.id or 0, f"{type(exc).__name__}: {exc}", job.attempt)
        return ChunkOutcome.released


def _batch_size(sender: Sender) -> int:
    """Messages per send batch: about 0.2 s of sending at the rate limit, capped by channel kind."""
    cap = NETWORK_BATCH if sender.is_network else LOCAL_BATCH
    return max(1, min(cap, int(sender.rate / 5))) if sender.rate else cap


def _give_back_unclaimed(rt: Runtime, chunk_id: int, exc: Exception) -> ChunkOutcome:
    """The claim failed and rolled back (the chunk is still queued): hand it back."""
    if is_outage(exc):
        log.warning("chunk.outage", chunk_id=chunk_id, error=f"{type(exc).__name__}: {exc}"[:300])
        try:
            with session_scope(rt.engine) as session:
                give_back_chunks(
                    session,
                    _still_queued(chunk_id),
                    f"outage: {type(exc).__name__}",
                    count_failure=False,
                    max_failures=rt.settings.chunk_max_attempts,
                    retry_after_s=rt.settings.outage_backoff_s,
                )
        except Exception:  # still down: the scheduler re-dispatches it as a lost message
            log.warning("chunk.give_back_failed", chunk_id=chunk_id)
        return ChunkOutcome.outage
    log.exception("chunk.error", chunk_id=chunk_id)
    release_chunk(rt, chunk_id, f"{type(exc).__name__}: {exc}")
    return ChunkOutcome.released


def _still_queued(chunk_id: int) -> sa.ColumnElement[bool]:
    """The chunk, if no worker's claim of it has committed."""
    return sa.and_(col(Chunk.id) == chunk_id, col(Chunk.status) == ChunkStatus.queued)


def _finish_execution(rt: Runtime, execution_id: str) -> None:
    """Complete the execution if this was its last chunk (the scheduler's sweep also does)."""
    try:
        with session_scope(rt.engine) as session:
            finish_execution_if_done(session, execution_id)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("execution.finish_deferred", execution_id=execution_id)


def release_chunk(rt: Runtime, chunk_id: int, reason: str, attempt: int | None = None) -> None:
    """Give back a chunk whose delivery hit an unexpected error; it fails past the limit.

    Args:
        attempt: the attempt this worker owns (the chunk is running), or ``None`` when the
            error came before the claim committed (the chunk is still queued).
    """
    owned = _still_queued(chunk_id) if attempt is None else owned_by(chunk_id, attempt)
    with session_scope(rt.engine) as session:
        give_back_chunks(
            session, owned, reason, count_failure=True, max_failures=rt.settings.chunk_max_attempts
        )


def _sender(rt: Runtime, job: ChunkJob) -> Sender:
    """The sender of the job's channel, under its rate limit."""
    channel = rt.channels.get(job.campaign.channel)
    return Sender(
        channel,
        rt.limiter,
        rt.settings,
        rt.loop,
        rate=job.rate,
        rate_key=channel.rate_key(job.config),
    )
