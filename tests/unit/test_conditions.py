"""The contact lists API conditions compiled to SQL: each field kind and op, and/or, escaping,
errors.

Everything runs on SQLite and PostgreSQL (the ``rt`` fixture). The property test compares
the ids the SQL selects with a pure-Python evaluation of the same condition.
"""

from __future__ import annotations

import operator
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlmodel import Session, col

from engine.audience.conditions import INVALID_CONDITION, compile_condition
from engine.db import session_scope
from engine.errors import ValidationFailed
from engine.models import Contact, ContactField, ContactTag, Organization, Tag
from engine.runtime import Runtime

FIELD_TYPES = {"Plan": "string", "Note": "string", "Age": "number", "Since": "date"}


# --- building contacts ----------------------------------------------------------------------


def make_org(session: Session, field_types: Mapping[str, str] = FIELD_TYPES) -> str:
    """A fresh organization with the given custom fields registered."""
    org = Organization(name=f"org-{uuid.uuid4().hex}")
    session.add(org)
    session.flush()
    for name, type_ in field_types.items():
        session.add(ContactField(organization_id=org.id, name=name, type=type_))
    session.flush()
    return org.id


def add_contacts(session: Session, org_id: str, specs: Iterable[Mapping[str, Any]]) -> list[int]:
    """Insert contacts (email, phone, name, fields, tags); return their ids in order."""
    tag_ids: dict[str, int] = {}
    ids = []
    for spec in specs:
        contact = Contact(
            organization_id=org_id,
            email=spec.get("email"),
            phone=spec.get("phone"),
            name=spec.get("name"),
            fields=dict(spec.get("fields", {})),
        )
        session.add(contact)
        session.flush()
        assert contact.id is not None
        for tag_name in spec.get("tags", ()):
            if tag_name not in tag_ids:
                tag = Tag(organization_id=org_id, name=tag_name)
                session.add(tag)
                session.flush()
                assert tag.id is not None
                tag_ids[tag_name] = tag.id
            session.add(ContactTag(contact_id=contact.id, tag_id=tag_ids[tag_name]))
        ids.append(contact.id)
    session.flush()
    return ids


def select_ids(session: Session, org_id: str, condition: Mapping[str, Any] | None) -> set[int]:
    """The ids of the organization's contacts the condition selects, by SQL."""
    where = compile_condition(session, org_id, condition)
    query = sa.select(col(Contact.id)).where(col(Contact.organization_id) == org_id, where)
    return set(session.scalars(query))


def one(field_name: str, op: str, value: Any = None) -> dict[str, Any]:
    """A condition of one item."""
    item: dict[str, Any] = {"field_name": field_name, "op": op}
    if value is not None:
        item["value"] = value
    return {"relation": "and", "items": [item]}


# --- a small, hand-checked audience -----------------------------------------------------------

PEOPLE: dict[str, dict[str, Any]] = {
    "ann": {
        "email": "ann@hotmail.com",
        "phone": "188001",
        "name": "Ann",
        "fields": {"Plan": "pro", "Age": 30, "Since": "2024-03-05", "Note": "50% off"},
        "tags": ["vip", "new"],
    },
    "bob": {
        "email": "bob@qq.com",
        "phone": "139002",
        "name": "Bob",
        "fields": {"Plan": "free", "Age": "12", "Since": "2023-12-31T23:59:00Z", "Note": "a_b"},
        "tags": ["vip"],
    },
    "cy": {
        "email": "cy@QQ.com",
        "phone": None,
        "name": "Cy",
        "fields": {"Plan": "", "Age": "twelve", "Since": "2024-02-30", "Note": "50 off"},
        "tags": [],
    },
    "dee": {
        "email": "dee@example.com",
        "phone": "",
        "name": None,
        "fields": {"Age": 7.5, "Since": "2024-02-29 08:00", "Note": "axb", "Other": "x"},
        "tags": ["new"],
    },
    "eve": {
        "email": None,
        "phone": "188999",
        "name": "eve",
        "fields": {"Plan": None, "Age": None, "Since": None, "Note": "x/y\\z"},
        "tags": ["a_b"],
    },
}
EVERYONE = set(PEOPLE)


