"""SQL is the source of truth: lost workers and lost messages are recovered, stale ones dropped."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from engine.db import session_scope
from engine.models import Chunk, Delivery
from engine.models.base import utcnow
from engine.runtime import Runtime
from engine.services.campaigns import TouchpointSpec
from engine.services.delivery import deliver_chunk
from engine.services.dispatch import claim_chunks, claim_due_executions, recover_stale_chunks
from engine.services.executions import plan_execution
from tests.factories import execute, make_campaign

ONE_STEP = [TouchpointSpec(name="only", message="hello")]


def _planned(rt: Runtime, contacts: int = 250) -> str:
    _, campaign_id = make_campaign(rt, contacts=contacts, steps=ONE_STEP)
    execution_id = execute(rt, campaign_id)
    with session_scope(rt.engine) as session:
        claim_due_executions(session)
        plan_execution(session, execution_id, chunk_size=100)
    return execution_id


def _claim(rt: Runtime, limit: int = 10) -> list:
    with session_scope(rt.engine) as session:
        return claim_chunks(session, limit)


def _deliveries(rt: Runtime) -> int:
    with session_scope(rt.engine) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Delivery)) or 0)


def test_a_message_from_an_older_attempt_is_dropped(rt: Runtime) -> None:
    _planned(rt)
    first = _claim(rt, 1)[0]
    with session_scope(rt.engine) as session:  # the message was lost; the sweep re-queues it
        session.execute(sa.update(Chunk).values(queued_at=utcnow() - timedelta(hours=1)))
        recover_stale_chunks(session, heartbeat_stale_s=60, queued_stale_s=60, max_attempts=5)
    second = next(c for c in _claim(rt) if c.chunk_id == first.chunk_id)

    assert second.attempt == first.attempt + 1
    assert deliver_chunk(rt, first.chunk_id, first.attempt) == "stale"
    assert _deliveries(rt) == 0
    assert deliver_chunk(rt, second.chunk_id, second.attempt) == "done"
    assert _deliveries(rt) == 100


def test_a_chunk_whose_worker_died_is_redelivered_exactly_once(rt: Runtime) -> None:
    _planned(rt, contacts=100)
    _claim(rt, 1)
    # A worker took it (status running) and died: its heartbeat is five minutes old.
    with session_scope(rt.engine) as session:
        session.execute(
            sa.update(Chunk).values(status="running", heartbeat_at=utcnow() - timedelta(minutes=5))
        )
        recovered = recover_stale_chunks(
            session, heartbeat_stale_s=60, queued_stale_s=60, max_attempts=5
        )
    assert recovered == 1
    retry = _claim(rt, 1)[0]
    assert deliver_chunk(rt, retry.chunk_id, retry.attempt) == "done"
    assert _deliveries(rt) == 100
    lines = Path(rt.settings.log_channel_path).read_text().splitlines()
    assert len(lines) == 100


def test_a_chunk_lost_too_often_fails_with_its_reason(rt: Runtime) -> None:
    _planned(rt, contacts=100)
    for _ in range(3):
        _claim(rt, 1)
        with session_scope(rt.engine) as session:
            session.execute(sa.update(Chunk).values(queued_at=utcnow() - timedelta(hours=1)))
            recover_stale_chunks(session, heartbeat_stale_s=60, queued_stale_s=60, max_attempts=3)
    with session_scope(rt.engine) as session:
        chunk = session.scalars(sa.select(Chunk)).one()
    assert chunk.status == "failed"
    assert "lost 3 times" in (chunk.error or "")
