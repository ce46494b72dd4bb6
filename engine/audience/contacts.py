"""Contacts: one at a time (create, get, update, delete, search), in bulk, and for demos."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.audience.conditions import compile_condition
from engine.audience.contact_data import normalise_address, register_fields, set_tags
from engine.audience.contact_upsert import ContactRow, ContactTarget, insert_contacts
from engine.audience.lists import get_list
from engine.db import get_owned
from engine.errors import Conflict, ValidationFailed
from engine.models import Contact, ContactTag
from engine.models.base import utcnow


def add_contacts(
    session: Session, organization_id: str, rows: Iterable[dict[str, Any]], batch: int = 5000
) -> int:
    """Insert contacts in batches (``email``, ``phone``, ``name``, ``fields``); return how many.

    For demo and test data: the rows are stored as given, in no list, matching nothing (see
    :func:`engine.audience.contact_upsert.insert_contacts`). Their custom field names are
    registered (as strings) so conditions can name them.
    """
    target = ContactTarget.of(session, organization_id, None)
    now = utcnow()
    count = 0
    iterator = iter(rows)
    while page := list(islice(iterator, batch)):
        insert_contacts(
            session,
            target,
            [
                ContactRow(
                    email=row.get("email"),
                    phone=row.get("phone"),
                    name=row.get("name"),
                    fields=row.get("fields", {}),
                )
                for row in page
            ],
            now=now,
        )
        count += len(page)
        register_fields(
            session, organization_id, {k for row in page for k in row.get("fields", {})}
        )
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


# --- one contact at a time (the /api/v1/contacts routes) ------------------------------------

#: Attributes a contact create or update may carry.
CONTACT_KEYS = frozenset({"list_id", "email", "phone", "name", "fields", "tags"})


def _normalised(data: dict[str, Any]) -> dict[str, Any]:
    """Check a contact's attributes; return them with email and phone normalised."""
    unknown = set(data) - CONTACT_KEYS
    if unknown:
        raise ValidationFailed(f"unknown attribute(s) {sorted(unknown)}", code="INVALID_CONTACT")
    result = dict(data)
    for key in ("email", "phone"):
        if result.get(key) is not None:
            result[key] = normalise_address(str(result[key]))
            if (key == "email") != ("@" in result[key]):
                raise ValidationFailed(f"{result[key]!r} is not a {key}", code="INVALID_CONTACT")
    if result.get("name") is not None and len(str(result["name"])) > 200:
        raise ValidationFailed("name has at most 200 characters", code="INVALID_CONTACT")
    fields = result.get("fields") or {}
    if not isinstance(fields, dict) or not all(0 < len(str(k)) <= 100 for k in fields):
        raise ValidationFailed(
            "fields is an object whose names have 1 to 100 characters", code="INVALID_CONTACT"
        )
    tags = result.get("tags")
    if tags is not None and not all(isinstance(t, str) and 0 < len(t) <= 100 for t in tags):
        raise ValidationFailed("tags are names of 1 to 100 characters", code="INVALID_CONTACT")
    return result


def _duplicate(
    session: Session,
    organization_id: str,
    list_id: int | None,
    column: Any,
    value: str,
    other_than: int | None,
) -> None:
    """Refuse a second contact with the same email (or, without email, phone) in a list."""
    same_list = (
        col(Contact.list_id).is_(None) if list_id is None else col(Contact.list_id) == list_id
    )
    found = session.scalar(
        sa.select(col(Contact.id)).where(
            col(Contact.organization_id) == organization_id,
            same_list,
            column == value,
            col(Contact.id) != (other_than or 0),
        )
    )
    if found is not None:
        raise Conflict(f"contact {found} already has {value!r} in this list", code="CONTACT_EXISTS")


def _check_unique(
    session: Session,
    organization_id: str,
    list_id: int | None,
    address: tuple[str | None, str | None],
    other_than: int | None = None,
) -> None:
    """A contact is its email in a list, or its phone when it has no email."""
    email, phone = address
    if email:
        _duplicate(session, organization_id, list_id, col(Contact.email), email, other_than)
    elif phone:
        _duplicate(session, organization_id, list_id, col(Contact.phone), phone, other_than)


