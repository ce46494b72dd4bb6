"""Who a campaign targets: its ``targetAudience`` (campaigns API) resolved to one SQL condition.

``targetAudience`` is ``{"segments": [...], "lists": [...], "tags": [...], "filters": {...},
"condition": {...}}``; every part is optional and the parts combine with AND:

* ``segments``: ids of saved segments; a contact in any of them.
* ``lists``: ids of contact lists; a contact of any of them.
* ``tags``: tag names; a contact with any of them.
* ``filters``: ``{field: value}``, each must hold. A list value means "one of"
  (``"location": ["US", "CA"]``), ``[low, high]`` under a key ending in ``Range`` bounds the
  field without the suffix (``"ageRange": [18, 45]`` → ``18 <= age <= 45``), ``true`` means the
  field is set, ``false`` that it is not, anything else equality.
* ``condition``: a contact lists API condition (``relation`` and up to 10 ``items``).

Nothing given means every contact of the organization. Always excluded: unsubscribed contacts,
contacts whose email or phone is on the suppression list, and contacts added after planning.
A person in several lists (the same email) is targeted once. ``totalCount`` is computed from
the same condition, never stored.

A draft may name a segment, list or field that does not exist (yet): that part matches nobody,
and it is reported by :func:`audience_problems` (validate) and refused when the execution starts.

This module builds the SQL and counts the audience. Checking and parsing the document is
:mod:`engine.audience.audience_spec`; freezing an execution's recipients from it is
:mod:`engine.audience.recipients`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.audience.audience_spec import (
    INVALID_AUDIENCE,
    AudienceSpec,
    campaign_audience,
    filter_items,
)
from engine.audience.conditions import compile_condition
from engine.errors import EngineError
from engine.models import (
    Campaign,
    ChannelBlock,
    Contact,
    ContactList,
    ContactTag,
    Segment,
    Suppression,
    Tag,
)
from engine.models.base import utcnow


@dataclass
class CompiledAudience:
    """The audience's SQL condition, and why parts of it match nobody (unknown names …)."""

    where: sa.ColumnElement[bool]
    problems: list[dict[str, str]]


def _filter_clause(
    session: Session, organization_id: str, name: str, value: Any
) -> sa.ColumnElement[bool]:
    if value is False:
        exists = {"relation": "and", "items": [{"field_name": name, "op": "exist"}]}
        return sa.not_(compile_condition(session, organization_id, exists))
    groups = filter_items(name, value)
    parts = [
        compile_condition(session, organization_id, {"relation": rel, "items": items})
        for rel, items in groups
    ]
    # A list longer than one condition allows is several "or" groups, any of which may match.
    return sa.or_(*parts) if groups[0][0] == "or" else sa.and_(*parts)


def _known(session: Session, model: Any, organization_id: str, ids: Sequence[Any]) -> set[Any]:
    if not ids:
        return set()
    rows = session.scalars(
        sa.select(col(model.id)).where(
            col(model.organization_id) == organization_id, col(model.id).in_(list(ids))
        )
    )
    return set(rows)


def _segments_clause(
    session: Session, organization_id: str, ids: Sequence[str], problems: list[dict[str, str]]
) -> sa.ColumnElement[bool]:
    segments = {
        s.id: s
        for s in session.scalars(
            sa.select(Segment).where(
                col(Segment.organization_id) == organization_id, col(Segment.id).in_(list(ids))
            )
        )
    }
    clauses = []
    for segment_id in ids:
        segment = segments.get(segment_id)
        if segment is None:
            problems.append(
                {"code": "SEGMENT_NOT_FOUND", "message": f"segment {segment_id!r} does not exist"}
            )
            continue
        clauses.append(
            _attempt(problems, compile_condition, session, organization_id, segment.condition)
        )
    return sa.or_(*clauses) if clauses else sa.false()


