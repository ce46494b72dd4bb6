"""The scheduler loop. Safe to run several at once: every claim is a locked SQL statement."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import col

from engine.db import session_scope
from engine.execution.dispatch import (
    claim_chunks,
    claim_due_executions,
    dispatch_room,
    finish_execution_if_done,
    give_back_chunks,
    recover_stale_chunks,
    recover_stale_plans,
    running_execution_ids,
    unclaim_executions,
)
from engine.integrations.webhooks import claim_due_deliveries
from engine.logging import get_logger
from engine.models import Chunk, ChunkStatus
from engine.runtime import Runtime

log = get_logger()


class Enqueuer(Protocol):
    """Hands claimed work to workers (a dramatiq broker in practice)."""

    def enqueue_plan(self, execution_id: str) -> None:
        """Enqueue the planning of an execution."""

    def enqueue_chunk(self, chunk_id: int, attempt: int, priority: str) -> None:
        """Enqueue the delivery of a chunk for a given attempt."""

    def enqueue_webhook(self, delivery_id: int) -> None:
        """Enqueue the sending of one lifecycle webhook delivery."""


def tick(rt: Runtime, enqueuer: Enqueuer, *, dead_workers: bool = True) -> dict[str, int]:
    """Run one scheduler pass: claim due executions, recover, finish, dispatch chunks.

    Each step commits before it enqueues, so a message never points at uncommitted state;
    a crash between commit and enqueue is repaired by the stale-work recovery.
    ``dead_workers=False`` leaves stale heartbeats alone (just after a database outage).

    Returns:
        Counts of what this pass did (``planned``, ``recovered``, ``finished``, ``dispatched``).
    """
    s = rt.settings
    with session_scope(rt.engine) as session:
        due = claim_due_executions(session)
        due += recover_stale_plans(session, s.queued_stale_s, s.chunk_max_attempts)
    for sent, execution_id in enumerate(due):
        try:
            enqueuer.enqueue_plan(execution_id)
        except Exception:
            _unclaim_unsent(rt, due[sent:])
            raise
    with session_scope(rt.engine) as session:
        recovered = recover_stale_chunks(
            session,
            s.heartbeat_stale_s,
            s.queued_stale_s,
            s.chunk_max_attempts,
            dead_workers=dead_workers,
        )
    finished = 0
    with session_scope(rt.engine) as session:
        for execution_id in running_execution_ids(session):
            finished += finish_execution_if_done(session, execution_id) is not None
    dispatched = dispatch_chunks(rt, enqueuer)
    with session_scope(rt.engine) as session:
        webhooks = claim_due_deliveries(session)
    for delivery_id in webhooks:
        enqueuer.enqueue_webhook(delivery_id)
    return {
        "planned": len(due),
        "recovered": recovered,
        "finished": finished,
        "dispatched": dispatched,
        "webhooks": len(webhooks),
    }


def dispatch_chunks(rt: Runtime, enqueuer: Enqueuer) -> int:
    """Claim due chunks, up to ``MAX_IN_FLIGHT_CHUNKS`` queued or running, and enqueue them.

    Every tick does this; a worker also does it right after planning an execution, so that its
    first chunks need not wait for the next tick. Claims commit before anything is enqueued.

    Returns:
        How many chunks were handed to workers.
    """
    with session_scope(rt.engine) as session:
        room = dispatch_room(session, rt.settings.max_in_flight_chunks)
        claimed = claim_chunks(session, room)
    for sent, chunk in enumerate(claimed):
        try:
            enqueuer.enqueue_chunk(chunk.chunk_id, chunk.attempt, chunk.priority)
        except Exception:
            # The broker is down: what was not handed over goes back to pending at once
            # (not counted as the chunks' failure) instead of waiting QUEUED_STALE_S.
            _give_back_unsent(rt, [c.chunk_id for c in claimed[sent:]])
            raise
    return len(claimed)


def _unclaim_unsent(rt: Runtime, execution_ids: list[str]) -> None:
    """Executions claimed but never enqueued for planning go back to scheduled; best effort."""
    try:
        with session_scope(rt.engine) as session:
            unclaim_executions(session, execution_ids)
    except Exception:
        log.warning("scheduler.unclaim_failed", executions=len(execution_ids))


def _give_back_unsent(rt: Runtime, chunk_ids: list[int]) -> None:
    """Chunks claimed but never enqueued return to pending; best effort (recovery covers it)."""
    unsent = sa.and_(col(Chunk.id).in_(chunk_ids), col(Chunk.status) == ChunkStatus.queued)
    try:
        with session_scope(rt.engine) as session:
            give_back_chunks(
                session,
                unsent,
                "broker unreachable: not enqueued",
                count_failure=False,
                max_failures=rt.settings.chunk_max_attempts,
                retry_after_s=rt.settings.outage_backoff_s,
            )
    except Exception:
        log.warning("scheduler.give_back_failed", chunks=len(chunk_ids))


def run(rt: Runtime, enqueuer: Enqueuer, stop: threading.Event) -> None:
    """Tick every ``scheduler_interval_s`` until ``stop`` is set; errors are logged, not fatal."""
    log.info("scheduler.started", interval_s=rt.settings.scheduler_interval_s)
    # Heartbeats are trusted only after this scheduler has seen the database answer for one
    # heartbeat period: at start (it may be coming back from an outage with everyone), and
    # after a tick that failed or hung (the database was away: nobody could write one).
    stale_s = rt.settings.heartbeat_stale_s
    # A tick is late when the gap since the last good one exceeds a heartbeat interval beyond
    # the loop's own wait (which would otherwise keep the grace going for ever when the
    # scheduler interval is long).
    late_s = stale_s / 6 + rt.settings.scheduler_interval_s
    trust_heartbeats_at = time.monotonic() + stale_s
    last_ok = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        if started - last_ok > late_s:
            trust_heartbeats_at = max(trust_heartbeats_at, started + stale_s)
        try:
            done = tick(rt, enqueuer, dead_workers=started >= trust_heartbeats_at)
            last_ok = time.monotonic()
        except Exception:
            log.exception("scheduler.tick_failed")
            done = {}
        # Dispatching a full batch means more is probably due: go again without waiting.
        if done.get("dispatched", 0) < rt.settings.max_in_flight_chunks // 2:
            stop.wait(rt.settings.scheduler_interval_s)
    log.info("scheduler.stopped")