@pytest.fixture
def people(rt: Runtime) -> tuple[str, dict[int, str]]:
    """The PEOPLE audience in a fresh organization, and a look-alike in a second one.

    Returns:
        (organization id, contact id -> person's key).
    """
    with session_scope(rt.engine) as session:
        org_id = make_org(session)
        ids = add_contacts(session, org_id, PEOPLE.values())
        # Same tag names and values elsewhere: must never leak into org_id's answers.
        other = make_org(session)
        add_contacts(session, other, [{**PEOPLE["ann"], "email": "zed@qq.com"}])
    return org_id, dict(zip(ids, PEOPLE, strict=True))


Case = tuple[dict[str, Any] | None, set[str]]


def check(rt: Runtime, people: tuple[str, dict[int, str]], cases: list[Case]) -> None:
    """Assert each condition selects exactly the expected people; report every mismatch."""
    org_id, names = people
    wrong = []
    with session_scope(rt.engine) as session:
        for condition, expected in cases:
            got = {names[i] for i in select_ids(session, org_id, condition)}
            if got != expected:
                wrong.append(f"{condition}: expected {sorted(expected)}, got {sorted(got)}")
    assert not wrong, "\n".join(wrong)


def test_builtin_fields_compare_as_strings(rt: Runtime, people: Any) -> None:
    check(
        rt,
        people,
        [
            (one("Email", "==", "bob@qq.com"), {"bob"}),
            (one("email", "!=", "bob@qq.com"), {"ann", "cy", "dee", "eve"}),
            (one("EMAIL", "contain", "qq.com"), {"bob"}),  # case-sensitive: not cy@QQ.com
            (one("Email", "does not contain", "qq.com"), {"ann", "cy", "dee", "eve"}),
            (one("Email", "exist"), {"ann", "bob", "cy", "dee"}),
            (one("Phone", "exist"), {"ann", "bob", "eve"}),  # "" and NULL do not exist
            (one("Phone", "contain", "188"), {"ann", "eve"}),
            (one("Phone", "==", ""), {"dee"}),
            (one("Name", ">", "Bob"), {"cy", "eve"}),  # code point order: "e" > "B"
            (one("Name", ">=", "Bob"), {"bob", "cy", "eve"}),
            (one("Name", "<", "Bob"), {"ann"}),
            (one("Name", "<=", "Bob"), {"ann", "bob"}),
            (one("Name", "!=", "Bob"), {"ann", "cy", "dee", "eve"}),
        ],
    )


def test_tags(rt: Runtime, people: Any) -> None:
    check(
        rt,
        people,
        [
            (one("tag", "==", "vip"), {"ann", "bob"}),
            (one("tag", "contain", "vip"), {"ann", "bob"}),
            (one("Tag", "==", "new"), {"ann", "dee"}),
            (one("tag", "!=", "vip"), {"cy", "dee", "eve"}),
            (one("tag", "does not contain", "vip"), {"cy", "dee", "eve"}),
            (one("tag", "exist"), {"ann", "bob", "dee", "eve"}),
            (one("tag", "==", "VIP"), set()),  # tag names are case-sensitive
            (one("tag", "==", "a%"), set()),  # no wildcard: a_b is not "a%"
            (one("tag", "==", "nope"), set()),
            (one("tag", "!=", "nope"), EVERYONE),
        ],
    )


def test_string_custom_field(rt: Runtime, people: Any) -> None:
    check(
        rt,
        people,
        [
            (one("Plan", "==", "pro"), {"ann"}),
            (one("Plan", "!=", "pro"), {"bob", "cy", "dee", "eve"}),  # missing/null match
            (one("Plan", ">", "free"), {"ann"}),
            (one("Plan", ">=", "free"), {"ann", "bob"}),
            (one("Plan", "<", "free"), {"cy"}),  # "" < "free"; missing and null never match
            (one("Plan", "<=", "free"), {"bob", "cy"}),
            (one("Plan", "exist"), {"ann", "bob"}),
            (one("Plan", "contain", "r"), {"ann", "bob"}),
            (one("Plan", "does not contain", "r"), {"cy", "dee", "eve"}),
        ],
    )


