"""Writing contacts in bulk: the contact lists API's batch, demo inserts, a bot's recipients.

These pin what each writer stores (matching, counts, ids, tags and their order, times) on
SQLite and PostgreSQL; the CSV import has its own tests (test_contact_files.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.api.answers.contact_lists import BatchOut, MemberOut
from engine.audience.contacts import add_contacts
from engine.audience.lists import get_or_create_list
from engine.audience.members import batch_upsert, get_member
from engine.db import session_scope
from engine.errors import ValidationFailed
from engine.models import ApiUser, Contact, ContactTag, Organization, Tag
from engine.runtime import Runtime


@pytest.fixture
def api_user(rt: Runtime) -> ApiUser:
    """An organization, its list ``newsletter`` and an (unsaved) api user of that list."""
    with session_scope(rt.engine) as session:
        org = Organization(name="acme")
        session.add(org)
        session.flush()
        found = get_or_create_list(session, org.id, "newsletter")
        assert found.id is not None
        return ApiUser(organization_id=org.id, list_id=found.id, api_user="x", key_hash="")


def upsert(rt: Runtime, api_user: ApiUser, members: list[Any], **kwargs: Any) -> dict[str, Any]:
    """The batch's answer, as the contact lists API gives it."""
    with session_scope(rt.engine) as session:
        return BatchOut.of(batch_upsert(session, api_user, members, **kwargs)).model_dump()


def shown(rt: Runtime, api_user: ApiUser, member_id: str) -> dict[str, Any]:
    """The member, as the contact lists API shows it."""
    with session_scope(rt.engine) as session:
        return MemberOut.of(get_member(session, api_user, member_id)).model_dump()


def stored(session: Session, list_id: int) -> dict[str, Contact]:
    rows = session.exec(select(Contact).where(col(Contact.list_id) == list_id))
    return {c.email or "": c for c in rows}


def test_a_batch_creates_then_updates_a_member_named_twice(rt: Runtime, api_user: ApiUser) -> None:
    first = upsert(rt, api_user, [{"email": "b@example.com", "name": "Bee"}])
    b_id = first["created_members"][0]["member_id"]

    body = upsert(
        rt,
        api_user,
        [
            {"email": "A@Example.com", "tags": ["zeta", "alpha"], "fields": {"n": 1}},
            {"email": "b@example.com", "tags": ["mid"]},
            {"email": "a@example.com", "tags": ["yak"], "name": "", "fields": {"m": [1, 2]}},
            {"email": "bad"},
            {"email": "c@example.com", "phone": "+1 (555) 000-1111", "name": "Cy"},
        ],
    )

    assert (body["created_count"], body["updated_count"], body["error_count"]) == (2, 2, 1)
    created = body["created_members"]
    assert [m["email"] for m in created] == ["a@example.com", "c@example.com"]
    a_id, c_id = (m["member_id"] for m in created)
    assert int(a_id) < int(c_id)
    assert body["updated_members"] == [
        {"email": "b@example.com", "member_id": b_id},
        {"email": "a@example.com", "member_id": a_id},
    ]
    assert body["error_members"][0]["email"] == "bad"
    a = shown(rt, api_user, a_id)
    # Tags created in the order the batch names them; a later row adds to an earlier one.
    assert a["tag_names"] == ["zeta", "alpha", "yak"]
    assert (a["name"], a["fields"]) == ("", {"n": 1, "m": [1, 2]})
    assert a["update_time"] is not None
    c = shown(rt, api_user, c_id)
    assert (c["phone"], c["name"], c["tag_names"]) == ("+15550001111", "Cy", [])
    assert shown(rt, api_user, b_id)["tag_names"] == ["mid"]
    with session_scope(rt.engine) as session:
        contacts = stored(session, api_user.list_id)
        assert contacts["a@example.com"].updated_at is not None
        assert contacts["c@example.com"].updated_at is not None


def test_update_existing_false_reports_members_already_there_or_named_twice(
    rt: Runtime, api_user: ApiUser
) -> None:
    upsert(rt, api_user, [{"email": "old@example.com", "name": "Old"}])

    body = upsert(
        rt,
        api_user,
        [
            {"email": "old@example.com", "name": "New", "tags": ["t"]},
            {"email": "new@example.com", "tags": ["n"]},
            {"email": "new@example.com", "name": "Twice"},
        ],
        update_existing=False,
    )

    assert (body["created_count"], body["updated_count"], body["error_count"]) == (1, 0, 2)
    assert [e["email"] for e in body["error_members"]] == ["old@example.com", "new@example.com"]
    with session_scope(rt.engine) as session:
        contacts = stored(session, api_user.list_id)
        assert contacts["old@example.com"].name == "Old"
        assert contacts["new@example.com"].name is None
        names = set(session.scalars(sa.select(col(Tag.name))))
        assert names == {"n"}  # the refused member's tag was never created


