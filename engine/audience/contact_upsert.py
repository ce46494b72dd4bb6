"""Writing contacts in bulk: the one way the CSV import, the contact lists API's member batches,
demo and test data, and a bot's recipients store contacts.

Callers check and normalise what they were given (:mod:`engine.audience.contact_data`) and hand
over :class:`ContactRow` values; this module only writes them, in a handful of statements per
batch whatever its size:

- :func:`upsert_contacts` matches rows with a list's contacts — on the email, or on the phone
  when a row has no email — inserts the new ones, updates the changed ones (a non-empty value
  replaces, ``fields`` merge) and adds or replaces their tags. ``unsubscribed_at`` is never
  written: writing a contact never resubscribes it.
- :func:`insert_contacts` inserts rows as they are, matching nothing (a list made for them, or
  contacts outside any list).

On PostgreSQL a batch goes in as arrays (``unnest``): one short statement whatever the batch's
size; a multi-row VALUES statement with thousands of parameters costs more to build than to run.
Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.audience.contact_data import TagMode, write_tags
from engine.db import table_of
from engine.models import Contact
from engine.models.base import utcnow

#: What identifies a contact in a list: ``("email", email)``, else ``("phone", phone)``.
Key = tuple[str, str]

_PG_UPDATE_CONTACTS = sa.text(
    """
    UPDATE contacts
    SET phone = t.phone, name = t.name, fields = CAST(t.fields AS jsonb), updated_at = :now
    FROM unnest(
        CAST(:id AS bigint[]), CAST(:phone AS text[]), CAST(:name AS text[]),
        CAST(:fields AS text[])
    ) AS t(id, phone, name, fields)
    WHERE contacts.id = t.id
    """
)


@cache
def _pg_insert_contacts(touch: bool, returning: bool) -> sa.TextClause:
    """The PostgreSQL insert of a batch given as arrays (``updated_at`` set when ``touch``)."""
    columns = "organization_id, list_id, email, phone, name, fields, created_at"
    values = ":org, CAST(:list AS bigint), t.email, t.phone, t.name, CAST(t.fields AS jsonb), :now"
    if touch:
        columns, values = f"{columns}, updated_at", f"{values}, :now"
    return sa.text(
        f"""
        INSERT INTO contacts ({columns})
        SELECT {values}
        FROM unnest(
            CAST(:emails AS text[]), CAST(:phones AS text[]), CAST(:names AS text[]),
            CAST(:fields AS text[])
        ) AS t(email, phone, name, fields)
        {"RETURNING id, email, phone" if returning else ""}
        """
    )


@dataclass
class ContactRow:
    """A contact to write, normalised and checked by its caller.

    Attributes:
        email: the normalised email, or None.
        phone: the normalised phone, or None.
        name: the name; None keeps a stored one.
        fields: custom fields, merged into the stored ones.
        tags: tag names, applied as the :class:`~engine.audience.contact_data.TagMode` says;
            None leaves the tags alone.
    """

    email: str | None = None
    phone: str | None = None
    name: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] | None = None

    def key(self) -> Key:
        """What identifies the contact in a list: its email, else its phone."""
        return key_of(self.email, self.phone)

    def merge(self, later: ContactRow) -> None:
        """Take a later row for the same contact in: its non-empty values win, fields merge,
        tags are unioned."""
        self.phone = later.phone or self.phone
        self.name = later.name or self.name
        self.fields.update(later.fields)
        if later.tags is not None:
            self.tags = list(dict.fromkeys([*(self.tags or []), *later.tags]))


def key_of(email: str | None, phone: str | None) -> Key:
    """What identifies a contact in a list: its email, else its phone."""
    return ("email", email) if email else ("phone", phone or "")


@dataclass
class ContactTarget:
    """Where a bulk write goes, and the tag ids it has seen (kept across batches).

    Attributes:
        organization_id: the contacts' organization.
        list_id: their list (None: contacts outside any list, for :func:`insert_contacts`).
        dialect: ``sqlite`` or ``postgresql``.
        any_case_email: match stored emails whatever their case (the contact lists API always
            has); otherwise exactly, on the list's unique email index (the CSV import).
        tag_ids: tag ids by name, filled as tags are looked up (see
            :func:`engine.audience.contact_data.tag_ids`).
    """

    organization_id: str
    list_id: int | None
    dialect: str
    any_case_email: bool = False
    tag_ids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        session: Session,
        organization_id: str,
        list_id: int | None,
        *,
        any_case_email: bool = False,
    ) -> ContactTarget:
        """The target for a list (already checked to be the organization's) on ``session``."""
        dialect = session.get_bind().dialect.name
        return cls(organization_id, list_id, dialect, any_case_email)


@dataclass
class Upserted:
    """What :func:`upsert_contacts` did with one batch.

    Attributes:
        ids: the contact id of every row, by its :meth:`ContactRow.key`.
        created: ids of the contacts inserted, in the rows' order.
        updated: ids of the matched contacts that changed (or were touched).
        unchanged: ids of the matched contacts left as they were.
    """

    ids: dict[Key, int]
    created: list[int]
    updated: list[int]
    unchanged: list[int]


def upsert_contacts(
    session: Session,
    target: ContactTarget,
    rows: Sequence[ContactRow],
    *,
    tag_mode: TagMode = TagMode.add,
    touch: bool = False,
    now: datetime | None = None,
) -> Upserted:
    """Write one batch into a list: insert the new contacts, update the changed ones, tag them.

    Rows naming one contact merge first (see :meth:`ContactRow.merge`; a row without email
    joins an earlier row of the batch with its phone). A row with an email matches the list's
    contact with that email; one without, the list's contact with that phone and the lowest id.

    Args:
        session: the session; not committed.
        target: the list (``target.list_id`` must not be None).
        rows: the batch; not changed.
        tag_mode: whether the rows' tags are added or replace the contacts' tags.
        touch: set ``updated_at`` on every contact written, even unchanged or new (the contact
            lists API's members); otherwise only on contacts that changed.
        now: the time written (default: now).

    Returns:
        The ids of the rows' contacts, and which were created, updated or left unchanged.
    """
    merged = _merged(rows)
    stored = stored_contacts(session, target, merged)
    new, matched = _match(merged, stored)
    now = now or utcnow()
    new_ids = _insert(session, target, new, now, touch=touch, returning=True)
    wanted: dict[int, list[str] | None] = dict(zip(new_ids, (row.tags for row in new), strict=True))
    wanted.update({cid: row.tags for cid, row in matched.items()})
    retagged = write_tags(
        session, target.organization_id, wanted, set(matched), tag_mode, cache=target.tag_ids
    )
    by_id = {contact.id: contact for contact in stored.values()}
    changes = [
        change
        for cid, row in matched.items()
        if (change := _change(by_id[cid], row, now, force=touch or cid in retagged)) is not None
    ]
    _update(session, target, changes)
    changed = {change["b_id"] for change in changes}
    ids = {key: int(contact.id) for key, contact in stored.items()}
    ids.update({row.key(): cid for row, cid in zip(new, new_ids, strict=True)})
    return Upserted(
        ids=ids,
        created=new_ids,
        updated=[cid for cid in matched if cid in changed],
        unchanged=[cid for cid in matched if cid not in changed],
    )


def insert_contacts(
    session: Session,
    target: ContactTarget,
    rows: Sequence[ContactRow],
    *,
    now: datetime | None = None,
) -> None:
    """Insert every row as a new contact of ``target.list_id`` (or of no list), matching nothing.

    For contacts no one can have yet (a list made for them) or that belong to no list, where
    two rows may well share an email. Rows' tags are ignored.
    """
    _insert(session, target, rows, now or utcnow(), touch=False, returning=False)


def stored_contacts(
    session: Session, target: ContactTarget, rows: Iterable[ContactRow]
) -> dict[Key, Any]:
    """The list's contacts the rows name, by ``("email", e)`` and ``("phone", p)``.

    Each is a row with ``id``, ``email``, ``phone``, ``name`` and ``fields``. A phone names the
    contact of the list with that phone and the lowest id (only rows without email look for it).
    """
    table = table_of(Contact)
    columns = (table.c.id, table.c.email, table.c.phone, table.c.name, table.c.fields)
    emails: list[str] = []
    phones: list[str] = []
    for row in rows:
        if row.email:
            emails.append(row.email)
        elif row.phone:
            phones.append(row.phone)
    found: dict[Key, Any] = {}
    if emails and target.any_case_email:
        query = sa.select(*columns).where(
            table.c.organization_id == target.organization_id,
            table.c.list_id == target.list_id,
            sa.func.lower(table.c.email).in_(emails),
        )
        found.update({("email", c.email.lower()): c for c in session.execute(query)})
    elif emails:
        # Exactly the unique (list_id, email) index; the list is the organization's (checked).
        query = sa.select(*columns).where(
            table.c.list_id == target.list_id, table.c.email.in_(emails)
        )
        found.update({("email", c.email): c for c in session.execute(query)})
    if phones:
        # The list-leading phone index is collated "C" on PostgreSQL: compare alike to use it.
        phone = table.c.phone.collate("C") if target.dialect == "postgresql" else table.c.phone
        query = (
            sa.select(*columns)
            .where(
                table.c.list_id == target.list_id,
                table.c.organization_id == target.organization_id,
                phone.in_(phones),
            )
            .order_by(table.c.id.desc())
        )
        found.update({("phone", c.phone): c for c in session.execute(query)})
    return found


def _merged(batch: Sequence[ContactRow]) -> list[ContactRow]:
    """Rows of one batch for the same contact (same email, or same phone without email), merged
    into copies (the caller's rows are left alone).

    A row without email whose phone is that of an earlier row of the batch joins that row.
    """
    by_key: dict[Key, ContactRow] = {}
    phone_owner: dict[str, Key] = {}
    for row in batch:
        key = row.key()
        if row.email is None and row.phone in phone_owner:
            key = phone_owner[row.phone]
        if key in by_key:
            by_key[key].merge(row)
        else:
            by_key[key] = ContactRow(row.email, row.phone, row.name, {**row.fields}, row.tags)
        if row.phone and row.phone not in phone_owner:
            phone_owner[row.phone] = key
    return list(by_key.values())


def _match(
    rows: list[ContactRow], stored: dict[Key, Any]
) -> tuple[list[ContactRow], dict[int, ContactRow]]:
    """Split rows into new contacts and updates by id (two rows naming one contact merge)."""
    new: list[ContactRow] = []
    matched: dict[int, ContactRow] = {}
    for row in rows:
        contact = stored.get(row.key())
        if contact is None:
            new.append(row)
        elif contact.id in matched:
            matched[contact.id].merge(row)
        else:
            matched[contact.id] = row
    return new, matched


def _insert(
    session: Session,
    target: ContactTarget,
    rows: Sequence[ContactRow],
    now: datetime,
    *,
    touch: bool,
    returning: bool,
) -> list[int]:
    """Insert new contacts in one statement; with ``returning``, return their ids in the rows'
    order (the rows' keys must then be distinct)."""
    if not rows:
        return []
    if target.dialect == "postgresql":
        inserted = session.execute(
            _pg_insert_contacts(touch, returning),
            {
                "org": target.organization_id,
                "list": target.list_id,
                "now": now,
                "emails": [row.email for row in rows],
                "phones": [row.phone for row in rows],
                "names": [row.name for row in rows],
                "fields": [json.dumps(row.fields) for row in rows],
            },
        )
    else:
        table = table_of(Contact)
        touched = {"updated_at": now} if touch else {}
        values = [
            {
                "organization_id": target.organization_id,
                "list_id": target.list_id,
                "email": row.email,
                "phone": row.phone,
                "name": row.name,
                "fields": row.fields,
                "created_at": now,
                **touched,
            }
            for row in rows
        ]
        statement = sa.insert(table)
        if returning:
            statement = statement.returning(table.c.id, table.c.email, table.c.phone)
        inserted = session.execute(statement, values)
    if not returning:
        return []
    # The keys of new rows are distinct (``_merged``), so ids map back by key.
    ids = {key_of(email, phone): cid for cid, email, phone in inserted}
    return [int(ids[row.key()]) for row in rows]


def _change(contact: Any, row: ContactRow, now: datetime, *, force: bool) -> dict[str, Any] | None:
    """The new values of a stored contact, or None when the row changes nothing (and the
    contact is not to be written anyway: ``force``)."""
    values = {
        "b_id": contact.id,
        "b_phone": contact.phone if row.phone is None else row.phone,
        "b_name": contact.name if row.name is None else row.name,
        "b_fields": {**(contact.fields or {}), **row.fields},
        "b_now": now,
    }
    same = (values["b_phone"], values["b_name"], values["b_fields"]) == (
        contact.phone,
        contact.name,
        contact.fields or {},
    )
    return None if same and not force else values


def _update(session: Session, target: ContactTarget, changes: list[dict[str, Any]]) -> None:
    """Update changed contacts in one statement (``unsubscribed_at`` is never written)."""
    if not changes:
        return
    if target.dialect == "postgresql":
        arrays = {
            key: [c[f"b_{key}"] for c in changes] for key in ("id", "phone", "name", "fields")
        }
        arrays["fields"] = [json.dumps(f) for f in arrays["fields"]]
        session.execute(_PG_UPDATE_CONTACTS, {**arrays, "now": changes[0]["b_now"]})
        return
    table = table_of(Contact)
    statement = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"))
        .values(
            phone=sa.bindparam("b_phone"),
            name=sa.bindparam("b_name"),
            fields=sa.bindparam("b_fields", type_=table.c.fields.type),
            updated_at=sa.bindparam("b_now"),
        )
    )
    session.execute(statement, changes)