def test_number_custom_field(rt: Runtime, people: Any) -> None:
    # Age: ann 30, bob "12", cy "twelve", dee 7.5, eve null.
    check(
        rt,
        people,
        [
            (one("Age", "==", "12"), {"bob"}),
            (one("Age", "==", "12.0"), {"bob"}),
            (one("Age", "==", " 30 "), {"ann"}),  # the condition's value is trimmed
            (one("Age", "!=", "12"), {"ann", "cy", "dee", "eve"}),
            (one("Age", ">", "9"), {"ann", "bob"}),  # as strings "9" > "30" and "12"
            (one("Age", ">=", "12"), {"ann", "bob"}),
            (one("Age", "<", "12"), {"dee"}),
            (one("Age", "<=", "7.5"), {"dee"}),
            (one("Age", ">", "-1e3"), {"ann", "bob", "dee"}),  # "twelve" never matches
            (one("Age", "<", "1e3"), {"ann", "bob", "dee"}),
            (one("Age", "exist"), {"ann", "bob", "cy", "dee"}),
            (one("Age", "contain", "2"), {"bob"}),
            (one("Age", "does not contain", "2"), {"ann", "cy", "dee", "eve"}),
        ],
    )


def test_date_custom_field(rt: Runtime, people: Any) -> None:
    # Since: ann 2024-03-05, bob 2023-12-31T23:59Z, cy 2024-02-30 (no such day), dee
    # 2024-02-29 08:00, eve null.
    check(
        rt,
        people,
        [
            (one("Since", "==", "2024-03-05"), {"ann"}),
            (one("Since", "==", "2023-12-31"), {"bob"}),  # the time is ignored
            (one("Since", "==", "2024-03-05T12:00:00+02:00"), {"ann"}),
            (one("Since", "!=", "2024-03-05"), {"bob", "cy", "dee", "eve"}),
            (one("Since", ">", "2024-01-01"), {"ann", "dee"}),
            (one("Since", ">=", "2024-02-29T00:00:00"), {"ann", "dee"}),
            (one("Since", "<", "2024-01-01"), {"bob"}),
            (one("Since", "<=", "2024-03-05"), {"ann", "bob", "dee"}),
            (one("Since", "<", "2099-01-01"), {"ann", "bob", "dee"}),  # 02-30 never matches
            (one("Since", "exist"), {"ann", "bob", "cy", "dee"}),
            (one("Since", "contain", "-02-"), {"cy", "dee"}),
        ],
    )


def test_contain_escapes_like_wildcards(rt: Runtime, people: Any) -> None:
    # Note: ann "50% off", bob "a_b", cy "50 off", dee "axb", eve "x/y\z".
    check(
        rt,
        people,
        [
            (one("Note", "contain", "%"), {"ann"}),
            (one("Note", "contain", "0%"), {"ann"}),
            (one("Note", "contain", "50%"), {"ann"}),
            (one("Note", "contain", "_"), {"bob"}),
            (one("Note", "contain", "a_b"), {"bob"}),
            (one("Note", "does not contain", "_"), {"ann", "cy", "dee", "eve"}),
            (one("Note", "contain", "/"), {"eve"}),  # the escape character
            (one("Note", "contain", "\\"), {"eve"}),  # PostgreSQL's default escape
            (one("Note", "contain", "x/y\\z"), {"eve"}),
            (one("Note", "contain", ""), EVERYONE),
        ],
    )


