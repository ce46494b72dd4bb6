"""List members as the contact lists API manages them: batch add/update with tag rules, get,
update, delete.

A member is a :class:`~engine.models.Contact` of one list, matched on email (case-insensitive).
Where the contact lists API is silent we decided (docs/contacts.md): a member that exists while
``update_existing`` is false is reported in ``error_members``; new members follow the
``tag_flag`` table with no previous tags (so flag 2 gives them none).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.audience.conditions import compile_condition
from engine.audience.contact_data import (
    TagMode,
    normalise_email,
    normalise_phone,
    register_fields,
    set_tags,
    tag_ids,
    tags_by_contact,
)
from engine.audience.contact_upsert import (
    ContactRow,
    ContactTarget,
    stored_contacts,
    upsert_contacts,
)
from engine.errors import NotFound, ValidationFailed
from engine.models import ApiUser, Contact, ContactTag
from engine.models.base import utcnow

#: Most members one batch call may carry.
MAX_BATCH = 1000
#: ``tag_flag`` values: replace the tags, add to them, or leave them alone.
TAG_OVERWRITE, TAG_ADD, TAG_SKIP = 0, 1, 2


@dataclass(frozen=True)
class Member:
    """A contact of the api user's list, with its tags as ``(id, name)`` pairs."""

    contact: Contact
    tags: list[tuple[int, str]]


@dataclass(frozen=True)
class MemberPage:
    """One page of the members matching a condition, and how many match in all."""

    members: list[Member]
    total: int


@dataclass(frozen=True)
class MemberWritten:
    """A member a batch created or updated."""

    email: str
    member_id: int


@dataclass(frozen=True)
class MemberRefused:
    """A member a batch could not write, and why (the rest of the batch applies)."""

    email: Any
    message: str


@dataclass(frozen=True)
class BatchResult:
    """What a members batch did, member by member, in the order given."""

    created: list[MemberWritten]
    updated: list[MemberWritten]
    refused: list[MemberRefused]


def _member_not_found(member_id: Any) -> NotFound:
    return NotFound(f"member {member_id!r} not found", code="MEMBER_NOT_FOUND")


def _scope(api_user: ApiUser) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(Contact.organization_id) == api_user.organization_id,
        col(Contact.list_id) == api_user.list_id,
    )


def _check_member(member: Any) -> str:
    """Return the normalised email of a member, or raise why it can't be stored."""
    if not isinstance(member, dict):
        raise ValidationFailed("a member must be an object", code="INVALID_MEMBER")
    email = normalise_email(str(member.get("email") or ""))
    phone, name = member.get("phone"), member.get("name")
    if phone is not None and not isinstance(phone, str):
        raise ValidationFailed("phone must be text", code="INVALID_MEMBER")
    if phone:
        normalise_phone(phone, code="INVALID_MEMBER")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise ValidationFailed("name must be text of at most 200 characters", code="INVALID_MEMBER")
    fields, tags = member.get("fields"), member.get("tags")
    if fields is not None and not isinstance(fields, dict):
        raise ValidationFailed("fields must be an object", code="INVALID_MEMBER")
    if tags is not None and (
        not isinstance(tags, list)
        or not all(isinstance(t, str) and 0 < len(t) <= 100 for t in tags)
    ):
        raise ValidationFailed(
            "tags must be a list of names (1 to 100 characters)", code="INVALID_MEMBER"
        )
    return email


def _set_phone_and_name(contact: Contact, member: dict[str, Any]) -> None:
    """Apply a checked member's phone (normalised) and name; absent or empty ones stay."""
    if member.get("phone"):
        contact.phone = normalise_phone(member["phone"])
    if member.get("name") is not None:
        contact.name = member["name"]