def test_an_unchanged_member_still_counts_as_updated_and_is_touched(
    rt: Runtime, api_user: ApiUser
) -> None:
    upsert(rt, api_user, [{"email": "same@example.com", "name": "Same", "tags": ["x"]}])
    with session_scope(rt.engine) as session:
        before = stored(session, api_user.list_id)["same@example.com"]
        assert before.updated_at is not None

    body = upsert(rt, api_user, [{"email": "same@example.com", "name": "Same", "tags": ["x"]}])

    assert (body["created_count"], body["updated_count"]) == (0, 1)
    with session_scope(rt.engine) as session:
        after = stored(session, api_user.list_id)["same@example.com"]
        assert after.updated_at is not None and after.updated_at > before.updated_at


@pytest.mark.parametrize(
    ("flag", "given", "expected"),
    [
        (0, [], []),
        (0, ["c", "a"], ["a", "c"]),
        (1, ["c", "d"], ["a", "b", "c", "d"]),
        (2, ["d"], ["a", "b"]),
    ],
)
def test_tag_flags_on_an_existing_member(
    rt: Runtime, api_user: ApiUser, flag: int, given: list[str], expected: list[str]
) -> None:
    upsert(rt, api_user, [{"email": "t@example.com", "tags": ["a", "b", "c"]}])
    upsert(rt, api_user, [{"email": "t@example.com", "tags": ["b", "a"]}], tag_flag=0)
    upsert(rt, api_user, [{"email": "other@example.com", "tags": ["c"]}])

    body = upsert(rt, api_user, [{"email": "t@example.com", "tags": given}], tag_flag=flag)

    member_id = body["updated_members"][0]["member_id"]
    assert shown(rt, api_user, member_id)["tag_names"] == expected
    with session_scope(rt.engine) as session:
        other = stored(session, api_user.list_id)["other@example.com"]
        links = session.scalars(
            sa.select(col(ContactTag.tag_id)).where(col(ContactTag.contact_id) == other.id)
        )
        assert len(list(links)) == 1


def test_a_member_stored_with_capitals_matches_case_insensitively(
    rt: Runtime, api_user: ApiUser
) -> None:
    with session_scope(rt.engine) as session:
        session.add(
            Contact(
                organization_id=api_user.organization_id,
                list_id=api_user.list_id,
                email="Legacy@Example.com",
                fields={"k": "v"},
            )
        )

    body = upsert(rt, api_user, [{"email": "legacy@example.com", "fields": {"j": "w"}}])

    assert (body["created_count"], body["updated_count"]) == (0, 1)
    with session_scope(rt.engine) as session:
        (only,) = stored(session, api_user.list_id).values()
        assert (only.email, only.fields) == ("Legacy@Example.com", {"k": "v", "j": "w"})


def test_a_bad_batch_writes_nothing(rt: Runtime, api_user: ApiUser) -> None:
    with pytest.raises(ValidationFailed):
        upsert(rt, api_user, [{"email": "a@example.com"}], tag_flag=3)
    with session_scope(rt.engine) as session:
        assert stored(session, api_user.list_id) == {}


def test_add_contacts_inserts_every_row_as_given(rt: Runtime, api_user: ApiUser) -> None:
    rows = [
        {"email": "Dup@Example.com", "name": "One", "fields": {"plan": "pro", "n": 2}},
        {"email": "Dup@Example.com", "name": "Two"},
        {"phone": "555 0101"},
        {"name": "No address", "fields": {"city": "Lyon"}},
    ]
    with session_scope(rt.engine) as session:
        assert add_contacts(session, api_user.organization_id, rows, batch=3) == 4
    with session_scope(rt.engine) as session:
        found = session.exec(
            select(Contact)
            .where(col(Contact.organization_id) == api_user.organization_id)
            .order_by(col(Contact.id))
        ).all()
        assert [(c.list_id, c.email, c.phone, c.name, c.fields) for c in found] == [
            (None, "Dup@Example.com", None, "One", {"plan": "pro", "n": 2}),
            (None, "Dup@Example.com", None, "Two", {}),
            (None, None, "555 0101", None, {}),
            (None, None, None, "No address", {"city": "Lyon"}),
        ]
        assert all(c.updated_at is None and c.created_at is not None for c in found)