def test_and_or_and_empty_conditions(rt: Runtime, people: Any) -> None:
    vip = {"field_name": "tag", "op": "==", "value": "vip"}
    older = {"field_name": "Age", "op": ">", "value": "20"}
    hotmail = {"field_name": "Email", "op": "contain", "value": "hotmail.com"}
    phone188 = {"field_name": "Phone", "op": "contain", "value": "188"}
    check(
        rt,
        people,
        [
            ({"relation": "and", "items": [vip, older]}, {"ann"}),
            ({"relation": "or", "items": [vip, older]}, {"ann", "bob"}),
            ({"relation": "or", "items": [hotmail, phone188]}, {"ann", "eve"}),  # as documented
            ({"relation": "AND", "items": [hotmail, phone188]}, {"ann"}),
            ({"relation": "and", "items": [older]}, {"ann"}),
            (None, EVERYONE),
            ({}, EVERYONE),
            ({"relation": "and", "items": []}, EVERYONE),
            ({"relation": "or", "items": []}, EVERYONE),
        ],
    )


def test_the_expression_is_never_null(rt: Runtime, people: Any) -> None:
    """``NOT condition`` selects exactly the other contacts, missing values included."""
    org_id, _ = people
    conditions = [
        one("Plan", "<", "free"),
        one("Age", ">", "9"),
        one("Since", ">=", "2024-01-01"),
        one("Name", ">", "Bob"),
        one("Email", "contain", "qq"),
        one("Phone", "exist"),
        {"relation": "or", "items": [item("Age", "==", "12"), item("tag", "==", "x")]},
    ]
    with session_scope(rt.engine) as session:
        everyone = select_ids(session, org_id, None)
        for condition in conditions:
            where = compile_condition(session, org_id, condition)
            query = sa.select(col(Contact.id)).where(col(Contact.organization_id) == org_id)
            chosen = set(session.scalars(query.where(where)))
            others = set(session.scalars(query.where(sa.not_(where))))
            assert chosen | others == everyone and not chosen & others, condition


def test_unusual_field_names_and_json_values(rt: Runtime) -> None:
    odd = {'pré "nom"': "string", "prénom": "string", "a.b": "string", "Flag": "string"}
    with session_scope(rt.engine) as session:
        org_id = make_org(session, {**odd, "Age": "number"})
        first, second = add_contacts(
            session,
            org_id,
            [
                {"fields": {'pré "nom"': "Zoé", "prénom": "Zoé", "a.b": "1", "Flag": True}},
                {"fields": {"Flag": False, "Age": True}},
            ],
        )
        assert select_ids(session, org_id, one('pré "nom"', "==", "Zoé")) == {first}
        assert select_ids(session, org_id, one("prénom", "contain", "é")) == {first}
        assert select_ids(session, org_id, one("a.b", "==", "1")) == {first}
        assert select_ids(session, org_id, one("Flag", "==", "true")) == {first}
        assert select_ids(session, org_id, one("Flag", "==", "false")) == {second}
        # A boolean is not a number (SQLite would otherwise read it as 1).
        assert select_ids(session, org_id, one("Age", "==", "1")) == set()
        assert select_ids(session, org_id, one("Age", "exist")) == {second}


# --- errors ---------------------------------------------------------------------------------


