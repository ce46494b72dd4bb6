"""Who an execution targets: the organization's subscribed contacts, sampled by percentage.

Lists, tags and conditions arrive with the contacts issue; they narrow the same query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.models import Contact


def in_sample(execution_id: str, contact_id: int, percentage: int) -> bool:
    """Return whether a contact falls in an execution's ``targetPercentage`` sample.

    Deterministic: the same contact gets the same answer for the same execution, in the
    planner and in every worker.
    """
    if percentage >= 100:
        return True
    digest = hashlib.blake2b(f"{execution_id}:{contact_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100 < percentage


def audience_filter(organization_id: str, as_of: datetime) -> sa.ColumnElement[bool]:
    """Return the SQL condition for "subscribed contacts of the organization, as of planning"."""
    return sa.and_(
        col(Contact.organization_id) == organization_id,
        col(Contact.unsubscribed_at).is_(None),
        col(Contact.created_at) <= as_of,
    )


def count_audience(session: Session, organization_id: str, as_of: datetime) -> int:
    """Return how many contacts the audience has (before sampling)."""
    query = sa.select(sa.func.count()).where(audience_filter(organization_id, as_of))
    return int(session.scalar(query) or 0)


def iter_audience_ids(
    session: Session, organization_id: str, as_of: datetime, execution_id: str, percentage: int
) -> Iterator[int]:
    """Yield the targeted contact ids in ascending order, streaming (no full list in memory)."""
    query = (
        sa.select(col(Contact.id))
        .where(audience_filter(organization_id, as_of))
        .order_by(col(Contact.id))
        .execution_options(yield_per=10_000)
    )
    for (contact_id,) in session.execute(query):
        if in_sample(execution_id, contact_id, percentage):
            yield contact_id
