"""Scheduler lag: how long from an execution becoming due to its first delivery being recorded.

Starts one ``campaign scheduler`` and one ``campaign worker`` (processes x threads) against
PostgreSQL and a Redis broker, seeds an organization with a few contacts and one small
``null`` campaign per run, then starts ``--runs`` executions, each due now, ``--gap-s`` apart,
so they land at every phase of the scheduler's tick. An execution's lag is its first
delivery's ``created_at`` minus its ``scheduled_at`` (when it became due): the scheduler's
claim, the worker's planning, the next tick's dispatch and the first batch's send and commit.
The scheduler runs with the shipped ``SCHEDULER_INTERVAL_S`` (any value in the environment is
ignored), reported with the figures.

One campaign per run: a campaign has at most one active execution, and a run is usually still
active when the next one starts.

Prints one JSON object: runs, lag_p50_s, lag_p99_s, lag_max_s, scheduler_interval_s, mode.

Example:
    python bench/scheduler_lag.py --runs 40 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/bench \\
        --broker-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from typing import Any

import sqlalchemy as sa
from databases import ensure_database
from fanout import start
from sqlmodel import col

from engine.audience.contacts import add_contacts, demo_contacts
from engine.campaigns.campaign import TouchpointSpec, create_campaign, get_or_create_organization
from engine.config import Settings
from engine.db import migrate, session_scope
from engine.execution.runs import start_execution
from engine.logging import configure_logging
from engine.models import Delivery, Execution, ExecutionStatus
from engine.models.base import as_utc
from engine.runtime import Runtime
from engine.testing import stop_process_groups, wait_until_finished


def parse() -> argparse.Namespace:
    """Read the command line; PostgreSQL and a ``redis://`` broker are required."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--gap-s", type=float, default=0.25, help="between two executions' starts")
    p.add_argument("--contacts", type=int, default=50)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    p.add_argument("--broker-url", default=os.environ.get("BROKER_URL", ""))
    p.add_argument("--processes", type=int, default=2, help="worker processes")
    p.add_argument("--threads", type=int, default=8, help="threads per worker process")
    args = p.parse_args()
    if not args.database_url.startswith("postgresql"):
        p.error("--database-url (or DATABASE_URL) must be a PostgreSQL URL")
    if not args.broker_url.startswith("redis://"):
        p.error("--broker-url (or BROKER_URL) must be a redis:// URL")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def seed(rt: Runtime, args: argparse.Namespace) -> list[str]:
    """Create a fresh organization with the contacts and one one-message ``null`` campaign per
    run; return the campaigns' ids."""
    with session_scope(rt.engine) as session:
        org = get_or_create_organization(session, f"bench-{time.time_ns()}")
        add_contacts(session, org.id, demo_contacts(args.contacts))
        return [
            create_campaign(
                session,
                org.id,
                f"lag-{n}",
                "null",
                [TouchpointSpec(name="only", message={"text": "Hi {{ first_name }}"})],
            ).id
            for n in range(args.runs + 1)  # the first one warms the processes up
        ]


def lags(rt: Runtime, execution_ids: list[str]) -> list[float]:
    """Seconds from each execution's ``scheduled_at`` (due) to its first delivery.

    Raises:
        AssertionError: an execution did not complete, or recorded no delivery.
    """
    first = sa.func.min(col(Delivery.created_at))
    with session_scope(rt.engine) as session:
        rows = session.execute(
            sa.select(col(Execution.id), col(Execution.status), col(Execution.scheduled_at), first)
            .outerjoin(Delivery, col(Delivery.execution_id) == col(Execution.id))
            .where(col(Execution.id).in_(execution_ids))
            .group_by(col(Execution.id), col(Execution.status), col(Execution.scheduled_at))
        ).all()
    assert len(rows) == len(execution_ids), f"{len(rows)} of {len(execution_ids)} executions"
    out = []
    for execution_id, status, due, delivered in rows:
        assert status == ExecutionStatus.completed, f"{execution_id} ended {status}"
        assert delivered is not None, f"{execution_id} recorded no delivery"
        out.append((as_utc(delivered) - as_utc(due)).total_seconds())
    return out


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of sorted values, nearest rank (the largest for small sets)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "SCHEDULER_INTERVAL_S"},
        "DATABASE_URL": args.database_url,
        "BROKER_URL": args.broker_url,
        # The processes refuse the public development key; a fresh one per run.
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(48),
        "CHUNK_SIZE": "1000",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMITS": "{}",
    }
    os.environ.pop("SCHEDULER_INTERVAL_S", None)  # the shipped default, here and in the processes
    os.environ.update(env)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    ensure_database(args.database_url)
    migrate(args.database_url)
    rt = Runtime.from_settings(settings)
    campaign_ids = seed(rt, args)
    procs = [
        start(["scheduler"], env),
        start(["worker", "--processes", str(args.processes), "--threads", str(args.threads)], env),
    ]
    execution_ids: list[str] = []
    try:
        time.sleep(3)  # let the processes boot before the first execution is due
        # One run, not counted, until its end: every worker process has imported the engine
        # and connected to its databases; the figure is the scheduler's lag, not a cold start.
        with session_scope(rt.engine) as session:
            warm = start_execution(session, campaign_ids[0], secret_key=rt.settings.secret_key)
        wait_until_finished(rt, warm.id, timeout=120)
        for n, campaign_id in enumerate(campaign_ids[1:]):
            if n:
                time.sleep(args.gap_s)
            with session_scope(rt.engine) as session:
                execution = start_execution(session, campaign_id, secret_key=rt.settings.secret_key)
                execution_ids.append(execution.id)
        for execution_id in execution_ids:
            wait_until_finished(rt, execution_id, timeout=120)
    finally:
        stop_process_groups(procs)
    ordered = sorted(lags(rt, execution_ids))
    rt.close()
    return {
        "runs": len(ordered),
        "lag_p50_s": round(statistics.median(ordered), 3),
        "lag_p99_s": round(percentile(ordered, 0.99), 3),
        "lag_max_s": round(ordered[-1], 3),
        "scheduler_interval_s": settings.scheduler_interval_s,
        "mode": f"{args.processes} processes x {args.threads} threads",
    }


if __name__ == "__main__":
    print(json.dumps(run(parse())))
