"""CSV import and export of a list's contacts, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from engine.api.answers.contact_lists import MemberOut
from engine.audience.contact_export import export_contacts
from engine.audience.contact_import import ImportResult, import_contacts
from engine.audience.lists import get_or_create_list
from engine.audience.members import get_member
from engine.db import session_scope
from engine.errors import NotFound, ValidationFailed
from engine.models import ApiUser, Contact, ContactField, Organization
from engine.runtime import Runtime

FILE = """email,phone,name,tags,plan,city
Ann@Example.COM,+15550111,Ann,vip;beta,pro,Lyon
not-an-email,+15550222,Bob,,free,Nice
,+15550333,Phone Only,,free,
,,Nobody,,,
carl@example.com,,Carl,beta,,Paris
"""


@pytest.fixture
def target(rt: Runtime) -> tuple[str, int]:
    """An organization and its list ``newsletter``."""
    with session_scope(rt.engine) as session:
        org = Organization(name="acme")
        session.add(org)
        session.flush()
        found = get_or_create_list(session, org.id, "newsletter")
        assert found.id is not None
        return org.id, found.id


def run_import(rt: Runtime, target: tuple[str, int], text: str, **kwargs: object) -> ImportResult:
    with session_scope(rt.engine) as session:
        return import_contacts(session, *target, io.StringIO(text), **kwargs)  # type: ignore[arg-type]


def contacts(rt: Runtime, list_id: int) -> dict[str, Contact]:
    with session_scope(rt.engine) as session:
        rows = session.exec(select(Contact).where(col(Contact.list_id) == list_id))
        return {(c.email or c.phone or ""): c for c in rows}


def member(rt: Runtime, target: tuple[str, int], contact: Contact) -> dict[str, object]:
    """The contact as the contact lists API shows it (with its tag names)."""
    with session_scope(rt.engine) as session:
        api_user = ApiUser(organization_id=target[0], list_id=target[1], api_user="x", key_hash="")
        return MemberOut.of(get_member(session, api_user, str(contact.id))).model_dump()


def export_text(rt: Runtime, target: tuple[str, int], **kwargs: object) -> str:
    with session_scope(rt.engine) as session:
        return "".join(export_contacts(session, *target, **kwargs))  # type: ignore[arg-type]


def test_import_creates_contacts_and_reports_bad_rows_by_line(
    rt: Runtime, target: tuple[str, int]
) -> None:
    result = run_import(rt, target, FILE)

    assert (result.rows, result.created, result.updated, result.error_count) == (5, 3, 0, 2)
    assert [(e.line, e.code, e.email) for e in result.errors] == [
        (3, "INVALID_EMAIL", "not-an-email"),
        (5, "MISSING_EMAIL_AND_PHONE", None),
    ]
    stored = contacts(rt, target[1])
    assert set(stored) == {"ann@example.com", "+15550333", "carl@example.com"}
    ann = stored["ann@example.com"]
    assert (ann.phone, ann.name, ann.fields) == (
        "+15550111",
        "Ann",
        {"plan": "pro", "city": "Lyon"},
    )
    assert member(rt, target, ann)["tag_names"] == ["beta", "vip"]
    assert stored["carl@example.com"].fields == {"city": "Paris"}
    with session_scope(rt.engine) as session:
        fields = session.exec(
            select(ContactField.name).where(ContactField.organization_id == target[0])
        )
        assert set(fields) == {"plan", "city"}


def test_importing_the_same_file_again_changes_nothing(
    rt: Runtime, target: tuple[str, int]
) -> None:
    run_import(rt, target, FILE)
    before = contacts(rt, target[1])

    again = run_import(rt, target, FILE)

    assert (again.created, again.updated, again.unchanged, again.error_count) == (0, 0, 3, 2)
    after = contacts(rt, target[1])
    assert {k: (c.id, c.fields, c.updated_at) for k, c in after.items()} == {
        k: (c.id, c.fields, c.updated_at) for k, c in before.items()
    }


def test_reimport_merges_fields_updates_phone_and_name_and_adds_tags(
    rt: Runtime, target: tuple[str, int]
) -> None:
    run_import(rt, target, FILE)

    result = run_import(
        rt,
        target,
        "EMAIL,Phone,name,tags,plan,score\nann@example.com,+15550999,,gold,,7\n,+15550333,Pat,,,\n",
    )

    assert (result.created, result.updated, result.unchanged) == (0, 2, 0)
    stored = contacts(rt, target[1])
    ann = stored["ann@example.com"]
    assert (ann.phone, ann.name) == ("+15550999", "Ann")  # an empty cell keeps the stored value
    assert ann.fields == {"plan": "pro", "city": "Lyon", "score": "7"}
    assert member(rt, target, ann)["tag_names"] == ["beta", "vip", "gold"]
    assert stored["+15550333"].name == "Pat"  # matched on phone: no email in the row


def test_rows_for_one_contact_in_one_file_merge(rt: Runtime, target: tuple[str, int]) -> None:
    result = run_import(
        rt,
        target,
        "email,phone,tags,a\nx@example.com,+15550001,t1,1\nX@EXAMPLE.com,,t2,\n,+15550001,,3\n",
    )

    assert (result.rows, result.created) == (3, 1)
    only = contacts(rt, target[1])["x@example.com"]
    assert (only.phone, only.fields) == ("+15550001", {"a": "3"})
    assert member(rt, target, only)["tag_names"] == ["t1", "t2"]


def test_import_never_resubscribes_anyone(rt: Runtime, target: tuple[str, int]) -> None:
    run_import(rt, target, FILE)
    left = datetime(2026, 1, 2, tzinfo=UTC)
    with session_scope(rt.engine) as session:
        session.execute(sa.update(Contact).values(unsubscribed_at=left))

    result = run_import(rt, target, "email,name,unsubscribed_at\nann@example.com,Annie,\n")

    assert result.updated == 1
    ann = contacts(rt, target[1])["ann@example.com"]
    assert (ann.name, ann.unsubscribed_at) == ("Annie", left)


def test_export_lists_every_contact_and_imports_back_unchanged(
    rt: Runtime, target: tuple[str, int]
) -> None:
    run_import(rt, target, FILE)
    with session_scope(rt.engine) as session:
        other = get_or_create_list(session, target[0], "other")
    run_import(rt, (target[0], other.id or 0), "email\nsomeone@else.com\n")

    text = export_text(rt, target)

    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "id", "email", "phone", "name", "tags", "city", "plan", "created_at", "unsubscribed_at"
    ]  # fmt: skip
    assert [r["email"] for r in rows] == ["ann@example.com", "", "carl@example.com"]
    assert rows[0]["tags"] == "beta;vip" and rows[0]["plan"] == "pro"
    assert rows[0]["created_at"].endswith("Z") and rows[0]["unsubscribed_at"] == ""
    before = contacts(rt, target[1])
    again = run_import(rt, target, text)
    assert (again.rows, again.created, again.updated, again.error_count) == (3, 0, 0, 0)
    assert again.unchanged == 3 and contacts(rt, target[1]).keys() == before.keys()


def test_export_into_an_empty_list_of_another_list_copies_it(
    rt: Runtime, target: tuple[str, int]
) -> None:
    run_import(rt, target, FILE)
    with session_scope(rt.engine) as session:
        copy = get_or_create_list(session, target[0], "copy")

    result = run_import(rt, (target[0], copy.id or 0), export_text(rt, target))

    assert (result.created, result.error_count) == (3, 0)
    copied = contacts(rt, copy.id or 0)
    assert copied["ann@example.com"].fields == {"plan": "pro", "city": "Lyon"}
    assert member(rt, (target[0], copy.id or 0), copied["ann@example.com"])["tag_names"] == [
        "beta",
        "vip",
    ]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "EMPTY_CSV"),
        ("\n\n", "EMPTY_CSV"),
        ("ann@example.com,Ann\n", "MISSING_HEADER"),
        ("name,plan\nAnn,pro\n", "MISSING_EMAIL_OR_PHONE_COLUMN"),
        ("email,plan,Plan\na@b.com,1,2\n", "INVALID_HEADER"),
    ],
)
def test_a_file_without_a_usable_header_imports_nothing(
    rt: Runtime, target: tuple[str, int], text: str, code: str
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        run_import(rt, target, text)

    assert raised.value.code == code
    assert contacts(rt, target[1]) == {}


def test_a_broken_line_stops_the_import_and_says_what_was_kept(
    rt: Runtime, target: tuple[str, int]
) -> None:
    def lines() -> Iterator[str]:
        yield "email\n"
        for i in range(5):
            yield f"u{i}@example.com\n"
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    with session_scope(rt.engine) as session, pytest.raises(ValidationFailed) as raised:
        import_contacts(session, *target, lines(), batch_size=2)

    assert raised.value.code == "INVALID_ENCODING"
    assert "line 7" in raised.value.message and "lines 2 to 5 were imported" in raised.value.message
    assert len(contacts(rt, target[1])) == 4  # two committed batches of two


def test_only_the_organizations_own_lists(rt: Runtime, target: tuple[str, int]) -> None:
    with session_scope(rt.engine) as session:
        intruder = Organization(name="intruder")
        session.add(intruder)
        session.flush()
        with pytest.raises(NotFound):
            import_contacts(session, intruder.id, target[1], io.StringIO(FILE))


def test_a_large_file_streams_in_batches_from_a_generator(
    rt: Runtime, target: tuple[str, int]
) -> None:
    n = 20_000
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        yield "email,name,tags,plan\n"
        for i in range(n):
            consumed += 1
            yield f"user{i}@example.com,User {i},{'vip' if i % 7 == 0 else ''},p{i % 3}\n"

    seen: list[tuple[int, int]] = []
    with session_scope(rt.engine) as session:
        result = import_contacts(
            session,
            *target,
            lines(),
            batch_size=5000,
            on_progress=lambda r: seen.append((r.rows, consumed)),
        )

    assert (result.rows, result.created, result.error_count) == (n, n, 0)
    # Progress after each committed batch, with the generator read only as far as that batch.
    assert seen == [(5000, 5000), (10000, 10000), (15000, 15000), (20000, 20000)]
    assert result.committed_batches == 4
    with session_scope(rt.engine) as session:
        written: list[int] = []
        lines_out = sum(
            chunk.count("\n")
            for chunk in export_contacts(session, *target, on_progress=written.append)
        )
    assert lines_out == n + 1 and written[-1] == n and len(written) == n // 2000
