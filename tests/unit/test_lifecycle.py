"""The lifecycle on the worker's side: record as you go, outages wait, stalls are given back."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dramatiq.middleware.threading import raise_thread_exception
from dramatiq.middleware.time_limit import TimeLimitExceeded

from engine.audience.contacts import delete_contact
from engine.campaigns.campaign import TouchpointSpec
from engine.db import session_scope
from engine.errors import InvalidTransition
from engine.execution.delivery import deliver_chunk
from engine.execution.dispatch import claim_chunks, claim_due_executions
from engine.execution.lifecycle import (
    ACTIVE_EXECUTION_STATUSES,
    EXECUTION_TRANSITIONS,
    check_execution_transition,
    moving_from,
)
from engine.execution.planning import plan_execution
from engine.models import Chunk, Delivery, ExecutionStatus
from engine.models.base import utcnow
from engine.models.execution import ACTIVE_EXECUTION_SQL
from engine.runtime import Runtime
from engine.testing import WebhookSink, execution_state, wait_for, wait_until_finished
from tests.conftest import make_settings
from tests.factories import execute, make_campaign
from workers.embedded import EmbeddedStack

ONE_STEP = [TouchpointSpec(name="only", message="hello {{ name }}")]


def _plan(rt: Runtime, contacts: int, chunk_size: int = 1000, **config: Any) -> str:
    _, campaign_id = make_campaign(rt, contacts=contacts, steps=ONE_STEP, channel_config=config)
    execution_id = execute(rt, campaign_id)
    with session_scope(rt.engine) as session:
        claim_due_executions(session)
        plan_execution(session, execution_id, chunk_size=chunk_size)
    return execution_id


def _claim_one(rt: Runtime) -> int:
    with session_scope(rt.engine) as session:
        return claim_chunks(session, 1)[0].chunk_id


def _chunk(rt: Runtime) -> Chunk:
    with session_scope(rt.engine) as session:
        chunk = session.scalars(sa.select(Chunk)).one()
        session.expunge(chunk)
        return chunk


def _recorded(rt: Runtime) -> int:
    with session_scope(rt.engine) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(Delivery)) or 0)


def _sent_keys(rt: Runtime) -> Counter[str]:
    path = Path(rt.settings.log_channel_path)
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(json.loads(line)["idempotency_key"] for line in lines)


def test_the_transition_table_is_the_one_the_store_enforces() -> None:
    sql = {s.strip(" '") for s in ACTIVE_EXECUTION_SQL.split("(")[1].rstrip(")").split(",")}
    assert sql == set(ACTIVE_EXECUTION_STATUSES)
    for final in ("completed", "failed", "cancelled"):
        assert EXECUTION_TRANSITIONS[ExecutionStatus(final)] == frozenset()
    with pytest.raises(ValueError):  # an UPDATE may only name a move the table allows
        moving_from(ExecutionStatus.completed, ExecutionStatus.running)
    with pytest.raises(InvalidTransition) as err:
        check_execution_transition("exe_1", "completed", ExecutionStatus.running, "CANNOT_RESUME")
    assert err.value.code == "CANNOT_RESUME" and "completed" in err.value.message


def test_an_interrupted_chunk_keeps_what_it_sent_and_resends_at_most_one_batch(
    rt: Runtime,
) -> None:
    """dramatiq's time limit raises a BaseException in the worker thread, mid-chunk."""
    execution_id = _plan(rt, contacts=400, rate_per_s=200)  # batches of 40, ~2 s in all
    chunk_id = _claim_one(rt)
    raised: list[BaseException] = []

    def work() -> None:
        try:
            deliver_chunk(rt, chunk_id)
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    wait_for(lambda: _recorded(rt) >= 120, timeout=30)  # committed batch by batch
    raise_thread_exception(worker.ident or 0, TimeLimitExceeded)
    worker.join(timeout=30)

    assert raised and isinstance(raised[0], TimeLimitExceeded)  # re-raised for dramatiq
    chunk = _chunk(rt)
    assert (chunk.status, chunk.failures) == ("pending", 0)  # given back, not the chunk's fault
    assert _recorded(rt) >= sum(_sent_keys(rt).values()) - 40  # at most the batch in flight

    assert deliver_chunk(rt, _claim_one(rt)) == "done"
    keys = _sent_keys(rt)
    assert len(keys) == 400  # nobody abandoned
    assert sum(keys.values()) - 400 <= 40  # re-sent: at most one batch
    execution = execution_state(rt, execution_id)
    assert execution.processed == execution.successful == 400


