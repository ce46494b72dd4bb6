"""Contacts of a list as CSV: a streamed, batched import and a streamed export.

**Import.** The first line names the columns. ``email``, ``phone``, ``name`` and ``tags`` (tag
names separated by ``;``) are the contact's own; ``id``, ``created_at``, ``updated_at`` and
``unsubscribed_at`` (written by an export) are ignored; every other column is a custom field.
A row matches a contact of the list on its email (normalised and lower-cased as the contact
lists API's members are), or on its phone when it has no email. Lines are read with :mod:`csv`
from any iterable of text lines, never as a whole, and applied in batches of :data:`BATCH_SIZE`
rows: one SELECT of the contacts already there, one bulk INSERT, one bulk UPDATE, tags in bulk.

**Each batch is committed** (the service owns these transactions): memory stays flat, and the
store's single write lock (SQLite) or the rows' locks (PostgreSQL) are never held for the
minutes a large file takes. An import that stops half-way (a broken line, a lost connection)
keeps the batches it committed — the error says how far it got — and importing is idempotent,
so the remedy is to import the fixed file again. ``unsubscribed_at`` is never written: an
import never resubscribes anyone.

**Export.** A header and one line per contact, read with ``yield_per`` (a server-side cursor on
PostgreSQL) so memory stays flat; what it writes imports back unchanged. See docs/contacts-csv.md.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.audience.contact_data import normalise_email, normalise_phone, register_fields
from engine.audience.lists import get_list
from engine.db import insert_ignore, table_of
from engine.errors import ValidationFailed
from engine.models import Contact, ContactField, ContactTag, Tag
from engine.models.base import iso, utcnow

#: The contact's own columns.
CONTACT_COLUMNS = ("email", "phone", "name", "tags")
#: Columns an export writes and an import ignores: the store assigns them.
IGNORED_COLUMNS = ("id", "created_at", "updated_at", "unsubscribed_at")
#: Separates tag names in the ``tags`` column.
TAG_SEPARATOR = ";"
#: Rows per batch: one transaction and a handful of statements each.
BATCH_SIZE = 2000
#: Row errors kept in an :class:`ImportResult` (all of them are counted).
MAX_REPORTED_ERRORS = 100
#: Longest values the columns hold.
MAX_NAME, MAX_TAG, MAX_FIELD_NAME = 200, 100, 100
#: Tag ids remembered during one import (an import with more distinct tags looks them up again).
_TAG_CACHE = 50_000


# On PostgreSQL a batch goes in as arrays: one short statement whatever the batch's size (a
# multi-row VALUES statement with thousands of parameters costs more to build than to run).
_PG_INSERT_CONTACTS = sa.text(
    """
    INSERT INTO contacts (organization_id, list_id, email, phone, name, fields, created_at)
    SELECT :org, :list, t.email, t.phone, t.name, CAST(t.fields AS jsonb), :now
    FROM unnest(
        CAST(:emails AS text[]), CAST(:phones AS text[]), CAST(:names AS text[]),
        CAST(:fields AS text[])
    ) AS t(email, phone, name, fields)
    RETURNING id, email, phone
    """
)
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
_PG_LINK_TAGS = sa.text(
    """
    INSERT INTO contact_tags (contact_id, tag_id)
    SELECT * FROM unnest(CAST(:contacts AS bigint[]), CAST(:tags AS bigint[]))
    ON CONFLICT DO NOTHING
    """
)


@dataclass(frozen=True)
class RowError:
    """Why one row of the file was not imported.

    Attributes:
        line: line of the file where the row starts (the header is line 1).
        email: the row's email as written, if any.
        code: ``INVALID_EMAIL``, ``MISSING_EMAIL_AND_PHONE``, ``INVALID_PHONE``, …
        message: a sentence for humans.
    """

    line: int
    email: str | None
    code: str
    message: str


@dataclass
class ImportResult:
    """What an import did.

    Each batch is committed as it is applied: ``committed_batches`` batches (up to line
    ``committed_line``) are in the store even if a later one fails.

    Attributes:
        rows: data rows read (blank lines aside).
        created: contacts added to the list.
        updated: contacts of the list whose phone, name, fields or tags changed.
        unchanged: contacts of the list the file matched but did not change.
        error_count: rows not imported; ``errors`` holds the first :data:`MAX_REPORTED_ERRORS`.
    """

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    committed_batches: int = 0
    committed_line: int = 1

    def add_error(self, error: RowError) -> None:
        """Count a row error, keeping the first ones."""
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


class _BadRow(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _key(email: str | None, phone: str | None) -> tuple[str, str]:
    """What identifies a contact in a list: its email, else its phone."""
    return ("email", email) if email else ("phone", phone or "")


@dataclass
class _Row:
    """A valid row (or several rows of one batch for the same contact, merged)."""

    line: int
    email: str | None
    phone: str | None
    name: str | None
    fields: dict[str, str]
    tags: list[str]

    def key(self) -> tuple[str, str]:
        return _key(self.email, self.phone)

    def merge(self, later: _Row) -> None:
        self.phone = later.phone or self.phone
        self.name = later.name or self.name
        self.fields.update(later.fields)
        self.tags = list(dict.fromkeys([*self.tags, *later.tags]))


@dataclass(frozen=True)
class _Columns:
    """Where each column of the file goes."""

    width: int
    own: dict[str, int]
    custom: list[tuple[int, str]]

    def cell(self, cells: list[str], column: str) -> str:
        index = self.own.get(column)
        return cells[index].strip() if index is not None and index < len(cells) else ""


@dataclass
class _Target:
    """Where an import writes, and the tag ids it has seen."""

    organization_id: str
    list_id: int
    dialect: str
    tag_ids: dict[str, int] = field(default_factory=dict)


def import_contacts(
    session: Session,
    organization_id: str,
    list_id: int,
    lines: Iterable[str],
    *,
    on_progress: Callable[[ImportResult], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportResult:
    """Import CSV ``lines`` into a list, committing every ``batch_size`` rows.

    Args:
        session: a session; this function commits it after each batch.
        organization_id: the list's organization.
        list_id: the list the contacts join.
        lines: the file's text lines as :func:`open` (``newline=""``) or a generator yields
            them; read once, in order, never kept.
        on_progress: called with the running result after each committed batch.
        batch_size: rows per batch (and per transaction).

    Returns:
        The counts and the first row errors.

    Raises:
        NotFound: no such list in the organization.
        ValidationFailed: no or a bad header (nothing imported), or a line that is not
            UTF-8 or not CSV, or a batch colliding with a concurrent import (the batches before
            it are imported; the message says up to where).

    Example:
        >>> with open("contacts.csv", newline="", encoding="utf-8") as f:
        ...     result = import_contacts(session, org.id, newsletter.id, f)
    """
    get_list(session, organization_id, list_id)
    target = _Target(organization_id, list_id, session.get_bind().dialect.name)
    result = ImportResult()
    reader = csv.reader(lines)
    try:
        columns = _read_header(reader)
        register_fields(session, organization_id, {name for _, name in columns.custom})
        rows = _valid_rows(reader, columns, result)
        while batch := list(islice(rows, batch_size)):
            _apply(session, target, batch, result)
            session.commit()
            result.committed_batches += 1
            result.committed_line = reader.line_num
            if on_progress is not None:
                on_progress(result)
    except (UnicodeDecodeError, csv.Error, sa.exc.IntegrityError) as exc:
        session.rollback()
        raise _stopped(exc, reader.line_num, result) from exc
    session.commit()
    return result


def _stopped(exc: Exception, line: int, result: ImportResult) -> ValidationFailed:
    """Why an import stopped, and what it had committed."""
    if isinstance(exc, UnicodeDecodeError):
        code, why, line = "INVALID_ENCODING", "is not UTF-8 text", line + 1
    elif isinstance(exc, csv.Error):
        code, why = "INVALID_CSV", f"is not valid CSV ({exc})"
    else:  # another import added one of this batch's emails to the list meanwhile
        code, why = "IMPORT_CONFLICT", "(end of its batch) met a concurrent import into the list"
    done = (
        f"lines 2 to {result.committed_line} were imported ({result.committed_batches} batches "
        "committed); fix the file and import it again (imported rows match, nothing doubles)"
        if result.committed_batches
        else "nothing was imported"
    )
    return ValidationFailed(f"line {line} {why}: {done}", code=code)


def _read_header(reader: Iterator[list[str]]) -> _Columns:
    header = next((cells for cells in reader if any(c.strip() for c in cells)), None)
    if header is None:
        raise ValidationFailed(
            "the CSV is empty: its first line must name the columns (email, phone, name, tags, …)",
            code="EMPTY_CSV",
        )
    names = [c.strip() for c in header]
    names[0] = names[0].lstrip("\ufeff").strip()
    _check_header(names)
    own = {n.lower(): i for i, n in enumerate(names) if n.lower() in CONTACT_COLUMNS}
    skip = (*CONTACT_COLUMNS, *IGNORED_COLUMNS)
    custom = [(i, n) for i, n in enumerate(names) if n.lower() not in skip]
    return _Columns(len(names), own, custom)


def _check_header(names: list[str]) -> None:
    lowered = [n.lower() for n in names]
    if "email" not in lowered and "phone" not in lowered:
        if any("@" in n for n in names):
            raise ValidationFailed(
                "line 1 looks like data: the first line must be a header naming the columns "
                "(email, phone, name, tags, custom fields)",
                code="MISSING_HEADER",
            )
        raise ValidationFailed(
            f"the header needs an email or a phone column (it has: {', '.join(names)[:200]})",
            code="MISSING_EMAIL_OR_PHONE_COLUMN",
        )
    duplicated = sorted(n for n, count in Counter(lowered).items() if count > 1)
    too_long = [n for n in names if len(n) > MAX_FIELD_NAME]
    if "" in names or duplicated or too_long:
        raise ValidationFailed(
            "every column needs a distinct name of at most "
            f"{MAX_FIELD_NAME} characters (duplicated: {', '.join(duplicated)[:200] or '-'})",
            code="INVALID_HEADER",
        )


def _valid_rows(reader: Any, columns: _Columns, result: ImportResult) -> Iterator[_Row]:
    """The rows that can be stored; the others are counted in ``result`` with their line.

    ``reader`` is a :func:`csv.reader` (its ``line_num`` gives where each row starts).
    """
    line_num = reader.line_num
    for cells in reader:
        start, line_num = line_num + 1, reader.line_num
        if not any(cells):
            continue
        result.rows += 1
        try:
            yield _parse(columns, cells, start)
        except _BadRow as exc:
            email = columns.cell(cells, "email") or None
            result.add_error(RowError(start, email, exc.code, exc.message))


def _parse(columns: _Columns, cells: list[str], line: int) -> _Row:
    if len(cells) > columns.width:
        raise _BadRow(
            "TOO_MANY_CELLS",
            f"{len(cells)} cells for {columns.width} columns (a comma in a value needs quotes)",
        )
    if any("\x00" in c for c in cells):
        raise _BadRow("INVALID_VALUE", "a cell contains a NUL character")
    email = _email(columns.cell(cells, "email"))
    phone = _phone(columns.cell(cells, "phone"))
    if email is None and phone is None:
        raise _BadRow("MISSING_EMAIL_AND_PHONE", "a row needs an email or a phone")
    return _Row(
        line=line,
        email=email,
        phone=phone,
        name=_text(columns.cell(cells, "name"), MAX_NAME, "INVALID_NAME", "name"),
        fields={name: cells[i] for i, name in columns.custom if i < len(cells) and cells[i]},
        tags=_tags(columns.cell(cells, "tags")),
    )


def _email(value: str) -> str | None:
    """The normalised, lower-cased email (as every contact writer stores it), or None."""
    if not value:
        return None
    try:
        return normalise_email(value)
    except ValidationFailed as exc:
        raise _BadRow(exc.code, exc.message) from exc


def _phone(value: str) -> str | None:
    """The phone without separators (as every contact writer stores it), or None."""
    if not value:
        return None
    try:
        return normalise_phone(value)
    except ValidationFailed as exc:
        raise _BadRow(exc.code, exc.message) from exc


def _text(value: str, limit: int, code: str, what: str) -> str | None:
    if len(value) > limit:
        raise _BadRow(code, f"{what} has more than {limit} characters")
    return value or None


def _tags(value: str) -> list[str]:
    names = list(dict.fromkeys(t.strip() for t in value.split(TAG_SEPARATOR) if t.strip()))
    if any(len(n) > MAX_TAG for n in names):
        raise _BadRow("INVALID_TAG", f"a tag name has more than {MAX_TAG} characters")
    return names


def _apply(session: Session, target: _Target, batch: list[_Row], result: ImportResult) -> None:
    """Write one batch: insert the new contacts, update the changed ones, add their tags."""
    rows = _merged(batch)
    stored = _stored(session, target, rows)
    new, matched = _match(rows, stored)
    now = utcnow()
    new_ids = _insert(session, target, new, now)
    wanted = dict(zip(new_ids, (row.tags for row in new), strict=True))
    wanted.update({cid: row.tags for cid, row in matched.items()})
    retagged = _add_tags(session, target, wanted, set(matched))
    by_id = {contact.id: contact for contact in stored.values()}
    changes = [
        change
        for cid, row in matched.items()
        if (change := _change(by_id[cid], row, now, cid in retagged)) is not None
    ]
    _update(session, target, changes)
    result.created += len(new)
    result.updated += len(changes)
    result.unchanged += len(matched) - len(changes)


def _merged(batch: list[_Row]) -> list[_Row]:
    """Rows of one batch for the same contact (same email, or same phone without email), merged.

    A row without email whose phone is that of an earlier row of the batch joins that row.
    """
    by_key: dict[tuple[str, str], _Row] = {}
    phone_owner: dict[str, tuple[str, str]] = {}
    for row in batch:
        key = row.key()
        if row.email is None and row.phone in phone_owner:
            key = phone_owner[row.phone]
        if key in by_key:
            by_key[key].merge(row)
        else:
            by_key[key] = _Row(row.line, row.email, row.phone, row.name, {**row.fields}, row.tags)
        if row.phone and row.phone not in phone_owner:
            phone_owner[row.phone] = key
    return list(by_key.values())


def _stored(session: Session, target: _Target, rows: list[_Row]) -> dict[tuple[str, str], Any]:
    """The list's contacts the rows name, by ``("email", e)`` and ``("phone", p)``.

    A phone names the contact of the list with that phone and the lowest id.
    """
    table = table_of(Contact)
    columns = (table.c.id, table.c.email, table.c.phone, table.c.name, table.c.fields)
    emails = [r.email for r in rows if r.email]
    phones = [r.phone for r in rows if not r.email and r.phone]
    found: dict[tuple[str, str], Any] = {}
    if emails:
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


def _match(
    rows: list[_Row], stored: dict[tuple[str, str], Any]
) -> tuple[list[_Row], dict[int, _Row]]:
    """Split rows into new contacts and updates by id (two rows naming one contact merge)."""
    new: list[_Row] = []
    matched: dict[int, _Row] = {}
    for row in rows:
        contact = stored.get(row.key())
        if contact is None:
            new.append(row)
        elif contact.id in matched:
            matched[contact.id].merge(row)
        else:
            matched[contact.id] = row
    return new, matched


def _insert(session: Session, target: _Target, rows: list[_Row], now: datetime) -> list[int]:
    """Insert new contacts in one statement; return their ids in the rows' order."""
    if not rows:
        return []
    if target.dialect == "postgresql":
        inserted = session.execute(
            _PG_INSERT_CONTACTS,
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
        values = [
            {
                "organization_id": target.organization_id,
                "list_id": target.list_id,
                "email": row.email,
                "phone": row.phone,
                "name": row.name,
                "fields": row.fields,
                "created_at": now,
            }
            for row in rows
        ]
        inserted = session.execute(
            sa.insert(table).returning(table.c.id, table.c.email, table.c.phone), values
        )
    # The keys of new rows are distinct (``_merged``), so ids map back by key.
    ids = {_key(email, phone): cid for cid, email, phone in inserted}
    return [int(ids[row.key()]) for row in rows]


def _change(contact: Any, row: _Row, now: datetime, retagged: bool) -> dict[str, Any] | None:
    """The new values of a stored contact, or None when the row changes nothing."""
    values = {
        "b_id": contact.id,
        "b_phone": row.phone or contact.phone,
        "b_name": row.name or contact.name,
        "b_fields": {**(contact.fields or {}), **row.fields},
        "b_now": now,
    }
    same = (values["b_phone"], values["b_name"], values["b_fields"]) == (
        contact.phone,
        contact.name,
        contact.fields or {},
    )
    return None if same and not retagged else values


def _update(session: Session, target: _Target, changes: list[dict[str, Any]]) -> None:
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


def _add_tags(
    session: Session, target: _Target, wanted: dict[int, list[str]], existing: set[int]
) -> set[int]:
    """Give contacts the named tags they lack; return the ids of existing contacts that gained."""
    names = {name for names in wanted.values() for name in names}
    if not names:
        return set()
    ids = _tag_ids(session, target, names)
    pairs = {(cid, ids[name]) for cid, names in wanted.items() for name in names}
    have: set[tuple[int, int]] = set()
    retagging = [cid for cid in existing if wanted.get(cid)]
    if retagging:
        table = table_of(ContactTag)
        have = {
            (c, t)
            for c, t in session.execute(
                sa.select(table.c.contact_id, table.c.tag_id).where(
                    table.c.contact_id.in_(retagging), table.c.tag_id.in_(set(ids.values()))
                )
            )
        }
    missing = sorted(pairs - have)
    if missing and target.dialect == "postgresql":
        contact_ids, tag_ids = zip(*missing, strict=True)
        session.execute(_PG_LINK_TAGS, {"contacts": list(contact_ids), "tags": list(tag_ids)})
    elif missing:
        rows = [{"contact_id": c, "tag_id": t} for c, t in missing]
        session.execute(insert_ignore(table_of(ContactTag), target.dialect), rows)
    return {c for c, _ in missing} & existing


def _tag_ids(session: Session, target: _Target, names: set[str]) -> dict[str, int]:
    """Ids of the named tags of the organization, created if missing."""
    if len(target.tag_ids) > _TAG_CACHE:
        target.tag_ids.clear()
    missing = names - target.tag_ids.keys()
    if missing:
        table = table_of(Tag)
        session.execute(
            insert_ignore(table, target.dialect),
            [{"organization_id": target.organization_id, "name": n} for n in sorted(missing)],
        )
        found = session.execute(
            sa.select(table.c.name, table.c.id).where(
                table.c.organization_id == target.organization_id, table.c.name.in_(missing)
            )
        )
        target.tag_ids.update({name: int(tag_id) for name, tag_id in found})
    return {name: target.tag_ids[name] for name in names}


def export_columns(session: Session, organization_id: str) -> list[str]:
    """The export's header: the contact's columns, the organization's custom fields, times.

    A custom field named like one of the contact's columns is left out (it could not be told
    apart on import).
    """
    reserved = {*CONTACT_COLUMNS, *IGNORED_COLUMNS}
    names = session.scalars(
        sa.select(table_of(ContactField).c.name)
        .where(table_of(ContactField).c.organization_id == organization_id)
        .order_by(table_of(ContactField).c.name)
    )
    fields = [n for n in names if n.lower() not in reserved]
    return ["id", "email", "phone", "name", "tags", *fields, "created_at", "unsubscribed_at"]


def export_contacts(
    session: Session,
    organization_id: str,
    list_id: int,
    *,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[str]:
    """Yield a list's contacts as CSV text: the header, then ``batch_size`` lines at a time.

    Contacts are read in id order with ``yield_per`` (a server-side cursor on PostgreSQL), so
    memory stays flat whatever the list's size. Tags are joined with ``;`` in name order;
    custom field values that are not text are written as JSON.

    Args:
        session: a session, kept open while the iterator is consumed.
        organization_id: the list's organization.
        list_id: the list.
        on_progress: called with the number of contacts written after each batch.
        batch_size: contacts fetched and written at a time.

    Raises:
        NotFound: no such list in the organization (when iteration starts).

    Example:
        >>> with open("out.csv", "w", newline="", encoding="utf-8") as f:
        ...     f.writelines(export_contacts(session, org.id, newsletter.id))
    """
    get_list(session, organization_id, list_id)
    header = export_columns(session, organization_id)
    fields = header[5:-2]
    yield _csv_text([header])
    table, tags, links = table_of(Contact), table_of(Tag), table_of(ContactTag)
    # Tags come with each row (a correlated subquery) rather than a query per batch.
    tag_names = (
        sa.select(sa.func.aggregate_strings(tags.c.name, TAG_SEPARATOR))
        .select_from(links.join(tags, tags.c.id == links.c.tag_id))
        .where(links.c.contact_id == table.c.id)
        .scalar_subquery()
    )
    query = (
        sa.select(
            table.c.id,
            table.c.email,
            table.c.phone,
            table.c.name,
            table.c.fields,
            table.c.created_at,
            table.c.unsubscribed_at,
            tag_names.label("tags"),
        )
        .where(table.c.list_id == list_id, table.c.organization_id == organization_id)
        .order_by(table.c.id)
        .execution_options(yield_per=batch_size)
    )
    written = 0
    for part in session.execute(query).partitions():
        yield _csv_text(_export_line(contact, fields) for contact in part)
        written += len(part)
        if on_progress is not None:
            on_progress(written)


def _export_line(contact: Any, fields: list[str]) -> list[str]:
    values = contact.fields or {}
    tags = sorted(contact.tags.split(TAG_SEPARATOR)) if contact.tags else []
    return [
        str(contact.id),
        contact.email or "",
        contact.phone or "",
        contact.name or "",
        TAG_SEPARATOR.join(tags),
        *(_cell(values.get(name)) for name in fields),
        iso(contact.created_at) or "",
        iso(contact.unsubscribed_at) or "",
    ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _csv_text(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