def batch_upsert(
    session: Session,
    api_user: ApiUser,
    members: list[Any],
    tag_flag: int = TAG_ADD,
    update_existing: bool = True,
) -> BatchResult:
    """Add or update up to 1000 members of the api user's list, matched on email.

    Invalid members are reported one by one in ``refused``; the rest of the batch applies.
    Every member written has its ``updated_at`` set (and counts as updated if it existed), and
    its tags follow the ``tag_flag`` table: flag 0 replaces them with the given ones, flag 1
    adds the given ones, flag 2 (or no ``tags``) leaves them alone. A member named twice is
    created (or updated), then updated, as if the batch were sent one member at a time.

    Raises:
        ValidationFailed: more than 1000 members, or a ``tag_flag`` other than 0, 1, 2 — nothing
            is written.
    """
    _check_batch(members, tag_flag)
    valid, errors = _split_valid(members)
    register_fields(
        session, api_user.organization_id, {k for _, m in valid for k in m.get("fields") or {}}
    )
    target = ContactTarget.of(
        session, api_user.organization_id, api_user.list_id, any_case_email=True
    )
    rows = [(email, _row(email, member, tag_flag)) for email, member in valid]
    if not update_existing:
        rows = _refuse_existing(session, target, rows, errors)
    # New tags get ids in the order the members name them, as one member at a time would.
    names = [name for _, row in rows for name in row.tags or []]
    tag_ids(session, api_user.organization_id, names, cache=target.tag_ids)
    mode = TagMode.replace if tag_flag == TAG_OVERWRITE else TagMode.add
    created: list[MemberWritten] = []
    updated: list[MemberWritten] = []
    for email, member_id, is_new in _write_in_rounds(session, target, rows, mode):
        (created if is_new else updated).append(MemberWritten(email, member_id))
    session.flush()
    return BatchResult(created, updated, errors)


def _check_batch(members: Any, tag_flag: Any) -> None:
    if not isinstance(members, list) or not members:
        raise ValidationFailed("members must be a non-empty list", code="INVALID_MEMBERS")
    if len(members) > MAX_BATCH:
        raise ValidationFailed(
            f"at most {MAX_BATCH} members per call (got {len(members)})", code="TOO_MANY_MEMBERS"
        )
    if tag_flag not in (TAG_OVERWRITE, TAG_ADD, TAG_SKIP):
        raise ValidationFailed(
            "tag_flag must be 0 (overwrite), 1 (add) or 2 (skip)", code="INVALID_TAG_FLAG"
        )


def _split_valid(
    members: list[Any],
) -> tuple[list[tuple[str, dict[str, Any]]], list[MemberRefused]]:
    """Members that can be stored (with their normalised email), and why the others can't."""
    valid: list[tuple[str, dict[str, Any]]] = []
    errors: list[MemberRefused] = []
    for member in members:
        try:
            valid.append((_check_member(member), member))
        except ValidationFailed as exc:
            email = member.get("email") if isinstance(member, dict) else None
            errors.append(MemberRefused(email, exc.message))
    return valid, errors


def _row(email: str, member: dict[str, Any], tag_flag: int) -> ContactRow:
    """A checked member as the contact it writes: an empty phone or an absent name stays as
    stored, fields merge, tags as ``tag_flag`` says (None: left alone)."""
    given = member.get("tags")
    return ContactRow(
        email=email,
        phone=normalise_phone(member["phone"]) if member.get("phone") else None,
        name=member.get("name"),
        fields=dict(member.get("fields") or {}),
        tags=None if given is None or tag_flag == TAG_SKIP else list(dict.fromkeys(given)),
    )


def _refuse_existing(
    session: Session,
    target: ContactTarget,
    rows: list[tuple[str, ContactRow]],
    errors: list[MemberRefused],
) -> list[tuple[str, ContactRow]]:
    """The rows naming no member of the list (nor one an earlier row names); the others are
    reported in ``errors``."""
    known = {email for _, email in stored_contacts(session, target, [row for _, row in rows])}
    kept: list[tuple[str, ContactRow]] = []
    for email, row in rows:
        if email in known:
            errors.append(MemberRefused(email, "member exists and update_existing is false"))
            continue
        known.add(email)
        kept.append((email, row))
    return kept


def _write_in_rounds(
    session: Session, target: ContactTarget, rows: list[tuple[str, ContactRow]], mode: TagMode
) -> list[tuple[str, int, bool]]:
    """Write the rows; return each one's email, member id and whether it was created, in order.

    A batch of the upsert core merges rows naming one contact; members apply one after the
    other instead, so the n-th row naming an email goes in the n-th round.
    """
    rounds: list[list[tuple[int, str, ContactRow]]] = []
    seen: Counter[str] = Counter()
    for position, (email, row) in enumerate(rows):
        if seen[email] == len(rounds):
            rounds.append([])
        rounds[seen[email]].append((position, email, row))
        seen[email] += 1
    written: list[tuple[int, str, int, bool]] = []
    for batch in rounds:
        done = upsert_contacts(
            session, target, [row for *_, row in batch], tag_mode=mode, touch=True
        )
        new = set(done.created)
        for position, email, _ in batch:
            member_id = done.ids[("email", email)]
            written.append((position, email, member_id, member_id in new))
    return [(email, member_id, is_new) for _, email, member_id, is_new in sorted(written)]


