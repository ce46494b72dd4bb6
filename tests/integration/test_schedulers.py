"""Two schedulers at once on PostgreSQL.

Every execution is planned once and every chunk enqueued once per attempt.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.campaigns.campaign import TouchpointSpec
from engine.db import make_engine, session_scope
from engine.execution.delivery import deliver_chunk
from engine.execution.dispatch import claim_due_executions
from engine.execution.planning import plan_execution
from engine.models import Delivery
from engine.runtime import Runtime
from engine.testing import wait_until_finished
from scheduler import loop
from tests.conftest import make_settings
from tests.factories import execute, make_campaign

pytestmark = pytest.mark.integration


class RecordingWorker:
    """An enqueuer that records what it is handed and does the work at once, like a worker would."""

    def __init__(self, rt: Runtime, log: list[tuple[str, object]], lock: threading.Lock) -> None:
        self.rt, self.log, self.lock = rt, log, lock
        self.enqueued = 0

    def enqueue_plan(self, execution_id: str) -> None:
        with self.lock:
            self.log.append(("plan", execution_id))
            self.enqueued += 1
        with session_scope(self.rt.engine) as session:
            plan_execution(session, execution_id, self.rt.settings.chunk_size)

    def enqueue_chunk(self, chunk_id: int, attempt: int, priority: str) -> None:
        with self.lock:
            self.log.append(("chunk", (chunk_id, attempt)))
            self.enqueued += 1
        deliver_chunk(self.rt, chunk_id)

    def enqueue_webhook(self, delivery_id: int) -> None:
        raise AssertionError("no webhook subscriptions in this test")


def test_two_schedulers_share_the_work_without_doing_anything_twice(
    pg_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        pg_url, tmp_path, chunk_size=50, max_in_flight_chunks=8, scheduler_interval_s=0.01
    )
    setup = Runtime.from_settings(settings)
    steps = [TouchpointSpec(name="one", message="m1"), TouchpointSpec(name="two", message="m2")]
    campaigns = [
        make_campaign(setup, contacts=400, channel="null", steps=steps, org=f"org {i}")[1]
        for i in range(12)
    ]
    executions = [execute(setup, campaign_id) for campaign_id in campaigns]

    log: list[tuple[str, object]] = []
    lock = threading.Lock()
    stop = threading.Event()
    runtimes = [Runtime.from_settings(settings) for _ in range(2)]
    workers = [RecordingWorker(rt, log, lock) for rt in runtimes]
    threads = [threading.Thread(target=loop.run, args=(w.rt, w, stop)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        finished = [wait_until_finished(setup, e, timeout=180) for e in executions]
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert {e.status for e in finished} == {"completed"}
    assert all(w.enqueued > 0 for w in workers)  # both schedulers took part
    plans = Counter(item for kind, item in log if kind == "plan")
    assert sorted(plans) == sorted(executions) and set(plans.values()) == {1}
    chunks = Counter(item for kind, item in log if kind == "chunk")
    assert len(chunks) == 12 * 2 * 8 and set(chunks.values()) == {1}  # 8 chunks of 50 per step
    with session_scope(setup.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 12 * 2 * 400
    for rt in [setup, *runtimes]:
        rt.close()


def test_processes_starting_together_migrate_an_empty_database_once(tmp_path: Path) -> None:
    import concurrent.futures

    from engine.db import migrate
    from tests.conftest import PG_ADMIN_URL

    name = f"ce_migrate_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_ADMIN_URL, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for future in [pool.submit(migrate, url) for _ in range(4)]:
                future.result()  # none of them fails
        engine = make_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            assert conn.scalar(sa.text("select count(*) from alembic_version")) == 1
            assert "deliveries" in sa.inspect(conn).get_table_names()
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Collecting:
    """An enqueuer that only collects the chunks it is handed (nobody works on them)."""

    def __init__(self) -> None:
        self.chunks: list[int] = []
        self.lock = threading.Lock()

    def enqueue_plan(self, execution_id: str) -> None:
        raise AssertionError("nothing to plan here")

    def enqueue_chunk(self, chunk_id: int, attempt: int, priority: str) -> None:
        with self.lock:
            self.chunks.append(chunk_id)

    def enqueue_webhook(self, delivery_id: int) -> None:
        raise AssertionError("no webhook subscriptions in this test")


def test_dispatchers_racing_never_queue_more_than_max_in_flight_chunks(
    pg_url: str, tmp_path: Path
) -> None:
    # Planners hand their first chunks out right after planning, beside every scheduler's tick:
    # twelve of them at once still queue at most MAX_IN_FLIGHT_CHUNKS, each chunk once.
    settings = make_settings(pg_url, tmp_path, chunk_size=10, max_in_flight_chunks=8)
    setup = Runtime.from_settings(settings)
    steps = [TouchpointSpec(name="one", message="m1")]
    for i in range(3):
        _, campaign_id = make_campaign(
            setup, contacts=100, channel="null", steps=steps, org=f"o{i}"
        )
        execution_id = execute(setup, campaign_id)
        with session_scope(setup.engine) as session:
            assert claim_due_executions(session) == [execution_id]
        with session_scope(setup.engine) as session:
            assert plan_execution(session, execution_id, settings.chunk_size)
    collected = Collecting()
    start = threading.Barrier(12)
    runtimes = [Runtime.from_settings(settings) for _ in range(12)]

    def dispatch(rt: Runtime) -> int:
        start.wait()
        return loop.dispatch_chunks(rt, collected)

    threads = [threading.Thread(target=dispatch, args=(rt,)) for rt in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(collected.chunks) == 8 and len(set(collected.chunks)) == 8
    for rt in [setup, *runtimes]:
        rt.close()
