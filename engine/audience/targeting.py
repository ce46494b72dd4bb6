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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.audience.conditions import MAX_CONDITION_ITEMS, compile_condition
from engine.db import table_of
from engine.errors import EngineError, ValidationFailed
from engine.models import (
    Campaign,
    ChannelBlock,
    Contact,
    ContactList,
    ContactTag,
    Execution,
    ExecutionRecipient,
    Segment,
    Suppression,
    Tag,
)
from engine.models.base import utcnow

#: Error code of a malformed ``targetAudience``.
INVALID_AUDIENCE = "INVALID_AUDIENCE"
#: The keys ``targetAudience`` may hold (``totalCount`` is computed and ignored on input).
AUDIENCE_KEYS = frozenset({"segments", "lists", "tags", "filters", "condition", "totalCount"})
#: Most entries of each ``targetAudience`` part.
MAX_PARTS = 100
#: The tag of an organization's test contacts: a test-mode execution sends only to them.
TEST_TAG = "test-contact"


@dataclass(frozen=True)
class AudienceSpec:
    """A parsed ``targetAudience``."""

    segments: tuple[str, ...] = ()
    lists: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    filters: Mapping[str, Any] = field(default_factory=dict)
    condition: Mapping[str, Any] | None = None
    #: Why a stored ``targetAudience`` cannot be read (it then matches nobody).
    invalid: str | None = None


@dataclass
class CompiledAudience:
    """The audience's SQL condition, and why parts of it match nobody (unknown names …)."""

    where: sa.ColumnElement[bool]
    problems: list[dict[str, str]]


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(f"targetAudience: {message}", code=INVALID_AUDIENCE)


def _names(raw: Any, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_PARTS:
        raise _invalid(f"{key} must be a list of at most {MAX_PARTS} entries")
    if not all(isinstance(v, str) and 0 < len(v) <= 200 for v in raw):
        raise _invalid(f"{key} must hold names of 1 to 200 characters")
    return tuple(dict.fromkeys(raw))


def parse_audience(raw: Any) -> AudienceSpec:
    """Check the shape of a ``targetAudience`` and return it parsed.

    Raises:
        ValidationFailed: code ``INVALID_AUDIENCE`` naming the part that is malformed.
    """
    if raw is None:
        return AudienceSpec()
    if not isinstance(raw, dict):
        raise _invalid("must be an object")
    unknown = set(raw) - AUDIENCE_KEYS
    if unknown:
        raise _invalid(f"unknown key(s) {sorted(unknown)}; known: {sorted(AUDIENCE_KEYS)}")
    lists = raw.get("lists") or []
    if (
        not isinstance(lists, list)
        or len(lists) > MAX_PARTS
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in lists)
    ):
        raise _invalid(f"lists must be a list of at most {MAX_PARTS} list ids (integers)")
    filters = raw.get("filters") or {}
    if not isinstance(filters, dict) or len(filters) > MAX_PARTS:
        raise _invalid(f"filters must be an object of at most {MAX_PARTS} fields")
    for name, value in filters.items():
        _filter_items(name, value)  # raises on a malformed value
    condition = raw.get("condition")
    if condition is not None and not isinstance(condition, dict):
        raise _invalid("condition must be an object with relation and items")
    return AudienceSpec(
        segments=_names(raw.get("segments"), "segments"),
        lists=tuple(dict.fromkeys(lists)),
        tags=_names(raw.get("tags"), "tags"),
        filters=filters,
        condition=condition,
    )


