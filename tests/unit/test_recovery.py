"""SQL is the source of truth: lost workers and messages are recovered, failures are bounded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from engine.campaigns.campaign import TouchpointSpec
from engine.db import session_scope
from engine.execution.delivery import deliver_chunk
from engine.execution.dispatch import (
    ClaimedChunk,
    claim_chunks,
    claim_due_executions,
    finish_execution_if_done,
    recover_stale_chunks,
)
from engine.execution.planning import plan_execution
from engine.models import Chunk, Delivery
from engine.models.base import utcnow
from engine.runtime import Runtime
from engine.testing import execution_state
from tests.factories import execute, make_campaign

ONE_STEP = [TouchpointSpec(name="only", message="hello")]


def _planned(rt: Runtime, contacts: int = 250) -> str:
    _, campaign_id = make_campaign(rt, contacts=contacts, steps=ONE_STEP)
    execution_id = execute(rt, campaign_id)
    with session_scope(rt.engine) as session:
        claim_due_executions(session)
        plan_execution(session, execution_id, chunk_size=100)
    return execution_id


def _claim(rt: Runtime, limit: int = 10) -> list[ClaimedChunk]:
    with session_scope(rt.engine) as session:
        return claim_chunks(session, limit)


def _recover(rt: Runtime, max_failures: int = 5) -> int:
    with session_scope(rt.engine) as session:
        return recover_stale_chunks(
            session, heartbeat_stale_s=60, queued_stale_s=60, max_failures=max_failures
        )


def _age(rt: Runtime, **values: object) -> None:
    """Make every chunk look as if its worker or message went quiet an hour ago."""
    with session_scope(rt.engine) as session:
        session.execute(sa.update(Chunk).values(**values))


def _deliveries(rt: Runtime) -> int:
    with session_scope(rt.engine) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Delivery)) or 0)


def _chunk(rt: Runtime) -> Chunk:
    with session_scope(rt.engine) as session:
        chunk = session.scalars(sa.select(Chunk)).one()
        session.expunge(chunk)
        return chunk


def test_a_late_message_still_delivers_and_a_duplicate_does_nothing(rt: Runtime) -> None:
    _planned(rt, contacts=100)
    first = _claim(rt, 1)[0]
    _age(rt, queued_at=utcnow() - timedelta(hours=1))
    assert _recover(rt) == 1  # its message looked lost: dispatched again
    second = _claim(rt, 1)[0]
    assert second.attempt == first.attempt + 1

    assert deliver_chunk(rt, first.chunk_id) == "done"  # the late first message takes it
    assert deliver_chunk(rt, second.chunk_id) == "stale"  # the second finds it done
    assert _deliveries(rt) == 100
    assert _chunk(rt).failures == 0  # a slow message is not the chunk's failure


def test_a_chunk_whose_worker_died_is_redelivered_exactly_once(rt: Runtime) -> None:
    _planned(rt, contacts=100)
    _claim(rt, 1)
    # A worker took it (status running) and died: its heartbeat is an hour old.
    _age(rt, status="running", heartbeat_at=utcnow() - timedelta(hours=1))
    assert _recover(rt) == 1
    retry = _claim(rt, 1)[0]

    assert deliver_chunk(rt, retry.chunk_id) == "done"
    assert _deliveries(rt) == 100
    assert len(Path(rt.settings.log_channel_path).read_text().splitlines()) == 100
    assert _chunk(rt).failures == 1


def test_a_chunk_whose_workers_keep_dying_fails_and_so_does_its_execution(rt: Runtime) -> None:
    execution_id = _planned(rt, contacts=100)
    for _ in range(3):
        _claim(rt, 1)
        _age(rt, status="running", heartbeat_at=utcnow() - timedelta(hours=1))
        _recover(rt, max_failures=3)
    chunk = _chunk(rt)
    assert (chunk.status, chunk.failures) == ("failed", 3)
    assert "failed 3 times" in (chunk.error or "")

    with session_scope(rt.engine) as session:
        assert finish_execution_if_done(session, execution_id) == "failed"
    assert execution_state(rt, execution_id).error == "some chunks failed after retries"


def test_an_error_in_delivery_gives_the_chunk_back_until_the_limit(rt: Runtime) -> None:
    execution_id = _planned(rt, contacts=50)
    # Data that no worker can use: the campaign's channel vanished from this deployment.
    with session_scope(rt.engine) as session:
        session.execute(sa.text("UPDATE campaigns SET channel = 'gone'"))
    for expected_failures in range(1, rt.settings.chunk_max_attempts + 1):
        claimed = _claim(rt, 1)[0]
        assert deliver_chunk(rt, claimed.chunk_id) == "released"
        assert _chunk(rt).failures == expected_failures
    chunk = _chunk(rt)
    assert chunk.status == "failed"
    assert "unknown channel 'gone'" in (chunk.error or "")
    assert _claim(rt) == []
    with session_scope(rt.engine) as session:
        assert finish_execution_if_done(session, execution_id) == "failed"


def test_heartbeats_are_kept_only_for_the_owning_attempt(rt: Runtime) -> None:
    _planned(rt, contacts=100)
    claimed = _claim(rt, 1)[0]
    old = utcnow() - timedelta(hours=1)
    _age(rt, status="running", heartbeat_at=old)

    rt.heartbeats.add(claimed.chunk_id, claimed.attempt + 1)  # a stale owner: no effect
    assert rt.heartbeats.beat() == 0
    rt.heartbeats.add(claimed.chunk_id, claimed.attempt)
    assert rt.heartbeats.beat() == 1
    rt.heartbeats.remove(claimed.chunk_id)

    assert _recover(rt) == 0  # fresh heartbeat: not taken for dead


def test_a_lost_plan_is_retried_then_failed_with_its_reason(rt: Runtime) -> None:
    from engine.execution.dispatch import recover_stale_plans
    from engine.models import Execution

    _, campaign_id = make_campaign(rt, contacts=10, steps=ONE_STEP)
    execution_id = execute(rt, campaign_id)
    with session_scope(rt.engine) as session:
        assert claim_due_executions(session) == [execution_id]
    for _ in range(2):  # the plan message is lost twice: planned again each time
        with session_scope(rt.engine) as session:
            session.execute(sa.update(Execution).values(claimed_at=utcnow() - timedelta(hours=1)))
            assert recover_stale_plans(session, queued_stale_s=60, max_attempts=3) == [execution_id]
    with session_scope(rt.engine) as session:
        session.execute(sa.update(Execution).values(claimed_at=utcnow() - timedelta(hours=1)))
        assert recover_stale_plans(session, queued_stale_s=60, max_attempts=3) == []

    execution = execution_state(rt, execution_id)
    assert execution.status == "failed"
    assert execution.error == "planning did not complete after 3 attempts"
