"""Fan-out benchmark: one campaign of N contacts through the real scheduler and workers.

Prints one JSON object: deliveries_per_s, contacts, deliveries, elapsed_s, peak_worker_rss_mb …

Examples:
    # embedded (SQLite + in-process broker, worker threads in this process)
    python bench/fanout.py --contacts 20000 --channel null
    # production mode: separate `campaign scheduler` + `campaign worker` processes
    python bench/fanout.py --channel null \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/bench \\
        --broker-url redis://127.0.0.1:6379/0 --processes 2 --threads 8
    python bench/fanout.py --channel webhook ...   # POSTs to a loopback sink (bench/sink.py)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa
from sqlmodel import col

from engine.audience.contacts import add_contacts, demo_contacts
from engine.campaigns.campaign import TouchpointSpec, create_campaign, get_or_create_organization
from engine.config import Settings
from engine.db import migrate, session_scope
from engine.execution.progress import get_progress
from engine.execution.runs import start_execution
from engine.logging import configure_logging
from engine.models import Delivery, Execution, ExecutionRate
from engine.runtime import Runtime
from engine.testing import stop_process_groups, wait_until_finished

HERE = Path(__file__).resolve().parent


def parse() -> argparse.Namespace:
    """Read the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--contacts", type=int, default=100_000)
    p.add_argument("--channel", choices=["null", "log", "webhook"], default="null")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    p.add_argument("--broker-url", default=os.environ.get("BROKER_URL", "memory://"))
    p.add_argument("--processes", type=int, default=2, help="worker processes (not embedded)")
    p.add_argument("--threads", type=int, default=8, help="threads per worker process")
    p.add_argument("--chunk-size", type=int, default=1000)
    p.add_argument("--rate", type=float, default=0, help="rate limit per second (0 = none)")
    p.add_argument("--sink-port", type=int, default=8808)
    p.add_argument(
        "--probe-progress",
        action="store_true",
        help="read the execution's progress every 20 ms during the run, report the latency",
    )
    return p.parse_args()


def seed(rt: Runtime, args: argparse.Namespace, config: dict[str, Any]) -> str:
    """Create a fresh organization with the contacts and a one-message campaign."""
    with session_scope(rt.engine) as session:
        org = get_or_create_organization(session, f"bench-{time.time_ns()}")
        add_contacts(session, org.id, demo_contacts(args.contacts))
        campaign = create_campaign(
            session,
            org.id,
            "bench",
            args.channel,
            [TouchpointSpec(name="only", message={"text": "Hi {{ first_name }}"})],
            channel_config=config,
        )
        return campaign.id


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``campaign ARGS`` in its own process group, output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def rss_mb(proc: subprocess.Popen[bytes]) -> float:
    """Largest resident set of any process in ``proc``'s tree, in MB."""
    try:
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
        return max(p.memory_info().rss for p in tree) / 1e6
    except psutil.Error:
        return 0.0


class ProgressProbe:
    """Reads an execution's progress (what ``GET …/progress`` answers) every ``every_s`` seconds
    from a thread of this process, timing each read, until stopped."""

    def __init__(self, rt: Runtime, execution_id: str, every_s: float = 0.02) -> None:
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(rt, execution_id, every_s), daemon=True
        )
        self._thread.start()

    def _run(self, rt: Runtime, execution_id: str, every_s: float) -> None:
        while not self._stop.wait(every_s):
            start = time.perf_counter()
            with session_scope(rt.engine) as session:
                get_progress(session, execution_id)
            self.latencies_ms.append((time.perf_counter() - start) * 1000)

    def stop(self) -> dict[str, Any]:
        """Stop reading; the latency figures (p50, p99, max in ms, and how many reads)."""
        self._stop.set()
        self._thread.join()
        ordered = sorted(self.latencies_ms) or [0.0]
        return {
            "progress_reads": len(self.latencies_ms),
            "progress_p50_ms": round(statistics.median(ordered), 1),
            "progress_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
            "progress_max_ms": round(ordered[-1], 1),
        }