def _get(session: Session, api_user: ApiUser, member_id: str) -> Contact:
    if not (member_id.isascii() and member_id.isdigit()):  # '③' is a digit, not a number
        raise _member_not_found(member_id)
    contact = session.exec(
        select(Contact).where(_scope(api_user), col(Contact.id) == int(member_id))
    ).first()
    if contact is None:
        raise _member_not_found(member_id)
    return contact


def get_member(session: Session, api_user: ApiUser, member_id: str) -> Member:
    """One member of the list.

    Raises:
        NotFound: no such member in the api user's list.
    """
    contact = _get(session, api_user, member_id)
    assert contact.id is not None
    return Member(contact, tags_by_contact(session, [contact.id])[contact.id])


def update_member(
    session: Session, api_user: ApiUser, member_id: str, changes: dict[str, Any]
) -> int:
    """Change a member's phone, name, fields (merged) or tags (replaced); return 1.

    Raises:
        NotFound: no such member. ValidationFailed: a value can't be stored.
    """
    contact = _get(session, api_user, member_id)
    _check_member({**changes, "email": contact.email})
    _set_phone_and_name(contact, changes)
    if changes.get("fields"):
        register_fields(session, api_user.organization_id, set(changes["fields"]))
        contact.fields = {**(contact.fields or {}), **changes["fields"]}
    if changes.get("tags") is not None:
        assert contact.id is not None
        set_tags(
            session, api_user.organization_id, contact.id, list(dict.fromkeys(changes["tags"]))
        )
    contact.updated_at = utcnow()
    session.flush()
    return 1


def delete_member(session: Session, api_user: ApiUser, member_id: str) -> int:
    """Delete one member; return 1.

    Raises:
        NotFound: no such member in the api user's list.
    """
    contact = _get(session, api_user, member_id)
    session.execute(sa.delete(ContactTag).where(col(ContactTag.contact_id) == contact.id))
    session.delete(contact)
    session.flush()
    return 1


def _matching(session: Session, api_user: ApiUser, condition: Any) -> sa.ColumnElement[bool]:
    return sa.and_(
        _scope(api_user), compile_condition(session, api_user.organization_id, condition)
    )


def delete_by_condition(session: Session, api_user: ApiUser, condition: Any) -> int:
    """Delete the members matching ``condition``; return how many.

    Raises:
        ValidationFailed: the condition is invalid (nothing is deleted).
    """
    ids = list(
        session.scalars(sa.select(col(Contact.id)).where(_matching(session, api_user, condition)))
    )
    if ids:
        session.execute(sa.delete(ContactTag).where(col(ContactTag.contact_id).in_(ids)))
        session.execute(sa.delete(Contact).where(col(Contact.id).in_(ids)))
    return len(ids)


def list_members(
    session: Session, api_user: ApiUser, condition: Any, limit: int = 10, offset: int = 0
) -> MemberPage:
    """A page of the members matching ``condition``, in id order, and how many match.

    Raises:
        ValidationFailed: bad condition, limit outside 1 to 100 or negative offset.
    """
    if not 1 <= limit <= 100 or offset < 0:
        raise ValidationFailed(
            "limit must be between 1 and 100 and offset ≥ 0", code="INVALID_PAGE"
        )
    where = _matching(session, api_user, condition)
    total = int(session.scalar(sa.select(sa.func.count()).select_from(Contact).where(where)) or 0)
    contacts = list(
        session.exec(
            select(Contact).where(where).order_by(col(Contact.id)).offset(offset).limit(limit)
        )
    )
    tags = tags_by_contact(session, [c.id for c in contacts if c.id is not None])
    return MemberPage([Member(c, tags[c.id]) for c in contacts if c.id is not None], total)