def _attempt(problems: list[dict[str, str]], fn: Any, *args: Any) -> sa.ColumnElement[bool]:
    """``fn(*args)``, or "matches nobody" with the reason recorded when it can't compile."""
    try:
        result: sa.ColumnElement[bool] = fn(*args)
    except EngineError as exc:
        problems.append({"code": exc.code, "message": exc.message})
        return sa.false()
    return result


def _lists_clause(
    session: Session, organization_id: str, ids: Sequence[int], problems: list[dict[str, str]]
) -> sa.ColumnElement[bool]:
    known = _known(session, ContactList, organization_id, ids)
    problems.extend(
        {"code": "LIST_NOT_FOUND", "message": f"list {list_id} does not exist"}
        for list_id in ids
        if list_id not in known
    )
    return col(Contact.list_id).in_(sorted(known)) if known else sa.false()


def _not_in_private_list(organization_id: str) -> sa.ColumnElement[bool]:
    """Contacts of private lists join an audience only when it names their list."""
    private = sa.select(col(ContactList.id)).where(
        col(ContactList.organization_id) == organization_id, col(ContactList.private).is_(True)
    )
    return sa.or_(col(Contact.list_id).is_(None), col(Contact.list_id).not_in(private))


def _tags_clause(organization_id: str, names: Sequence[str]) -> sa.ColumnElement[bool]:
    tagged = (
        sa.select(sa.literal(1))
        .select_from(ContactTag)
        .join(Tag, col(Tag.id) == col(ContactTag.tag_id))
        .where(
            col(ContactTag.contact_id) == col(Contact.id),
            col(Tag.organization_id) == organization_id,
            col(Tag.name).in_(list(names)),
        )
    )
    return tagged.exists()


def not_suppressed(organization_id: str) -> sa.ColumnElement[bool]:
    """Neither the contact's email nor its phone is on the suppression list (two index probes)."""

    def listed(column: Any) -> sa.ColumnElement[bool]:
        return (
            sa.select(sa.literal(1))
            .where(
                col(Suppression.organization_id) == organization_id,
                col(Suppression.address) == column,
            )
            .exists()
        )

    return sa.and_(~listed(col(Contact.email)), ~listed(col(Contact.phone)))


def base_filter(organization_id: str, as_of: datetime) -> sa.ColumnElement[bool]:
    """Contacts any campaign of the organization may target at ``as_of``."""
    return sa.and_(
        col(Contact.organization_id) == organization_id,
        col(Contact.unsubscribed_at).is_(None),
        col(Contact.created_at) <= as_of,
        not_suppressed(organization_id),
    )


def _not_blocked(channel: str) -> sa.ColumnElement[bool]:
    blocked = (
        sa.select(sa.literal(1))
        .where(
            col(ChannelBlock.contact_id) == col(Contact.id), col(ChannelBlock.channel) == channel
        )
        .exists()
    )
    return ~blocked


def compile_audience(
    session: Session,
    organization_id: str,
    spec: AudienceSpec,
    as_of: datetime,
    channel: str | None = None,
) -> CompiledAudience:
    """The SQL condition selecting ``spec``'s contacts, and the parts that match nobody.

    With ``channel``, contacts that channel reported unreachable (blocked the bot …) are left out.
    """
    problems: list[dict[str, str]] = []
    clauses = [base_filter(organization_id, as_of)]
    if channel:
        clauses.append(_not_blocked(channel))
    if spec.invalid:
        problems.append({"code": INVALID_AUDIENCE, "message": spec.invalid})
        clauses.append(sa.false())
    if spec.segments:
        clauses.append(_segments_clause(session, organization_id, spec.segments, problems))
    if spec.lists:
        clauses.append(_lists_clause(session, organization_id, spec.lists, problems))
    else:
        clauses.append(_not_in_private_list(organization_id))
    if spec.tags:
        clauses.append(_tags_clause(organization_id, spec.tags))
    for name, value in spec.filters.items():
        clauses.append(_attempt(problems, _filter_clause, session, organization_id, name, value))
    if spec.condition:
        clauses.append(
            _attempt(problems, compile_condition, session, organization_id, spec.condition)
        )
    return CompiledAudience(sa.and_(*clauses), problems)