def checked_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Campaign ``details`` ready to store: ``targetAudience`` checked, its ``totalCount`` dropped.

    Raises:
        ValidationFailed: ``INVALID_AUDIENCE`` for a malformed ``targetAudience``.
    """
    result = dict(details or {})
    target = result.get("targetAudience")
    if target is not None:
        parse_audience(target)
        result["targetAudience"] = {k: v for k, v in target.items() if k != "totalCount"}
    return result


def _text(value: Any) -> str:
    """A filter value as a condition value (conditions compare typed fields from text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise _invalid(f"filter values must be text, numbers or booleans (got {value!r})")


def _filter_items(name: str, value: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """One filter as contact lists API conditions, all of which must hold: ``[(relation,
    items)]``."""
    if not name or len(name) > 100:
        raise _invalid("filter names have 1 to 100 characters")
    if isinstance(value, bool):
        return [("and", [{"field_name": name, "op": "exist"}])] if value else []
    if name.endswith("Range") and len(name) > 5 and isinstance(value, list):
        if len(value) != 2 or all(v is None for v in value):
            raise _invalid(f"{name} must be [low, high] (either may be null)")
        target = name[: -len("Range")]
        bounds = [(">=", value[0]), ("<=", value[1])]
        items = [
            {"field_name": target, "op": op, "value": _text(v)} for op, v in bounds if v is not None
        ]
        return [("and", items)]
    if isinstance(value, list):
        if not value or len(value) > MAX_PARTS:
            raise _invalid(f"filter {name!r} must list 1 to {MAX_PARTS} values")
        items = [{"field_name": name, "op": "==", "value": _text(v)} for v in value]
        groups = range(0, len(items), MAX_CONDITION_ITEMS)
        return [("or", items[i : i + MAX_CONDITION_ITEMS]) for i in groups]
    return [("and", [{"field_name": name, "op": "==", "value": _text(value)}])]


def _filter_clause(
    session: Session, organization_id: str, name: str, value: Any
) -> sa.ColumnElement[bool]:
    if value is False:
        exists = {"relation": "and", "items": [{"field_name": name, "op": "exist"}]}
        return sa.not_(compile_condition(session, organization_id, exists))
    groups = _filter_items(name, value)
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


def campaign_audience(campaign: Campaign) -> AudienceSpec:
    """The campaign's stored ``targetAudience``, parsed.

    One stored before it was checked, and now unreadable, targets nobody and says why
    (validate reports it, execute refuses it): reading a campaign never fails on it.
    """
    try:
        return parse_audience((campaign.details or {}).get("targetAudience"))
    except ValidationFailed as exc:
        return AudienceSpec(invalid=exc.message)


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


def _audience_ids(
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
    people = _audience_ids(session, organization_id, spec, as_of, channel).subquery()
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


def freeze_recipients(
    session: Session,
    execution_id: str,
    campaign: Campaign,
    as_of: datetime,
    test_mode: bool = False,
) -> None:
    """Write the execution's recipients: one contact (the lowest id) per person in the audience.

    In test mode the recipients are the organization's test contacts (tagged
    :data:`TEST_TAG`) when it has any; otherwise the real audience, whom the workers then only
    render messages for (a dry run).

    One ``INSERT … SELECT`` in id order inside the planning transaction, so the database does
    the work and the primary key grows at its end.
    """
    spec = campaign_audience(campaign)
    if test_mode:
        tested = AudienceSpec(tags=(TEST_TAG,))
        if count_audience(session, campaign.organization_id, tested, as_of, campaign.channel):
            spec = tested
    people = _audience_ids(
        session, campaign.organization_id, spec, as_of, campaign.channel
    ).subquery()
    rows = sa.select(sa.literal(execution_id), people.c.contact_id).order_by(people.c.contact_id)
    session.execute(
        sa.insert(table_of(ExecutionRecipient)).from_select(["execution_id", "contact_id"], rows)
    )


def copy_recipients(session: Session, source_id: str, execution_id: str, channel: str) -> None:
    """Give ``execution_id`` the recipients ``source_id`` was sent to (its sample, if it had one),
    except contacts ``channel`` has blocked since.

    One ``INSERT … SELECT`` when the source targeted everyone; otherwise its sampled contacts
    are copied in batches (the sample is decided per execution id, in Python).
    """
    source = session.get_one(Execution, source_id)
    table = table_of(ExecutionRecipient)
    if source.target_percentage >= 100:
        rows = (
            sa.select(sa.literal(execution_id), col(ExecutionRecipient.contact_id))
            .where(col(ExecutionRecipient.execution_id) == source_id)
            .order_by(col(ExecutionRecipient.contact_id))
        )
        session.execute(sa.insert(table).from_select(["execution_id", "contact_id"], rows))
        _drop_blocked(session, execution_id, channel)
        return
    # Read before writing: a streaming read and inserts into the same table don't interleave
    # on every driver.
    sampled = iter(list(iter_recipient_ids(session, source_id, source.target_percentage)))
    while block := list(islice(sampled, 10_000)):
        session.execute(
            sa.insert(table), [{"execution_id": execution_id, "contact_id": c} for c in block]
        )
    _drop_blocked(session, execution_id, channel)


def _drop_blocked(session: Session, execution_id: str, channel: str) -> None:
    """Remove the recipients ``channel`` can no longer reach (blocked since they were frozen)."""
    blocked = sa.select(col(ChannelBlock.contact_id)).where(col(ChannelBlock.channel) == channel)
    session.execute(
        sa.delete(ExecutionRecipient).where(
            col(ExecutionRecipient.execution_id) == execution_id,
            col(ExecutionRecipient.contact_id).in_(blocked),
        )
    )


def test_contacts(session: Session, organization_id: str, contact_ids: Sequence[int]) -> set[int]:
    """Which of ``contact_ids`` are test contacts (tagged :data:`TEST_TAG`)."""
    if not contact_ids:
        return set()
    return set(
        session.scalars(
            sa.select(col(ContactTag.contact_id))
            .join(Tag, col(Tag.id) == col(ContactTag.tag_id))
            .where(
                col(Tag.organization_id) == organization_id,
                col(Tag.name) == TEST_TAG,
                col(ContactTag.contact_id).in_(list(contact_ids)),
            )
        )
    )


def in_sample(execution_id: str, contact_id: int, percentage: int) -> bool:
    """Return whether a contact falls in an execution's ``targetPercentage`` sample.

    Deterministic: the same contact gets the same answer for the same execution, in the
    planner and in every worker.
    """
    if percentage >= 100:
        return True
    digest = hashlib.blake2b(f"{execution_id}:{contact_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100 < percentage


def iter_recipient_ids(session: Session, execution_id: str, percentage: int) -> Iterator[int]:
    """Yield the execution's sampled recipients in ascending id order, streaming."""
    query = (
        sa.select(col(ExecutionRecipient.contact_id))
        .where(col(ExecutionRecipient.execution_id) == execution_id)
        .order_by(col(ExecutionRecipient.contact_id))
        .execution_options(yield_per=10_000)
    )
    for (contact_id,) in session.execute(query):
        if in_sample(execution_id, contact_id, percentage):
            yield contact_id