def timeline(rt: Runtime, execution_id: str) -> dict[str, Any]:
    """What the execution's per-second delivery counts say: the steady rate (the run without
    its first and last second), the busiest second, and how long after the execution was
    created the first delivery was recorded (the scheduler's lag plus planning)."""
    with session_scope(rt.engine) as session:
        counts = [
            n
            for (n,) in session.execute(
                sa.select(col(ExecutionRate.count))
                .where(col(ExecutionRate.execution_id) == execution_id)
                .order_by(col(ExecutionRate.second))
            )
        ]
        execution = session.get_one(Execution, execution_id)
        first = session.scalar(
            sa.select(sa.func.min(col(Delivery.created_at))).where(
                col(Delivery.execution_id) == execution_id
            )
        )
    steady = counts[1:-1] or counts
    lag = (first - execution.created_at).total_seconds() if first else None
    return {
        "steady_deliveries_per_s": round(sum(steady) / len(steady), 1) if steady else None,
        "busiest_second": max(counts, default=0),
        "first_delivery_after_s": round(lag, 3) if lag is not None else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    workdir = Path(tempfile.mkdtemp(prefix="fanout-"))
    db_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    embedded = args.broker_url.startswith("memory://")
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "BROKER_URL": args.broker_url,
        # The processes refuse the public development key; a fresh one per run.
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(48),
        "CHUNK_SIZE": str(args.chunk_size),
        "LOG_LEVEL": "WARNING",
        "LOG_CHANNEL_PATH": str(workdir / "deliveries.jsonl"),
        "RATE_LIMITS": "{}",
        # The webhook sink listens on loopback: allowed on purpose (the default refuses it).
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    os.environ.update(env)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    migrate(db_url)
    rt = Runtime.from_settings(settings)
    procs: list[subprocess.Popen[bytes]] = []
    config: dict[str, Any] = {"rate_per_s": args.rate} if args.rate else {}
    if args.channel == "webhook":
        sink = [sys.executable, str(HERE / "sink.py"), "--port", str(args.sink_port)]
        procs.append(subprocess.Popen(sink, stdout=subprocess.DEVNULL, start_new_session=True))
        config["url"] = f"http://127.0.0.1:{args.sink_port}/hook"
        time.sleep(0.5)
    campaign_id = seed(rt, args, config)
    workers: list[subprocess.Popen[bytes]] = []
    stack = None
    if embedded:
        from workers.embedded import EmbeddedStack

        stack = EmbeddedStack(rt, threads=args.threads).start()
    else:
        procs.append(start(["scheduler"], env))
        workers = [
            start(
                ["worker", "--processes", str(args.processes), "--threads", str(args.threads)], env
            )
        ]
        procs += workers
        time.sleep(2)  # let worker processes boot before the clock starts
    peak = rss_mb_self = 0.0
    with session_scope(rt.engine) as session:
        execution_id = start_execution(session, campaign_id, secret_key=rt.settings.secret_key).id
    probe = ProgressProbe(rt, execution_id) if args.probe_progress else None
    wall_start = time.monotonic()
    try:
        while True:
            peak = max([peak, *(rss_mb(w) for w in workers)])
            rss_mb_self = max(rss_mb_self, psutil.Process().memory_info().rss / 1e6)
            try:
                execution = wait_until_finished(rt, execution_id, timeout=0.5)
                break
            except TimeoutError:
                continue
    finally:
        probed = probe.stop() if probe else {}
        if stack:
            stack.stop()
        stop_process_groups(procs)
    wall = time.monotonic() - wall_start
    assert execution.started_at and execution.finished_at
    elapsed = (execution.finished_at - execution.started_at).total_seconds()
    seen = timeline(rt, execution_id)
    rt.close()
    return {
        "channel": args.channel,
        "database": db_url.split(":", 1)[0],
        "broker": args.broker_url.split(":", 1)[0],
        "mode": "embedded" if embedded else f"{args.processes} processes x {args.threads} threads",
        "contacts": args.contacts,
        "deliveries": execution.processed,
        "successful": execution.successful,
        "status": execution.status,
        "elapsed_s": round(elapsed, 2),
        "wall_s_including_planning": round(wall, 2),
        "deliveries_per_s": round(execution.processed / elapsed, 1) if elapsed else None,
        "peak_worker_rss_mb": round(peak if workers else rss_mb_self, 1),
        "chunk_size": args.chunk_size,
        "rate_limit_per_s": args.rate or None,
        **seen,
        **probed,
    }


if __name__ == "__main__":
    print(json.dumps(run(parse())))