def _person(dialect: str) -> sa.ColumnElement[Any]:
    """The key one person has across lists: the email, else the phone, else the contact.

    Byte-wise collation on PostgreSQL: grouping 1,000,000 keys is then much cheaper.
    """
    key = sa.func.coalesce(
        col(Contact.email), col(Contact.phone), sa.cast(col(Contact.id), sa.String)
    )
    return sa.collate(key, "C") if dialect == "postgresql" else key


def _may_repeat(session: Session, organization_id: str, spec: AudienceSpec) -> bool:
    """Whether one person may appear as several contacts of the audience.

    An email is unique within a list, so an audience drawn from one list (or only from
    contacts in no list) needs no deduplication — the costly part of counting a large one.
    """
    if spec.lists:
        return len(_known(session, ContactList, organization_id, spec.lists)) > 1
    lists = session.scalar(
        sa.select(sa.func.count())
        .select_from(ContactList)
        .where(col(ContactList.organization_id) == organization_id)
    )
    unlisted = session.scalar(
        sa.select(
            sa.select(sa.literal(1))
            .where(col(Contact.list_id).is_(None), col(Contact.organization_id) == organization_id)
            .exists()
        )
    )
    return int(lists or 0) + int(bool(unlisted)) > 1


def audience_ids(
    session: Session,
    organization_id: str,
    spec: AudienceSpec,
    as_of: datetime,
    channel: str | None,
) -> sa.Select[Any]:
    """One contact id per person in the audience (the lowest, when a person repeats)."""
    where = compile_audience(session, organization_id, spec, as_of, channel).where
    if not _may_repeat(session, organization_id, spec):
        return sa.select(col(Contact.id).label("contact_id")).where(where)
    dialect = session.get_bind().dialect.name
    return (
        sa.select(sa.func.min(col(Contact.id)).label("contact_id"))
        .where(where)
        .group_by(_person(dialect))
    )


def count_audience(
    session: Session,
    organization_id: str,
    spec: AudienceSpec,
    as_of: datetime,
    channel: str | None = None,
) -> int:
    """How many people ``spec`` targets at ``as_of`` on ``channel`` (``totalCount``; before
    sampling)."""
    people = audience_ids(session, organization_id, spec, as_of, channel).subquery()
    return int(session.scalar(sa.select(sa.func.count()).select_from(people)) or 0)


def campaign_audience_count(session: Session, campaign: Campaign) -> int:
    """The campaign's ``totalCount``: how many people its ``targetAudience`` targets now."""
    spec = campaign_audience(campaign)
    return count_audience(session, campaign.organization_id, spec, utcnow(), campaign.channel)


def campaign_audience_counts(
    session: Session, organization_id: str, campaigns: Sequence[Campaign]
) -> dict[str, int]:
    """``totalCount`` of several campaigns, counting each distinct ``targetAudience`` once."""
    by_spec: dict[str, int] = {}
    result: dict[str, int] = {}
    now = utcnow()
    for campaign in campaigns:
        target = (campaign.details or {}).get("targetAudience") or {}
        key = json.dumps([target, campaign.channel], sort_keys=True, default=str)
        if key not in by_spec:
            spec = campaign_audience(campaign)
            by_spec[key] = count_audience(session, organization_id, spec, now, campaign.channel)
        result[campaign.id] = by_spec[key]
    return result


def audience_problems(
    session: Session, organization_id: str, spec: AudienceSpec, as_of: datetime
) -> list[dict[str, str]]:
    """Why parts of ``spec`` match nobody: ``[{"code", "message"}]`` (empty when all is well)."""
    return compile_audience(session, organization_id, spec, as_of).problems