def test_an_unreachable_limiter_gives_the_chunk_back_without_failing_it(
    db_url: str, tmp_path: Path
) -> None:
    # A Redis limiter on a port nothing listens on: a Redis outage, as a worker sees it.
    down = make_settings(
        db_url,
        tmp_path,
        redis_url="redis://127.0.0.1:9/0",
        limiter_wait_s=0.3,
        outage_backoff_s=30,
    )
    rt = Runtime.from_settings(down)
    try:
        _plan(rt, contacts=50, rate_per_s=1000)
        before = utcnow()
        assert deliver_chunk(rt, _claim_one(rt)) == "outage"
        chunk = _chunk(rt)
        assert (chunk.status, chunk.failures) == ("pending", 0)
        not_before = chunk.not_before.replace(tzinfo=before.tzinfo)
        assert not_before > before + timedelta(seconds=20)  # waits for the outage to pass
        assert _recorded(rt) == 0  # no contact was failed for it
    finally:
        rt.close()

    back = Runtime.from_settings(make_settings(db_url, tmp_path))  # the limiter is back
    try:
        with session_scope(back.engine) as session:
            session.execute(sa.update(Chunk).values(not_before=utcnow()))
        assert deliver_chunk(back, _claim_one(back)) == "done"
        assert _recorded(back) == 50
    finally:
        back.close()


def test_a_contact_deleted_after_planning_is_skipped_so_the_run_completes(rt: Runtime) -> None:
    organization_id, campaign_id = make_campaign(rt, contacts=30, steps=ONE_STEP)
    execution_id = execute(rt, campaign_id)
    with session_scope(rt.engine) as session:
        claim_due_executions(session)
        plan_execution(session, execution_id, chunk_size=10)
        ids = session.scalars(sa.text("SELECT contact_id FROM execution_recipients LIMIT 3"))
        for contact_id in list(ids):
            delete_contact(session, organization_id, contact_id)

    with EmbeddedStack(rt, threads=2):
        execution = wait_until_finished(rt, execution_id)

    assert execution.status == "completed"
    assert execution.processed == execution.total == 30
    assert (execution.successful, execution.skipped) == (27, 3)
    with session_scope(rt.engine) as session:
        codes = session.scalars(sa.select(Delivery.error_code).where(Delivery.status == "skipped"))
        assert list(codes) == ["CONTACT_DELETED"] * 3


@pytest.mark.parametrize(
    ("provider_id", "stored"),
    [("m" * 300, "m" * 200), ("m\u0000" * 20, "m" * 20)],
    ids=["too long", "NUL characters"],
)
def test_a_provider_id_the_store_refuses_is_fitted_not_resent(
    rt: Runtime, provider_id: str, stored: str
) -> None:
    answer = json.dumps({"id": provider_id}).encode()
    with WebhookSink(lambda body, n: (200, {}, answer)) as sink:
        _, campaign_id = make_campaign(
            rt, contacts=20, channel="webhook", steps=ONE_STEP, channel_config={"url": sink.url}
        )
        execution_id = execute(rt, campaign_id)
        with EmbeddedStack(rt, threads=2):
            execution = wait_until_finished(rt, execution_id)
        sends = len(sink.requests)

    assert execution.status == "completed" and execution.successful == 20
    assert sends == 20  # each contact once: the save never failed and re-sent
    with session_scope(rt.engine) as session:
        ids = set(session.scalars(sa.select(Delivery.provider_message_id)))
    assert ids == {stored}