def item(field_name: str, op: str, value: Any = "x") -> dict[str, Any]:
    """One condition item."""
    return {"field_name": field_name, "op": op, "value": value}


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"relation": "and", "items": [item("Email", "==")] * 11}, "at most 10 items"),
        ({"relation": "xor", "items": [item("Email", "==")]}, "'xor'"),
        ({"items": [item("Email", "==")]}, "relation"),
        ({"relation": "and", "items": "Email"}, "items"),
        ({"relation": "and", "items": ["Email"]}, "item 1"),
        ({"relation": "and", "items": [item("Email", "=~")]}, "unknown op '=~'"),
        ({"relation": "and", "items": [item("Email", "==", None)]}, "needs a string"),
        ({"relation": "and", "items": [item("Email", "==", 12)]}, "got int"),
        ({"relation": "and", "items": [{"op": "==", "value": "x"}]}, "field_name"),
        ({"relation": "or", "items": [item("Email", "=="), item("Agee", "==")]}, "'Agee'"),
        ({"relation": "and", "items": [item("age", "==", "1")]}, "unknown field 'age'"),
        ({"relation": "and", "items": [item("Secret", "==")]}, "unknown field 'Secret'"),
        ({"relation": "and", "items": [item("Age", ">", "abc")]}, "'abc' is not a number"),
        ({"relation": "and", "items": [item("Age", "==", "1,5")]}, "is not a number"),
        ({"relation": "and", "items": [item("Since", "<", "05/03/2024")]}, "is not a date"),
        ({"relation": "and", "items": [item("Since", "==", "2023-02-29")]}, "is not a date"),
        ({"relation": "and", "items": [item("tag", ">", "vip")]}, "does not apply to tags"),
        ({"relation": "and", "items": [item("Email", "==", "a\x00b")]}, "NUL"),
    ],
)
def test_invalid_conditions_are_refused(
    rt: Runtime, condition: dict[str, Any], message: str
) -> None:
    with session_scope(rt.engine) as session:
        org_id = make_org(session)
        # A field of another organization is unknown to this one.
        make_org(session, {"Secret": "string"})
        with pytest.raises(ValidationFailed) as err:
            compile_condition(session, org_id, condition)
    assert err.value.code == INVALID_CONDITION
    assert message in err.value.message


def test_exist_needs_no_value_and_ops_are_normalized(rt: Runtime) -> None:
    with session_scope(rt.engine) as session:
        org_id = make_org(session)
        (ann,) = add_contacts(session, org_id, [{"email": "a@b.c", "fields": {"Plan": "pro"}}])
        assert select_ids(session, org_id, one("Plan", "exist")) == {ann}
        assert select_ids(session, org_id, one("Plan", "exist", 42)) == {ann}
        assert select_ids(session, org_id, one("Email", " Does  Not  Contain ", "x")) == {ann}


# --- property: SQL == Python ----------------------------------------------------------------

BUILTIN = {"email": "email", "phone": "phone", "name": "name"}
TAGS = ["vip", "new", "a_b", "x%"]
DATES = [
    "2024-03-05",
    "2024-02-29",
    "2023-02-28",
    "2023-12-31T23:59:00Z",
    "2024-03-05 08:00",
    "2024-03-05T10:00:00.123+02:00",
    "2000-02-29",
]
BAD_DATES = [
    "2023-02-29",
    "1900-02-29",
    "2024-13-01",
    "2024-3-5",
    "20240305",
    "",
    "soon",
    "2024-03-05x",
]
NUMBERS = ["12", "-3", "0", "7.5", "+4", ".5", "1e1", "12.0", "-0.5", "2E0"]
BAD_NUMBERS = ["abc", "", " 12", "1e", "12a", "1,5", "--1", "."]

_NUM = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,3})?")
_TIME = re.compile(
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?)?"
)
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def text_of(value: Any) -> str | None:
    """How a stored value reads as text (NULL stays None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def number_of(text: str | None) -> Decimal | None:
    """A stored text as a number, or None when it is not one."""
    if text is None or len(text) > 100 or not _NUM.fullmatch(text):
        return None
    return Decimal(text)


def day_of(text: str | None) -> str | None:
    """A stored text's calendar date (YYYY-MM-DD), or None when it is not a date."""
    if text is None or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text[:10]):
        return None
    try:
        date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return None
    return text[:10] if _TIME.fullmatch(text[10:]) else None


