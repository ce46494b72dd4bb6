"""Audience benchmark: ``totalCount`` and recipient freezing over the contacts of contacts_query.

Uses the database :mod:`bench.contacts_query` loads (1,000,000 contacts by default; run that
script first, or pass ``--load`` here). For each ``targetAudience`` it times
:func:`engine.audience.targeting.count_audience` (what a campaign's ``totalCount`` costs) and
:func:`engine.audience.recipients.freeze_recipients` (the ``INSERT … SELECT`` the planner runs
once per execution; rolled back here). Prints median milliseconds.

Examples:
    python bench/contacts_query.py --runs 1     # loads 1,000,000 contacts once
    python bench/audience.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contacts_query import (
    DEFAULT_URL,
    count_members,
    load,
    scope,
    vacuum_analyze,
)
from databases import ensure_database

from engine.audience.audience_spec import parse_audience
from engine.audience.recipients import freeze_recipients
from engine.audience.segments import create_segment
from engine.audience.targeting import count_audience
from engine.db import make_engine, migrate, session_scope
from engine.models import Campaign, Execution, Segment
from engine.models.base import utcnow


def parse() -> argparse.Namespace:
    """Read the command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--load", action="store_true", help="load the contacts if they are missing")
    p.add_argument("--runs", type=int, default=5)
    return p.parse_args()


def targets(engine: Engine, organization_id: str, list_id: int) -> list[tuple[str, Any]]:
    """The audiences timed: everyone, a list, a tag, a filter, a segment, a combination."""
    with session_scope(engine) as session:
        gold = session.exec(
            select(Segment).where(
                col(Segment.organization_id) == organization_id, col(Segment.name) == "bench gold"
            )
        ).first() or create_segment(
            session,
            organization_id,
            "bench gold",
            {"relation": "and", "items": [{"field_name": "plan", "op": "==", "value": "gold"}]},
        )
        segment_id = gold.id
    return [
        ("everyone", None),
        ("one list", {"lists": [list_id]}),
        ("tag vip", {"tags": ["vip"]}),
        ("filter city in 2 values", {"filters": {"city": ["Berlin", "Paris"]}}),
        ("segment plan == gold", {"segments": [segment_id]}),
        (
            "list + tag + filter",
            {"lists": [list_id], "tags": ["customer"], "filters": {"plan": "pro"}},
        ),
    ]


def time_count(engine: Engine, organization_id: str, target: Any, runs: int) -> tuple[float, int]:
    """Median ms of ``count_audience`` and the count."""
    spec = parse_audience(target)
    samples, count = [], 0
    for _ in range(runs + 1):
        with Session(engine) as session:
            started = time.perf_counter()
            count = count_audience(session, organization_id, spec, utcnow())
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples[1:]), count


def time_freeze(engine: Engine, organization_id: str, target: Any) -> float:
    """Ms of one ``freeze_recipients`` (inside a transaction that is rolled back)."""
    with Session(engine) as session:
        details = {"targetAudience": target} if target else {}
        campaign = Campaign(
            organization_id=organization_id, name="bench", channel="null", details=details
        )
        session.add(campaign)
        session.flush()
        execution = Execution(organization_id=organization_id, campaign_id=campaign.id)
        session.add(execution)
        session.flush()
        started = time.perf_counter()
        freeze_recipients(session, execution.id, campaign, utcnow())
        elapsed = (time.perf_counter() - started) * 1000
        session.rollback()
    return elapsed


def main() -> None:
    """Time every audience and print the table."""
    args = parse()
    ensure_database(args.database_url)
    migrate(args.database_url)
    engine = make_engine(args.database_url)
    user = scope(engine)
    have = count_members(engine, user)
    if have != args.contacts:
        if not args.load:
            sys.exit(f"the bench list holds {have:,} contacts; run contacts_query.py or --load")
        load(engine, user, args.contacts)
        vacuum_analyze(engine)
    assert isinstance(user.list_id, int)
    print(f"{have:,} contacts; median of {args.runs} runs after a warm-up\n")
    print(f"| {'targetAudience':<26} | {'people':>9} | {'totalCount ms':>13} | {'freeze ms':>9} |")
    print(f"|{'-' * 28}|{'-' * 10}:|{'-' * 14}:|{'-' * 10}:|")
    for label, target in targets(engine, user.organization_id, user.list_id):
        count_ms, people = time_count(engine, user.organization_id, target, args.runs)
        freeze_ms = time_freeze(engine, user.organization_id, target)
        print(f"| {label:<26} | {people:>9,} | {count_ms:>13.0f} | {freeze_ms:>9.0f} |", flush=True)
    engine.dispose()


if __name__ == "__main__":
    main()