def create_contact(session: Session, organization_id: str, data: dict[str, Any]) -> Contact:
    """Add one contact (to a list when ``list_id`` is given); email or phone is required.

    Raises:
        ValidationFailed: bad attributes or neither email nor phone.
        NotFound: the list is not the organization's. Conflict: the email is in the list.
    """
    data = _normalised(data)
    if not data.get("email") and not data.get("phone"):
        raise ValidationFailed("a contact needs an email or a phone", code="INVALID_CONTACT")
    list_id = data.get("list_id")
    if list_id is not None:
        get_list(session, organization_id, list_id)
    _check_unique(session, organization_id, list_id, (data.get("email"), data.get("phone")))
    contact = Contact(
        organization_id=organization_id,
        list_id=list_id,
        email=data.get("email"),
        phone=data.get("phone"),
        name=data.get("name"),
        fields=dict(data.get("fields") or {}),
    )
    session.add(contact)
    session.flush()
    register_fields(session, organization_id, set(contact.fields))
    assert contact.id is not None
    if data.get("tags"):
        set_tags(session, organization_id, contact.id, list(dict.fromkeys(data["tags"])))
    session.flush()
    return contact


def get_contact(session: Session, organization_id: str, contact_id: int) -> Contact:
    """One contact of the organization.

    Raises:
        NotFound: ``CONTACT_NOT_FOUND``.
    """
    return get_owned(
        session, Contact, contact_id, organization_id, what="contact", code="CONTACT_NOT_FOUND"
    )


def update_contact(
    session: Session, organization_id: str, contact_id: int, changes: dict[str, Any]
) -> Contact:
    """Change email, phone, name, fields (merged; ``null`` removes a key) or tags (replaced).

    Raises:
        NotFound: no such contact. ValidationFailed / Conflict: as for :func:`create_contact`.
    """
    contact = get_contact(session, organization_id, contact_id)
    changes = _normalised({k: v for k, v in changes.items() if k != "list_id"})
    email, phone = changes.get("email", contact.email), changes.get("phone", contact.phone)
    if (email, phone) != (contact.email, contact.phone):
        _check_unique(session, organization_id, contact.list_id, (email, phone), contact.id)
    for key in ("email", "phone", "name"):
        if key in changes:
            setattr(contact, key, changes[key])
    if not contact.email and not contact.phone:
        raise ValidationFailed("a contact needs an email or a phone", code="INVALID_CONTACT")
    if changes.get("fields"):
        merged = {**(contact.fields or {}), **changes["fields"]}
        contact.fields = {k: v for k, v in merged.items() if v is not None}
        register_fields(session, organization_id, set(contact.fields))
    if changes.get("tags") is not None:
        assert contact.id is not None
        set_tags(session, organization_id, contact.id, list(dict.fromkeys(changes["tags"])))
    contact.updated_at = utcnow()
    session.flush()
    return contact


def delete_contact(session: Session, organization_id: str, contact_id: int) -> None:
    """Delete a contact and its tags (its past deliveries stay in the statistics).

    Raises:
        NotFound: no such contact.
    """
    contact = get_contact(session, organization_id, contact_id)
    session.execute(sa.delete(ContactTag).where(col(ContactTag.contact_id) == contact.id))
    session.delete(contact)
    session.flush()


def search_contacts(
    session: Session,
    organization_id: str,
    *,
    condition: dict[str, Any] | None = None,
    list_id: int | None = None,
    search: str | None = None,
    subscribed: bool | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[Contact], int]:
    """A page of contacts (by id) matching every filter given, and how many match.

    Raises:
        ValidationFailed: the condition does not compile (``INVALID_CONDITION``).
    """
    clauses = [
        col(Contact.organization_id) == organization_id,
        compile_condition(session, organization_id, condition),
    ]
    if list_id is not None:
        clauses.append(col(Contact.list_id) == list_id)
    if search:
        pattern = f"%{search.lower()}%"
        clauses.append(
            sa.or_(
                sa.func.lower(col(Contact.name)).like(pattern),
                col(Contact.email).like(pattern),
                col(Contact.phone).like(pattern),
            )
        )
    if subscribed is not None:
        unsubscribed = col(Contact.unsubscribed_at)
        clauses.append(unsubscribed.is_(None) if subscribed else unsubscribed.is_not(None))
    where = sa.and_(*clauses)
    total = session.scalar(sa.select(sa.func.count()).select_from(Contact).where(where))
    rows = session.exec(
        select(Contact).where(where).order_by(col(Contact.id)).offset(offset).limit(limit)
    )
    return list(rows), int(total or 0)