def evaluate(contact: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    """Whether one item matches one contact, straight from the documented semantics."""
    field, op = item["field_name"], item["op"]
    value: Any = item.get("value")
    if field.lower() == "tag":
        has = bool(contact["tags"]) if op == "exist" else value in contact["tags"]
        return not has if op in ("!=", "does not contain") else has
    if field.lower() in BUILTIN:
        raw, kind = contact.get(BUILTIN[field.lower()]), "string"
    else:
        raw, kind = contact["fields"].get(field), FIELD_TYPES[field]
    text = text_of(raw)
    if op == "exist":
        return text not in (None, "")
    if op in ("contain", "does not contain"):
        found = text is not None and value in text
        return found if op == "contain" else not found
    key: Any
    bound: Any
    if kind == "number":
        key, bound = number_of(text), Decimal(value.strip())
    elif kind == "date":
        key, bound = day_of(text), value.strip()[:10]
    else:
        key, bound = text, value
    if op in ("==", "!="):
        equal = key is not None and key == bound
        return equal if op == "==" else not equal
    return key is not None and _ORDER[op](key, bound)


def evaluate_condition(contact: Mapping[str, Any], condition: Mapping[str, Any]) -> bool:
    """Whether a whole condition matches one contact."""
    results = [evaluate(contact, item) for item in condition["items"]]
    if not results:
        return True
    return all(results) if condition["relation"] == "and" else any(results)


short_text = st.text(alphabet="ab%_/\\é ", max_size=3)
absent = object()


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value (most often), None, or absent (the key left out)."""
    return st.one_of(st.just(absent), st.none(), strategy, strategy, strategy)


contact_strategy = st.fixed_dictionaries(
    {
        "email": st.none() | short_text,
        "phone": st.none() | st.text(alphabet="0189", max_size=3),
        "name": st.none() | short_text,
        "fields": st.fixed_dictionaries(
            {
                "Plan": maybe(short_text | st.booleans()),
                "Note": maybe(short_text),
                "Age": maybe(
                    st.integers(-20, 20)
                    | st.integers(-40, 40).map(lambda i: i / 2)
                    | st.sampled_from(NUMBERS + BAD_NUMBERS)
                    | st.booleans()
                ),
                "Since": maybe(st.sampled_from(DATES + BAD_DATES) | st.integers(2020, 2025)),
            }
        ).map(lambda fields: {k: v for k, v in fields.items() if v is not absent}),
        "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=3),
    }
)


@st.composite
def item_strategy(draw: st.DrawFn) -> dict[str, Any]:
    """One valid condition item over the property test's fields."""
    # Typed fields twice: their comparisons are where SQL and Python most easily part.
    fields = ["Email", "name", "PHONE", "tag", "Plan", "Note", "Age", "Since", "Age", "Since"]
    field = draw(st.sampled_from(fields))
    if field == "tag":
        op = draw(st.sampled_from(["==", "!=", "contain", "does not contain", "exist"]))
        return {"field_name": field, "op": op, "value": draw(st.sampled_from([*TAGS, "nope"]))}
    op = draw(
        st.sampled_from(["==", "!=", ">", ">=", "<", "<=", "exist", "contain", "does not contain"])
    )
    if op in ("contain", "does not contain"):
        value = draw(short_text | st.text(alphabet="0123-.", max_size=3))
    elif field == "Age":
        value = draw(st.sampled_from(NUMBERS) | st.integers(-20, 20).map(str))
    elif field == "Since":
        value = draw(st.sampled_from(DATES))
    elif field == "PHONE":
        value = draw(st.text(alphabet="0189", max_size=3))
    else:
        value = draw(short_text)
    return {"field_name": field, "op": op, "value": value}


condition_strategy = st.fixed_dictionaries(
    {
        "relation": st.sampled_from(["and", "or"]),
        "items": st.lists(item_strategy(), max_size=4),
    }
)


@hyp_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    contacts=st.lists(contact_strategy, min_size=10, max_size=30),
    conditions=st.lists(condition_strategy, min_size=1, max_size=10),
)
def test_sql_selects_what_python_evaluates(
    rt: Runtime, contacts: list[dict[str, Any]], conditions: list[dict[str, Any]]
) -> None:
    with session_scope(rt.engine) as session:
        org_id = make_org(session)
        ids = add_contacts(session, org_id, contacts)
        for condition in conditions:
            expected = {
                i for i, c in zip(ids, contacts, strict=True) if evaluate_condition(c, condition)
            }
            assert select_ids(session, org_id, condition) == expected, condition
