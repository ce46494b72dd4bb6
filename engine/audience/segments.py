"""Saved segments: a named contact lists API condition that campaign audiences refer to by
id."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.audience.audience_spec import AudienceSpec
from engine.audience.conditions import validate_condition
from engine.audience.targeting import count_audience
from engine.db import get_owned
from engine.errors import Conflict, ValidationFailed
from engine.models import Segment
from engine.models.base import utcnow


def _check(session: Session, organization_id: str, name: str, condition: Any) -> None:
    if not 0 < len(name.strip()) <= 200:
        raise ValidationFailed("a segment name has 1 to 200 characters", code="INVALID_NAME")
    if not isinstance(condition, dict) or not condition.get("items"):
        raise ValidationFailed(
            "a segment needs a condition with at least one item", code="INVALID_CONDITION"
        )
    validate_condition(session, organization_id, condition)


def _name_taken(session: Session, organization_id: str, name: str, other_than: str = "") -> None:
    taken = session.exec(
        select(Segment.id).where(
            col(Segment.organization_id) == organization_id,
            col(Segment.name) == name,
            col(Segment.id) != other_than,
        )
    ).first()
    if taken is not None:
        raise Conflict(f"a segment named {name!r} exists", code="SEGMENT_EXISTS")


def create_segment(
    session: Session, organization_id: str, name: str, condition: Any, description: str = ""
) -> Segment:
    """Save a condition under a name.

    Raises:
        ValidationFailed: a bad name, or a condition that does not
            compile (``INVALID_CONDITION``: unknown field or operator, more than 10 items …).
        Conflict: the name is taken (``SEGMENT_EXISTS``).
    """
    name = name.strip()
    _check(session, organization_id, name, condition)
    _name_taken(session, organization_id, name)
    segment = Segment(
        organization_id=organization_id, name=name, description=description, condition=condition
    )
    session.add(segment)
    session.flush()
    return segment


def get_segment(session: Session, organization_id: str, segment_id: str) -> Segment:
    """One segment of the organization.

    Raises:
        NotFound: ``SEGMENT_NOT_FOUND``.
    """
    return get_owned(
        session, Segment, segment_id, organization_id, what="segment", code="SEGMENT_NOT_FOUND"
    )


def update_segment(
    session: Session, organization_id: str, segment_id: str, changes: dict[str, Any]
) -> Segment:
    """Change a segment's name, description or condition.

    Raises:
        NotFound: no such segment. ValidationFailed: as for :func:`create_segment`.
    """
    segment = get_segment(session, organization_id, segment_id)
    name = str(changes.get("name", segment.name)).strip()
    condition = changes.get("condition", segment.condition)
    _check(session, organization_id, name, condition)
    _name_taken(session, organization_id, name, other_than=segment.id)
    segment.name, segment.condition = name, condition
    if "description" in changes:
        segment.description = changes["description"]
    segment.updated_at = utcnow()
    session.flush()
    return segment


def delete_segment(session: Session, organization_id: str, segment_id: str) -> None:
    """Delete a segment (campaigns naming it then fail validation with ``SEGMENT_NOT_FOUND``).

    Raises:
        NotFound: no such segment.
    """
    session.delete(get_segment(session, organization_id, segment_id))
    session.flush()


def list_segments(
    session: Session, organization_id: str, *, offset: int = 0, limit: int = 20
) -> tuple[list[Segment], int]:
    """A page of the organization's segments by name, and how many there are."""
    where = col(Segment.organization_id) == organization_id
    total = session.scalar(sa.select(sa.func.count()).select_from(Segment).where(where))
    rows = session.exec(
        select(Segment).where(where).order_by(col(Segment.name)).offset(offset).limit(limit)
    )
    return list(rows), int(total or 0)


def segment_size(session: Session, organization_id: str, segment: Segment) -> int:
    """How many people the segment targets now (subscribed, not suppressed, deduplicated)."""
    spec = AudienceSpec(segments=(segment.id,))
    return count_audience(session, organization_id, spec, utcnow())
