"""Importing a CSV file of contacts into a list: streamed, checked row by row, written in batches.

The first line names the columns. ``email``, ``phone``, ``name`` and ``tags`` (tag names
separated by ``;``) are the contact's own; ``id``, ``created_at``, ``updated_at`` and
``unsubscribed_at`` (written by an export, :mod:`engine.audience.contact_export`) are ignored;
every other column is a custom field. Lines are read with :mod:`csv` from any iterable of text
lines, never as a whole; a row that can't be stored is reported with its line and the others
are imported. Valid rows go to :func:`engine.audience.contact_upsert.upsert_contacts` in batches
of :data:`BATCH_SIZE`: a row matches a contact of the list on its email (normalised and
lower-cased as every contact writer stores it), or on its phone when it has no email; its tags
are added.

**Each batch is committed** (the service owns these transactions): memory stays flat, and the
store's single write lock (SQLite) or the rows' locks (PostgreSQL) are never held for the
minutes a large file takes. An import that stops half-way (a broken line, a lost connection)
keeps the batches it committed — the error says how far it got — and importing is idempotent,
so the remedy is to import the fixed file again. ``unsubscribed_at`` is never written: an
import never resubscribes anyone. See docs/contacts-csv.md.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.audience.contact_data import normalise_email, normalise_phone, register_fields
from engine.audience.contact_upsert import ContactRow, ContactTarget, upsert_contacts
from engine.audience.lists import get_list
from engine.errors import ValidationFailed

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


@dataclass(frozen=True)
class _Columns:
    """Where each column of the file goes."""

    width: int
    own: dict[str, int]
    custom: list[tuple[int, str]]

    def cell(self, cells: list[str], column: str) -> str:
        index = self.own.get(column)
        return cells[index].strip() if index is not None and index < len(cells) else ""


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
    target = ContactTarget.of(session, organization_id, list_id)
    result = ImportResult()
    reader = csv.reader(lines)
    try:
        columns = _read_header(reader)
        register_fields(session, organization_id, {name for _, name in columns.custom})
        rows = _valid_rows(reader, columns, result)
        while batch := list(islice(rows, batch_size)):
            written = upsert_contacts(session, target, batch)
            result.created += len(written.created)
            result.updated += len(written.updated)
            result.unchanged += len(written.unchanged)
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


def _valid_rows(reader: Any, columns: _Columns, result: ImportResult) -> Iterator[ContactRow]:
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
            yield _parse(columns, cells)
        except _BadRow as exc:
            email = columns.cell(cells, "email") or None
            result.add_error(RowError(start, email, exc.code, exc.message))


def _parse(columns: _Columns, cells: list[str]) -> ContactRow:
    if len(cells) > columns.width:
        raise _BadRow(
            "TOO_MANY_CELLS",
            f"{len(cells)} cells for {columns.width} columns (a comma in a value needs quotes)",
        )
    if any("\x00" in c for c in cells):
        raise _BadRow("INVALID_VALUE", "a cell contains a NUL character")
    email = _normalised(columns.cell(cells, "email"), normalise_email)
    phone = _normalised(columns.cell(cells, "phone"), normalise_phone)
    if email is None and phone is None:
        raise _BadRow("MISSING_EMAIL_AND_PHONE", "a row needs an email or a phone")
    return ContactRow(
        email=email,
        phone=phone,
        name=_text(columns.cell(cells, "name"), MAX_NAME, "INVALID_NAME", "name"),
        fields={name: cells[i] for i, name in columns.custom if i < len(cells) and cells[i]},
        tags=_tags(columns.cell(cells, "tags")),
    )


def _normalised(value: str, normalise: Callable[[str], str]) -> str | None:
    """The cell as every contact writer stores it (email lower-cased, phone without
    separators), or None when empty; a refused value makes the row bad."""
    if not value:
        return None
    try:
        return normalise(value)
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
