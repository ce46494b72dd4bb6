"""Production mode: separate scheduler and worker processes on PostgreSQL + Redis (and RabbitMQ)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.campaigns.campaign import TouchpointSpec
from engine.db import session_scope
from engine.models import Chunk, Delivery
from engine.runtime import Runtime
from engine.testing import (
    WebhookSink,
    execution_state,
    stop_process_groups,
    wait_for,
    wait_until_finished,
)
from tests.conftest import make_settings
from tests.factories import execute, make_campaign
from workers.embedded import EmbeddedStack

pytestmark = pytest.mark.integration

Start = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def production(pg_url: str, redis_url: str, tmp_path: Path) -> Runtime:
    """A runtime on PostgreSQL + Redis, as the separate processes will see it."""
    settings = make_settings(pg_url, tmp_path, broker_url=redis_url, redis_url=redis_url)
    rt = Runtime.from_settings(settings)
    yield rt
    rt.close()


@pytest.fixture
def start(production: Runtime, tmp_path: Path) -> Iterator[Start]:
    """Start ``campaign …`` processes (each in its own process group); stop them all at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    s = production.settings

    def _start(*args: str, **env: str) -> subprocess.Popen[bytes]:
        environ = {
            **os.environ,
            "DATABASE_URL": s.database_url,
            "BROKER_URL": s.broker_url,
            "REDIS_URL": s.redis_url,
            "SECRET_KEY": s.secret_key,
            "LOG_FORMAT": "json",
            "CHUNK_SIZE": "100",
            "SCHEDULER_INTERVAL_S": "0.1",
            "RATE_LIMITS": "{}",
            **env,
        }
        log = open(tmp_path / f"proc-{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", *args],
            env=environ,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield _start
    stop_process_groups(procs)
    # Printed, so shown only when the test fails: what each process said (its log is under
    # tmp_path, gone after the run).
    for path in sorted(tmp_path.glob("proc-*.log")):
        tail = path.read_bytes().decode(errors="replace").splitlines()[-40:]
        print(f"--- {path.name} (last {len(tail)} lines)", *tail, sep="\n")


def _running_chunks(rt: Runtime) -> int:
    with session_scope(rt.engine) as session:
        return int(session.scalar(sa.select(sa.func.count()).where(Chunk.status == "running")) or 0)


def _deliveries(rt: Runtime) -> list[tuple[str, int]]:
    with session_scope(rt.engine) as session:
        return [
            tuple(r)
            for r in session.execute(sa.select(Delivery.touchpoint_id, Delivery.contact_id))
        ]


def test_scheduler_and_worker_processes_run_a_campaign(production: Runtime, start: Start) -> None:
    with WebhookSink() as sink:
        _, campaign_id = make_campaign(
            production, contacts=1500, channel="webhook", channel_config={"url": sink.url}
        )
        execution_id = execute(production, campaign_id)
        start("scheduler")
        start("scheduler")
        start("worker", "--processes", "2", "--threads", "4")
        execution = wait_until_finished(production, execution_id, timeout=180)

    assert execution.status == "completed"
    assert execution.successful == 3000
    keys = Counter(sink.keys())
    assert len(keys) == 3000 and max(keys.values()) == 1
    assert len(set(_deliveries(production))) == 3000


def test_rate_limit_is_shared_by_worker_processes(production: Runtime, start: Start) -> None:
    arrivals: list[float] = []

    def record(body: dict, n: int) -> tuple[int, dict[str, str]]:
        arrivals.append(time.monotonic())
        return 200, {}

    with WebhookSink(record) as sink:
        steps = [TouchpointSpec(name="only", message="hi")]
        config = {"url": sink.url, "rate_per_s": 200}
        _, campaign_id = make_campaign(
            production, contacts=3000, channel="webhook", channel_config=config, steps=steps
        )
        execute(production, campaign_id)
        start("scheduler")
        start("worker", "--processes", "2", "--threads", "4")
        wait_for(lambda: len(arrivals) > 0, timeout=60)
        time.sleep(13)

    window_start = arrivals[0] + 1.0  # after warm-up
    in_window = [t for t in arrivals if window_start <= t < window_start + 10.0]
    rate = len(in_window) / 10.0
    # Never above the limit: that is the promise (unshared, 2 processes would make 400/s).
    # Below it only by what CI's load costs: each batch is committed before the next is sent,
    # and on a busy 2-core runner that has measured 188/s (10% is still far from halved).
    assert 180 <= rate <= 210, f"measured {rate}/s across 2 processes for a 200/s limit"


def test_a_worker_killed_mid_run_loses_nothing_and_counts_nothing_twice(
    production: Runtime, start: Start
) -> None:
    fast_recovery = {"HEARTBEAT_STALE_S": "3", "QUEUED_STALE_S": "10", "MAX_IN_FLIGHT_CHUNKS": "8"}
    with WebhookSink(lambda body, n: (time.sleep(0.005), (200, {}))[1]) as sink:
        _, campaign_id = make_campaign(
            production,
            contacts=3000,
            channel="webhook",
            # 250/s: a chunk of 100 takes ~0.4 s, so the victim still holds one when the kill
            # lands, even on a loaded runner (at 1000/s it could finish them first).
            channel_config={"url": sink.url, "rate_per_s": 250},
        )
        execution_id = execute(production, campaign_id)
        start("scheduler", **fast_recovery)
        victim = start("worker", "--processes", "1", "--threads", "4", **fast_recovery)
        start("worker", "--processes", "1", "--threads", "4", **fast_recovery)
        # Kill only while both workers hold chunks, so the victim surely dies mid-chunk.
        wait_for(
            lambda: (
                execution_state(production, execution_id).processed >= 600
                and _running_chunks(production) >= 6
            ),
            timeout=120,
            interval=0.01,
        )
        os.killpg(victim.pid, signal.SIGKILL)
        execution = wait_until_finished(production, execution_id, timeout=180)
        keys = sink.keys()

    assert execution.status == "completed"
    assert execution.processed == execution.successful == 6000
    deliveries = _deliveries(production)
    assert len(deliveries) == len(set(deliveries)) == 6000  # exactly once in our accounting
    expected = {f"{execution_id}:{tp}:{contact}" for tp, contact in deliveries}
    assert set(keys) == expected  # the receiver saw every delivery's key
    with session_scope(production.engine) as session:
        redispatched = session.scalar(sa.select(sa.func.count()).where(Chunk.attempts > 1))
    assert redispatched, "the killed worker held no chunk: the test proved nothing"
    duplicates = len(keys) - len(set(keys))
    # At-least-once to the receiver: repeats only for chunks the killed worker held
    # (at most 4 threads with 100 contacts each).
    assert duplicates <= 4 * 100


def test_rabbitmq_broker_runs_a_campaign(pg_url: str, amqp_url: str, tmp_path: Path) -> None:
    rt = Runtime.from_settings(make_settings(pg_url, tmp_path, broker_url=amqp_url))
    _, campaign_id = make_campaign(rt, contacts=300)
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=4):
        execution = wait_until_finished(rt, execution_id)
    assert execution.status == "completed" and execution.successful == 600
    rt.close()
