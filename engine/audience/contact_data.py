"""What every contact writer shares: address normalisation, tags (created and written in bulk)
and custom fields.

Emails and phones are stored normalised — emails lower-cased by email-validator, phones without
separators — so that matching, deduplication and the suppression list compare like with like,
whichever door (API, the contact lists API, CSV, sheet) a contact came through.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col

from engine.db import insert_ignore, table_of
from engine.errors import ValidationFailed
from engine.models import ContactField, ContactTag, Tag

#: Written between a phone number's digits, dropped when normalising.
_SEPARATORS = str.maketrans("", "", " -().")
#: Tag ids a bulk writer remembers (past that, it looks them up again).
TAG_CACHE = 50_000

# On PostgreSQL the links go in as two arrays: one short statement however many there are.
_PG_LINK_TAGS = sa.text(
    """
    INSERT INTO contact_tags (contact_id, tag_id)
    SELECT * FROM unnest(CAST(:contacts AS bigint[]), CAST(:tags AS bigint[]))
    ON CONFLICT DO NOTHING
    """
)


def normalise_email(text: str, code: str = "INVALID_EMAIL") -> str:
    """The email as contacts store it (normalised, lower-case).

    Raises:
        ValidationFailed: ``code``, naming why it is not an email.
    """
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationFailed(f"invalid email: {exc}", code=code) from exc


def normalise_phone(text: str, code: str = "INVALID_PHONE") -> str:
    """The phone number as contacts store it: an optional ``+`` and 4 to 20 digits.

    Raises:
        ValidationFailed: ``code``, when it is not such a number once separators are dropped.
    """
    compact = text.strip().translate(_SEPARATORS)
    digits = compact[1:] if compact.startswith("+") else compact
    if 4 <= len(digits) <= 20 and digits.isascii() and digits.isdigit():
        return compact
    raise ValidationFailed(f"{text!r} is not a phone number", code=code)


def normalise_address(address: str) -> str:
    """An email or a phone number, normalised as contacts store them.

    Raises:
        ValidationFailed: ``INVALID_ADDRESS`` for text that is neither.
    """
    if "@" in address:
        return normalise_email(address, code="INVALID_ADDRESS")
    return normalise_phone(address, code="INVALID_ADDRESS")


def tags_by_contact(session: Session, contact_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """Each contact's ``(tag id, tag name)`` pairs, in tag id order."""
    found: dict[int, list[tuple[int, str]]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return found
    rows = session.execute(
        sa.select(col(ContactTag.contact_id), col(Tag.id), col(Tag.name))
        .join(Tag, col(Tag.id) == col(ContactTag.tag_id))
        .where(col(ContactTag.contact_id).in_(contact_ids))
        .order_by(col(Tag.id))
    )
    for contact_id, tag_id, name in rows:
        found[contact_id].append((tag_id, name))
    return found


class TagMode(Enum):
    """What the tags a writer names do to a contact's tags."""

    #: The named tags are added; none is removed.
    add = "add"
    #: The named tags become the contact's tags (``[]`` removes them all).
    replace = "replace"


def tag_ids(
    session: Session,
    organization_id: str,
    names: Sequence[str],
    *,
    cache: dict[str, int] | None = None,
) -> dict[str, int]:
    """Ids of the named tags of the organization; the missing ones are created in the order
    given (their ids follow it, so the contact lists API lists them in that order).

    Writers that may run concurrently with one another (CSV imports) pass names sorted, so two
    of them never wait on each other's new tags in opposite orders.

    Args:
        session: the session; statements run at once.
        organization_id: the tags' organization.
        names: tag names (repeats are fine).
        cache: ids already known by name, filled by this call (a bulk writer keeps one across
            batches; past :data:`TAG_CACHE` entries it starts again).
    """
    cache = {} if cache is None else cache
    if len(cache) > TAG_CACHE:
        cache.clear()
    missing = [name for name in dict.fromkeys(names) if name not in cache]
    if missing:
        found = _tags_named(session, organization_id, missing)
        if unknown := [name for name in missing if name not in found]:
            dialect = session.get_bind().dialect.name
            session.execute(
                insert_ignore(table_of(Tag), dialect),
                [{"organization_id": organization_id, "name": n} for n in unknown],
            )
            found.update(_tags_named(session, organization_id, unknown))
        cache.update(found)
    return {name: cache[name] for name in names}


def _tags_named(session: Session, organization_id: str, names: list[str]) -> dict[str, int]:
    table = table_of(Tag)
    found = session.execute(
        sa.select(table.c.name, table.c.id).where(
            table.c.organization_id == organization_id, table.c.name.in_(names)
        )
    )
    return {name: int(tag_id) for name, tag_id in found}


def write_tags(
    session: Session,
    organization_id: str,
    wanted: dict[int, list[str] | None],
    existing: set[int],
    mode: TagMode,
    *,
    cache: dict[str, int] | None = None,
) -> set[int]:
    """Tag contacts in bulk, in a few statements whatever their number.

    Args:
        session: the session; statements run at once.
        organization_id: the contacts' organization.
        wanted: tag names by contact id; None leaves a contact's tags alone.
        existing: the contacts that may already have tags (the others were just created).
        mode: add the named tags, or make them the contacts' only tags.
        cache: tag ids by name, as for :func:`tag_ids` (tags are created sorted by name).

    Returns:
        The ids of ``existing`` contacts whose tags changed.
    """
    names = {name for names in wanted.values() if names for name in names}
    if not names and mode is TagMode.add:
        return set()
    ids = tag_ids(session, organization_id, sorted(names), cache=cache)
    pairs = {(cid, ids[name]) for cid, names in wanted.items() if names for name in names}
    table = table_of(ContactTag)
    query = sa.select(table.c.contact_id, table.c.tag_id)
    have: set[tuple[int, int]] = set()
    extra: list[tuple[int, int]] = []
    if mode is TagMode.add:
        if retagging := [cid for cid in existing if wanted.get(cid)]:
            query = query.where(
                table.c.contact_id.in_(retagging), table.c.tag_id.in_(set(ids.values()))
            )
            have = {(c, t) for c, t in session.execute(query)}
    elif retagging := [cid for cid in existing if wanted.get(cid) is not None]:
        have = {(c, t) for c, t in session.execute(query.where(table.c.contact_id.in_(retagging)))}
        if extra := sorted(have - pairs):
            unlink = sa.delete(table).where(
                table.c.contact_id == sa.bindparam("c"), table.c.tag_id == sa.bindparam("t")
            )
            session.execute(unlink, [{"c": c, "t": t} for c, t in extra])
    if missing := sorted(pairs - have):
        _link(session, missing)
    return {c for c, _ in [*missing, *extra]} & existing


def _link(session: Session, pairs: list[tuple[int, int]]) -> None:
    """Insert ``(contact id, tag id)`` links, skipping those already there."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        contact_ids, tags = zip(*pairs, strict=True)
        session.execute(_PG_LINK_TAGS, {"contacts": list(contact_ids), "tags": list(tags)})
    else:
        rows = [{"contact_id": c, "tag_id": t} for c, t in pairs]
        session.execute(insert_ignore(table_of(ContactTag), dialect), rows)


def set_tags(session: Session, organization_id: str, contact_id: int, names: list[str]) -> None:
    """Replace a contact's tags with ``names`` (tags are created as needed, in that order)."""
    cache: dict[str, int] = {}
    tag_ids(session, organization_id, names, cache=cache)  # new tags' ids in the names' order
    wanted: dict[int, list[str] | None] = {contact_id: names}
    write_tags(session, organization_id, wanted, {contact_id}, TagMode.replace, cache=cache)


def register_fields(session: Session, organization_id: str, names: set[str]) -> None:
    """Custom fields seen in data become known (as strings) so conditions can name them."""
    if not names:
        return
    known = set(
        session.scalars(
            sa.select(col(ContactField.name)).where(
                col(ContactField.organization_id) == organization_id,
                col(ContactField.name).in_(names),
            )
        )
    )
    for name in sorted(names - known):
        session.add(ContactField(organization_id=organization_id, name=name))
