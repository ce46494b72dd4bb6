"""The naive design: one message and one transaction per contact, the baseline of the fan-out.

Does the engine's work for each delivery (render the message for the contact, hand it to the
channel, write the delivery row, count it on the execution) the way a first implementation
would: each contact in its own session, a Delivery added with the ORM, then
``UPDATE executions SET processed = processed + 1, successful = successful + 1`` and a commit,
from ``--threads`` threads of one process. What bench/fanout.py measures (chunks of contacts
recorded in batches, one transaction per batch) is compared with this: the cost here is the
per-contact transaction, its round trips and its commit, and every thread updating the same
execution row.

Only the sending is timed: seeding, migrations and the final checks are not. Contacts are read
once before the clock starts (the fan-out reads them per chunk). Prints one JSON object:
design, contacts, deliveries, elapsed_s, deliveries_per_s, threads, database.

Examples:
    python bench/naive.py --contacts 5000                     # a temporary SQLite file
    python bench/naive.py --contacts 5000 --threads 16 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from databases import ensure_database
from sqlmodel import col

from engine.audience.contacts import add_contacts, demo_contacts
from engine.campaigns.campaign import TouchpointSpec, create_campaign, get_or_create_organization
from engine.channels import OutgoingMessage, SyncChannel, idempotency_key
from engine.config import Settings
from engine.db import migrate, session_scope
from engine.execution.lifecycle import CAMPAIGN_STATUS_OF
from engine.execution.runs import start_execution
from engine.logging import configure_logging
from engine.models import (
    Campaign,
    Contact,
    Delivery,
    DeliveryStatus,
    Execution,
    ExecutionStatus,
    Touchpoint,
)
from engine.models.base import utcnow
from engine.runtime import Runtime
from engine.templating import contact_context, render

MESSAGE = {"text": "Hi {{ first_name }}"}


def parse() -> argparse.Namespace:
    """Read the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--contacts", type=int, default=5000)
    p.add_argument("--threads", type=int, default=16, help="sending threads (one process)")
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="default: $DATABASE_URL, else a temporary SQLite file",
    )
    return p.parse_args()


def seed(rt: Runtime, args: argparse.Namespace) -> str:
    """Create a fresh organization with the contacts and a one-message ``null`` campaign
    (as bench/fanout.py does)."""
    with session_scope(rt.engine) as session:
        org = get_or_create_organization(session, f"bench-{time.time_ns()}")
        add_contacts(session, org.id, demo_contacts(args.contacts))
        campaign = create_campaign(
            session, org.id, "bench", "null", [TouchpointSpec(name="only", message=MESSAGE)]
        )
        return campaign.id


@dataclass(frozen=True, slots=True)
class Job:
    """What sending to one contact needs: the execution, its touchpoint and the channel."""

    rt: Runtime
    channel: SyncChannel
    execution_id: str
    campaign_id: str
    touchpoint_id: str
    message: Any


def prepare(rt: Runtime, campaign_id: str) -> tuple[Job, list[dict[str, Any]]]:
    """Start an execution of the campaign (marked running: no scheduler takes it) and read its
    touchpoint and the organization's contacts."""
    with session_scope(rt.engine) as session:
        execution = start_execution(session, campaign_id, secret_key=rt.settings.secret_key)
        execution.status = ExecutionStatus.running
        execution.started_at = utcnow()
        campaign = session.get_one(Campaign, campaign_id)
        campaign.status = CAMPAIGN_STATUS_OF[ExecutionStatus.running]
        touchpoint = session.scalars(
            sa.select(Touchpoint).where(col(Touchpoint.campaign_id) == campaign_id)
        ).one()
        rows = session.execute(
            sa.select(
                col(Contact.id),
                col(Contact.email),
                col(Contact.phone),
                col(Contact.name),
                col(Contact.fields),
            ).where(col(Contact.organization_id) == execution.organization_id)
        )
        contacts = [
            {"id": i, "email": e, "phone": p, "name": n, "fields": f} for i, e, p, n, f in rows
        ]
        execution.total = len(contacts)
        channel = rt.channels.get("null")
        assert isinstance(channel, SyncChannel)
        job = Job(rt, channel, execution.id, campaign_id, touchpoint.id, touchpoint.message)
    return job, contacts


def send_one(job: Job, contact: dict[str, Any]) -> None:
    """Send to one contact the naive way: render, send, add its delivery, count it, commit."""
    with session_scope(job.rt.engine) as session:
        recipient = {k: contact[k] for k in ("id", "email", "phone", "name")}
        body = render(job.message, contact_context(contact["fields"], recipient))
        provider_id = job.channel.send(
            OutgoingMessage(
                execution_id=job.execution_id,
                campaign_id=job.campaign_id,
                touchpoint_id=job.touchpoint_id,
                contact_id=contact["id"],
                idempotency_key=idempotency_key(job.execution_id, job.touchpoint_id, contact["id"]),
                recipient=recipient,
                body=body,
            )
        )
        session.add(
            Delivery(
                execution_id=job.execution_id,
                touchpoint_id=job.touchpoint_id,
                contact_id=contact["id"],
                status=DeliveryStatus.sent,
                provider_message_id=provider_id,
            )
        )
        session.flush()
        session.execute(
            sa.update(Execution)
            .where(col(Execution.id) == job.execution_id)
            .values(
                processed=col(Execution.processed) + 1, successful=col(Execution.successful) + 1
            )
        )


def finish(rt: Runtime, execution_id: str) -> tuple[int, Execution]:
    """Mark the execution completed; return how many deliveries it has and the row."""
    with session_scope(rt.engine) as session:
        execution = session.get_one(Execution, execution_id)
        execution.status = ExecutionStatus.completed
        execution.finished_at = utcnow()
        campaign = session.get_one(Campaign, execution.campaign_id)
        campaign.status = CAMPAIGN_STATUS_OF[ExecutionStatus.completed]
        deliveries = session.scalar(
            sa.select(sa.func.count())
            .select_from(Delivery)
            .where(col(Delivery.execution_id) == execution_id)
        )
        return int(deliveries or 0), execution


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    db_url = (
        args.database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='naive-')) / 'bench.db'}"
    )
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(48),
            "LOG_LEVEL": "WARNING",
        }
    )
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    ensure_database(db_url)
    migrate(db_url)
    rt = Runtime.from_settings(settings)
    try:
        campaign_id = seed(rt, args)
        job, contacts = prepare(rt, campaign_id)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            for _ in pool.map(lambda c: send_one(job, c), contacts):
                pass  # re-raises the first failure
        elapsed = time.perf_counter() - start
        deliveries, execution = finish(rt, job.execution_id)
    finally:
        rt.close()
    assert deliveries == args.contacts, f"{deliveries} deliveries for {args.contacts} contacts"
    assert execution.processed == execution.successful == args.contacts, execution
    return {
        "design": "naive",
        "contacts": args.contacts,
        "deliveries": deliveries,
        "elapsed_s": round(elapsed, 2),
        "deliveries_per_s": round(deliveries / elapsed, 1) if elapsed else None,
        "threads": args.threads,
        "database": db_url.split(":", 1)[0],
    }


if __name__ == "__main__":
    print(json.dumps(run(parse())))