def test_a_chunk_that_makes_no_progress_stops_heartbeating(rt: Runtime) -> None:
    from engine.heartbeats import HeartbeatKeeper

    _plan(rt, contacts=10)
    chunk_id = _claim_one(rt)
    with session_scope(rt.engine) as session:
        session.execute(sa.update(Chunk).values(status="running"))
        attempt = session.scalar(sa.select(Chunk.attempts))
    keeper = HeartbeatKeeper(rt.engine, every_s=3600, stall_s=0.2)
    keeper.add(chunk_id, int(attempt or 0))

    assert keeper.beat() == 1
    time.sleep(0.3)  # a send blocked: no batch finished, no wait announced
    assert keeper.beat() == 0
    keeper.progress(chunk_id, expected_wait_s=5.0)  # a rate-limit wait ahead is progress
    keeper.progress(chunk_id, expected_wait_s=0.0)  # a shorter one doesn't cut it short
    time.sleep(0.3)
    assert keeper.beat() == 1
    keeper.close()


def test_a_scheduler_trusts_no_stale_heartbeat_until_it_has_seen_the_database_a_while(
    db_url: str, tmp_path: Path
) -> None:
    """Started as the database comes back, every heartbeat looks stale: nobody could write one."""
    from scheduler.loop import run

    settings = make_settings(db_url, tmp_path, heartbeat_stale_s=1.5, scheduler_interval_s=0.05)
    rt = Runtime.from_settings(settings)
    _plan(rt, contacts=10)
    _claim_one(rt)
    with session_scope(rt.engine) as session:  # a worker's chunk, last heard of an hour ago
        session.execute(
            sa.update(Chunk).values(status="running", heartbeat_at=utcnow() - timedelta(hours=1))
        )

    class Nowhere:
        def enqueue_plan(self, execution_id: str) -> None: ...
        def enqueue_chunk(self, chunk_id: int, attempt: int, priority: str) -> None: ...
        def enqueue_webhook(self, delivery_id: int) -> None: ...

    stop = threading.Event()
    loop = threading.Thread(target=run, args=(rt, Nowhere(), stop))
    loop.start()
    try:
        time.sleep(0.8)
        assert _chunk(rt).status == "running"  # within the first heartbeat period: trusted
        wait_for(lambda: _chunk(rt).failures == 1, timeout=10)  # then taken for dead
    finally:
        stop.set()
        loop.join(timeout=10)
        rt.close()


def test_cancel_stops_sending_within_one_batch(rt: Runtime) -> None:
    from engine.execution.runs import cancel_execution

    execution_id = _plan(rt, contacts=400, chunk_size=100, rate_per_s=100)  # batches of 20
    with EmbeddedStack(rt, threads=4):
        wait_for(lambda: execution_state(rt, execution_id).processed >= 40, timeout=30)
        with session_scope(rt.engine) as session:
            cancel_execution(session, execution_id)
        at_cancel = sum(_sent_keys(rt).values())
        time.sleep(1.5)
        after = sum(_sent_keys(rt).values())

    # Each of the 4 threads finishes at most the batch it was sending.
    assert after - at_cancel <= 4 * 20
    assert execution_state(rt, execution_id).status == "cancelled"
    with session_scope(rt.engine) as session:
        open_chunks = session.scalar(
            sa.select(sa.func.count()).where(Chunk.status.in_(["pending", "queued", "running"]))
        )
    assert open_chunks == 0  # nothing left that could send later


def test_a_slow_channel_gets_chunks_it_can_send_well_inside_the_time_limit(rt: Runtime) -> None:
    from engine.execution.planning import CHUNK_SECONDS

    # 0.1 message/s: a chunk of 1,000 would take 2.8 hours, past the workers' 1 h time limit.
    _plan(rt, contacts=100, chunk_size=1000, rate_per_s=0.1)
    with session_scope(rt.engine) as session:
        sizes = session.scalars(sa.select(Chunk.size).order_by(Chunk.chunk_no)).all()

    assert sizes == [60, 40]  # 0.1/s for 600 s
    assert max(sizes) / 0.1 <= CHUNK_SECONDS
