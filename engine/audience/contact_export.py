"""Exporting a list's contacts as a CSV file, streamed, in the format the import reads back.

A header and one line per contact: ``id, email, phone, name, tags, <every custom field of the
organization, by name>, created_at, unsubscribed_at``. Contacts are read with ``yield_per`` (a
server-side cursor on PostgreSQL) so memory stays flat whatever the list's size; what it writes
imports back unchanged (:mod:`engine.audience.contact_import`). Cells a spreadsheet would read
as a formula are neutralised unless the caller asks for ``raw`` values (:mod:`engine.csv_cells`).
See docs/contacts-csv.md.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.audience.contact_import import (
    BATCH_SIZE,
    CONTACT_COLUMNS,
    IGNORED_COLUMNS,
    TAG_SEPARATOR,
)
from engine.audience.lists import get_list
from engine.csv_cells import neutralise_row
from engine.db import table_of
from engine.models import Contact, ContactField, ContactTag, Tag
from engine.models.base import iso


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
    raw: bool = False,
) -> Iterator[str]:
    """Yield a list's contacts as CSV text: the header, then ``batch_size`` lines at a time.

    Contacts are read in id order with ``yield_per`` (a server-side cursor on PostgreSQL), so
    memory stays flat whatever the list's size. Tags are joined with ``;`` in name order;
    custom field values that are not text are written as JSON. A cell starting with ``=``,
    ``+``, ``-``, ``@``, a tab, a carriage return or ``'`` gets a leading ``'`` so that no
    spreadsheet runs it as a formula; the import drops it again.

    Args:
        session: a session, kept open while the iterator is consumed.
        organization_id: the list's organization.
        list_id: the list.
        on_progress: called with the number of contacts written after each batch.
        batch_size: contacts fetched and written at a time.
        raw: write cells as stored, formula prefixes included (for tools other than
            spreadsheets and the import).

    Raises:
        NotFound: no such list in the organization (when iteration starts).

    Example:
        >>> with open("out.csv", "w", newline="", encoding="utf-8") as f:
        ...     f.writelines(export_contacts(session, org.id, newsletter.id))
    """
    get_list(session, organization_id, list_id)
    header = export_columns(session, organization_id)
    fields = header[5:-2]
    line = _export_line if raw else _safe_line
    yield _csv_text([header if raw else neutralise_row(header)])
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
        yield _csv_text(line(contact, fields) for contact in part)
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


def _safe_line(contact: Any, fields: list[str]) -> list[str]:
    return neutralise_row(_export_line(contact, fields))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _csv_text(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
