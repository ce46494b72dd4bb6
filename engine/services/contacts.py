"""Contacts: bulk insertion and generated demo audiences."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.db import table_of
from engine.models import Contact
from engine.models.base import utcnow


def add_contacts(
    session: Session, organization_id: str, rows: Iterable[dict[str, Any]], batch: int = 5000
) -> int:
    """Insert contacts in batches (``email``, ``phone``, ``name``, ``fields``); return how many."""
    table = table_of(Contact)
    now = utcnow()
    count = 0
    iterator = iter(rows)
    while page := list(islice(iterator, batch)):
        session.execute(
            sa.insert(table),
            [
                {
                    "organization_id": organization_id,
                    "email": row.get("email"),
                    "phone": row.get("phone"),
                    "name": row.get("name"),
                    "fields": row.get("fields", {}),
                    "created_at": now,
                }
                for row in page
            ],
        )
        count += len(page)
    session.flush()
    return count


def count_contacts(session: Session, organization_id: str) -> int:
    """Return how many contacts the organization has."""
    return int(
        session.scalar(
            sa.select(sa.func.count()).where(col(Contact.organization_id) == organization_id)
        )
        or 0
    )


def demo_contacts(n: int, start: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``n`` generated contacts (``user<i>@example.com``) for demos and benchmarks."""
    for i in range(start, start + n):
        yield {
            "email": f"user{i}@example.com",
            "phone": f"+1555{i:07d}",
            "name": f"User {i}",
            "fields": {"first_name": f"User{i}", "plan": "pro" if i % 3 == 0 else "free"},
        }
