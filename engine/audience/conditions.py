"""The contact lists API's contact conditions, compiled to one SQL boolean over the ``contacts``
table.

A condition is ``{"relation": "and" | "or", "items": [{"field_name", "op", "value"}, …]}``
with at most :data:`MAX_CONDITION_ITEMS` items. :func:`compile_condition` validates it and
returns a SQLAlchemy expression; the caller adds the organization / list filters. Only bound
parameters reach the database, never text built from the condition.

Fields (``field_name``):

* ``Email``, ``Phone``, ``Name`` (any case): the contact's columns, compared as strings.
* ``tag`` (any case): ``value`` is a tag name. ``==`` and ``contain`` match contacts that have
  the tag, ``!=`` and ``does not contain`` those that have not, ``exist`` those with any tag.
  The ordered operators are refused.
* anything else: a key of the contact's ``fields`` JSON, which must be registered (exact,
  case-sensitive name) as a :class:`~engine.models.ContactField` of the organization. Its
  ``type`` decides how ``==``, ``!=``, ``>``, ``>=``, ``<`` and ``<=`` compare:

  - ``string`` (and any unknown type): as strings, by code point (``COLLATE "C"`` on
    PostgreSQL, SQLite's binary collation), case-sensitive.
  - ``number``: numerically. A stored value counts when it is a JSON number or a numeric
    string such as ``"12"``, ``"-3.5"``, ``"1e3"`` (no spaces, at most 100 characters); the
    condition's value must be such a string. Compared as NUMERIC on PostgreSQL and as REAL
    (double) on SQLite.
  - ``date``: by calendar date. Values are ISO 8601 ``YYYY-MM-DD`` (a real date), optionally
    followed by ``T`` or a space and ``hh:mm[:ss[.fff]]`` with an optional ``Z`` / ``±hh:mm``
    offset; only the date as written is compared (time and offset are ignored), so
    ``"2024-03-05T23:00:00Z" == "2024-03-05"``. The condition's value must be such a date.

  ``contain`` / ``does not contain`` search the stored value's text for any field type.

Operators:

* ``==``, ``>``, ``>=``, ``<``, ``<=`` and ``contain`` never match a contact whose value is
  missing, JSON ``null`` or, for a typed field, not parseable as a number / date.
* ``!=`` and ``does not contain`` are the exact complements of ``==`` and ``contain``: they
  DO match a contact whose value is missing, null or unparseable ("does not equal 12" is true
  of a contact without an age). So ``X == v OR X != v`` matches every contact.
* ``exist`` matches a value that is present, not null and not the empty string (whatever its
  type; ``value`` is ignored). Its complement is not an operator.
* Every item, hence the whole expression, is TRUE or FALSE, never NULL: ``sa.not_(expr)``
  selects exactly the contacts ``expr`` does not.
* ``contain`` is a case-sensitive substring test (LIKE with ``%``, ``_`` and the escape
  character escaped on PostgreSQL; ``instr()`` on SQLite, whose LIKE ignores ASCII case).
  The empty string is contained in every present value.
* Text of a non-string JSON value: numbers as written by the database, ``true`` / ``false``
  for booleans (on both databases).

Invalid conditions raise :class:`~engine.errors.ValidationFailed` with code
``INVALID_CONDITION`` and a message naming the problem.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.db import table_of
from engine.errors import ValidationFailed
from engine.models import Contact, ContactField, ContactTag, FieldType, Tag

#: The error code of every refused condition.
INVALID_CONDITION = "INVALID_CONDITION"
#: The contact lists API: "supports at most 10 filter conditions".
MAX_CONDITION_ITEMS = 10
#: The operators of the contact lists API, as they are spelled in a condition.
OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "exist", "contain", "does not contain")
#: ``field_name`` (lower-cased) of the built-in fields, and their column names.
BUILTIN_FIELDS = {"email": "email", "phone": "phone", "name": "name"}
#: ``field_name`` (lower-cased) of the tag pseudo-field.
TAG_FIELD = "tag"

#: A numeric text; the same pattern guards the SQL cast and validates condition values.
NUMBER_PATTERN = r"\A[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\Z"
#: Longer numeric texts are not numbers (keeps PostgreSQL's NUMERIC cast from overflowing).
MAX_NUMBER_LENGTH = 100
#: An ISO 8601 date (a real one: month lengths and leap years) with an optional time.
DATE_PATTERN = (
    r"\A(?!0000)"
    r"([0-9]{4}-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    r"|[0-9]{4}-(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|[0-9]{4}-02-(0[1-9]|1[0-9]|2[0-8])"
    r"|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?)?\Z"
)

_NUMBER_RE = re.compile(NUMBER_PATTERN)
_DATE_RE = re.compile(DATE_PATTERN)
#: JSON keys SQLite can address with a ``$."key"`` path (the JSON text holds them unescaped).
_PLAIN_KEY_RE = re.compile(r"[\x20-\x7e]+")
_ORDERED: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_COMPARISONS = frozenset({"==", "!=", *_ORDERED})
_TAG_OPS = frozenset({"==", "!=", "contain", "does not contain", "exist"})

Expr = sa.ColumnElement[Any]


@dataclass(frozen=True)
class _Item:
    position: int
    field_name: str
    op: str
    value: str | None

    def fail(self, problem: str) -> ValidationFailed:
        return _invalid(f"condition item {self.position} ({self.field_name!r}): {problem}")


def _invalid(message: str) -> ValidationFailed:
    """Return the :class:`ValidationFailed` (code ``INVALID_CONDITION``) for ``message``."""
    return ValidationFailed(message, code=INVALID_CONDITION)


def compile_condition(
    session: Session, organization_id: str, condition: Mapping[str, Any] | None
) -> sa.ColumnElement[bool]:
    """Validate a contact lists API condition and compile it to a boolean over the ``contacts``
    table.

    The expression does not filter on organization or list: the caller adds those. Tag
    and custom-field lookups are scoped to ``organization_id``. See the module docstring for
    the semantics of each field and operator.

    Args:
        session: a session on the store (reads the organization's custom fields; its
            dialect decides the SQL for JSON access, casts and substring tests).
        organization_id: the organization whose tags and custom fields the condition names.
        condition: ``{"relation": "and" | "or", "items": [...]}``; ``None``, ``{}`` or no
            items match every contact.

    Returns:
        A SQLAlchemy boolean expression (``sa.true()`` for an empty condition).

    Raises:
        ValidationFailed: code ``INVALID_CONDITION``, for a relation other than and/or, more
            than 10 items, an unknown operator or field, a value that is missing or not a
            string (except for ``exist``), or that is not a number / date for a number / date
            field.

    Example:
        >>> where = compile_condition(session, org_id, {"relation": "or", "items": [
        ...     {"field_name": "Email", "op": "contain", "value": "hotmail.com"}]})
        >>> session.scalars(sa.select(Contact.id).where(Contact.organization_id == org_id, where))
    """
    relation, items = _parse_condition(condition)
    if not items:
        return sa.true()
    dialect = session.get_bind().dialect.name
    types = _custom_field_types(session, organization_id, items)
    clauses = [_compile_item(item, organization_id, types, dialect) for item in items]
    return sa.and_(*clauses) if relation == "and" else sa.or_(*clauses)


def validate_condition(
    session: Session, organization_id: str, condition: Mapping[str, Any] | None
) -> None:
    """Raise ``ValidationFailed`` (``INVALID_CONDITION``) unless the condition compiles.

    For callers that store a condition to apply later (an audience, a bulk delete job).
    """
    compile_condition(session, organization_id, condition)


# --- parsing ---------------------------------------------------------------------------------


def _parse_condition(condition: Mapping[str, Any] | None) -> tuple[str, list[_Item]]:
    if condition is None:
        return "and", []
    if not isinstance(condition, Mapping):
        raise _invalid("condition must be an object with 'relation' and 'items'")
    raw_items = condition.get("items")
    relation = condition.get("relation")
    if raw_items is None:
        raw_items = []
    if not isinstance(raw_items, list):
        raise _invalid("condition 'items' must be a list")
    if relation is None and not raw_items:
        return "and", []
    if not isinstance(relation, str) or relation.strip().lower() not in ("and", "or"):
        raise _invalid(f"condition 'relation' must be 'and' or 'or', not {relation!r}")
    if len(raw_items) > MAX_CONDITION_ITEMS:
        raise _invalid(
            f"a condition has at most {MAX_CONDITION_ITEMS} items, this one has {len(raw_items)}"
        )
    items = [_parse_item(position, raw) for position, raw in enumerate(raw_items, start=1)]
    return relation.strip().lower(), items


def _parse_item(position: int, raw: Any) -> _Item:
    if not isinstance(raw, Mapping):
        raise _invalid(f"condition item {position} must be an object with field_name, op, value")
    field_name = raw.get("field_name")
    if not isinstance(field_name, str) or not field_name.strip() or "\x00" in field_name:
        raise _invalid(f"condition item {position}: 'field_name' must be a non-empty string")
    op = raw.get("op")
    normalized = " ".join(op.split()).lower() if isinstance(op, str) else None
    if normalized not in OPERATORS:
        raise _invalid(
            f"condition item {position} ({field_name!r}): unknown op {op!r}; "
            f"expected one of {', '.join(OPERATORS)}"
        )
    value = raw.get("value")
    if normalized == "exist":
        value = None
    elif not isinstance(value, str):
        raise _invalid(
            f"condition item {position} ({field_name!r}): op {normalized!r} needs a string "
            f"'value', got {'nothing' if value is None else type(value).__name__}"
        )
    elif "\x00" in value:
        raise _invalid(f"condition item {position} ({field_name!r}): value contains a NUL")
    return _Item(position, field_name, normalized, value)


def _custom_field_types(
    session: Session, organization_id: str, items: Sequence[_Item]
) -> dict[str, str]:
    names = {
        item.field_name
        for item in items
        if item.field_name.lower() not in BUILTIN_FIELDS and item.field_name.lower() != TAG_FIELD
    }
    if not names:
        return {}
    rows = session.execute(
        sa.select(col(ContactField.name), col(ContactField.type)).where(
            col(ContactField.organization_id) == organization_id,
            col(ContactField.name).in_(sorted(names)),
        )
    )
    return {name: type_ for name, type_ in rows}


# --- compiling -------------------------------------------------------------------------------


def _compile_item(
    item: _Item, organization_id: str, types: Mapping[str, str], dialect: str
) -> sa.ColumnElement[bool]:
    lowered = item.field_name.lower()
    if lowered == TAG_FIELD:
        return _tag_clause(item, organization_id)
    if lowered in BUILTIN_FIELDS:
        column: Expr = table_of(Contact).c[BUILTIN_FIELDS[lowered]]
        return _typed_clause(item, column, FieldType.string, dialect)
    field_type = types.get(item.field_name)
    if field_type is None:
        raise item.fail(
            f"unknown field {item.field_name!r}: not Email, Phone, Name, tag or a custom field "
            "of the organization"
        )
    return _typed_clause(item, _field_text(item.field_name, dialect), field_type, dialect)


def _tag_clause(item: _Item, organization_id: str) -> sa.ColumnElement[bool]:
    if item.op not in _TAG_OPS:
        raise item.fail(f"op {item.op!r} does not apply to tags; use ==, !=, contain, exist")
    contact_tags = table_of(ContactTag)
    tags = table_of(Tag)
    tagged = (
        sa.select(contact_tags.c.contact_id)
        .join(tags, tags.c.id == contact_tags.c.tag_id)
        .where(tags.c.organization_id == organization_id)
    )
    if item.op != "exist":
        tagged = tagged.where(tags.c.name == item.value)
    has = table_of(Contact).c.id.in_(tagged)
    return sa.not_(has) if item.op in ("!=", "does not contain") else has


def _typed_clause(item: _Item, text: Expr, field_type: str, dialect: str) -> sa.ColumnElement[bool]:
    """The clause for ``item`` on a value whose text (NULL when missing) is ``text``."""
    if item.op == "exist":
        return _definite(text != "", text)
    assert item.value is not None  # only exist goes without a value
    if item.op in ("contain", "does not contain"):
        found = _definite(_contains(text, item.value, dialect), text)
        return found if item.op == "contain" else sa.not_(found)
    if field_type == FieldType.number:
        key, bound = _number_key(item, text, dialect)
    elif field_type == FieldType.date:
        key, bound = _date_key(item, text), sa.literal(item.value.strip()[:10], sa.Text)
    else:
        key, bound = text, sa.literal(item.value, sa.Text)
    # A column is NULL exactly when its key is: test the column itself, so that the
    # clause stays ``col IS NOT NULL AND …`` and an index on the column serves it.
    operand = text if isinstance(text, sa.Column) else key
    if field_type != FieldType.number and dialect == "postgresql":
        # Code point order on both databases, whatever PostgreSQL's default collation. Also
        # for == and != (same result: default collations are deterministic) so that one
        # index per column, built COLLATE "C" (models/contact.py), serves every comparison.
        key = sa.collate(key, "C")
    if item.op in ("==", "!="):
        equal = _definite(key == bound, operand)
        return equal if item.op == "==" else sa.not_(equal)
    return _definite(_ORDERED[item.op](key, bound), operand)


def _definite(predicate: Expr, operand: Expr) -> sa.ColumnElement[bool]:
    """``predicate`` with NULL (``operand`` missing) read as false, so ``NOT`` complements it."""
    if isinstance(operand, sa.Column):
        # Keeps an index on the column usable.
        return sa.and_(operand.is_not(None), predicate)
    return sa.func.coalesce(predicate, sa.false(), type_=sa.Boolean)


def _contains(text: Expr, value: str, dialect: str) -> Expr:
    if dialect == "postgresql":
        # LIKE '%' || :value || '%' ESCAPE '/', with %, _ and / escaped in :value.
        return sa.type_coerce(text, sa.Text).contains(value, autoescape=True)
    # SQLite's LIKE ignores ASCII case; instr() is an exact substring test.
    return sa.func.instr(text, sa.literal(value, sa.Text)) > 0


def _number_key(item: _Item, text: Expr, dialect: str) -> tuple[Expr, Expr]:
    assert item.value is not None
    value = item.value.strip()
    if not is_number_text(value):
        raise item.fail(f"value {item.value!r} is not a number (the field's type is number)")
    sql_type: sa.types.TypeEngine[Any]
    if dialect == "postgresql":
        sql_type, bound = sa.Numeric(), sa.literal(Decimal(value), sa.Numeric())
    else:
        sql_type, bound = sa.Float(), sa.literal(float(value), sa.Float())
    # CASE guards the CAST (with an AND PostgreSQL may cast first, and raise).
    numeric = sa.and_(sa.func.length(text) <= MAX_NUMBER_LENGTH, text.regexp_match(NUMBER_PATTERN))
    return sa.case((numeric, sa.cast(text, sql_type)), else_=None), bound


def _date_key(item: _Item, text: Expr) -> Expr:
    assert item.value is not None
    if not is_date_text(item.value.strip()):
        raise item.fail(
            f"value {item.value!r} is not a date (the field's type is date; "
            "expected YYYY-MM-DD, optionally with a time)"
        )
    # YYYY-MM-DD texts sort as the dates do: compare the stored date part as text, no CAST.
    return sa.case((text.regexp_match(DATE_PATTERN), sa.func.substr(text, 1, 10)), else_=None)


def _field_text(key: str, dialect: str) -> Expr:
    """The text of custom field ``key`` of the contact: NULL when missing or JSON null."""
    fields = table_of(Contact).c.fields
    if dialect == "postgresql":
        return fields.op("->>", return_type=sa.Text)(sa.literal(key, sa.Text))
    if _PLAIN_KEY_RE.fullmatch(key) and '"' not in key and "\\" not in key:
        path = f'$."{key}"'
        return _sqlite_text(
            sa.func.json_type(fields, sa.literal(path, sa.Text)),
            sa.func.json_extract(fields, sa.literal(path, sa.Text)),
        )
    # Keys a path cannot name (quotes; escaped non-ASCII in the stored JSON): json_each
    # yields them decoded.
    each = sa.func.json_each(fields).table_valued("key", "value", "type")
    return (
        sa.select(_sqlite_text(each.c.type, each.c.value))
        .where(each.c.key == sa.literal(key, sa.Text))
        .scalar_subquery()
    )


def _sqlite_text(json_type: Expr, value: Expr) -> Expr:
    # SQLite returns JSON true/false as 1/0; spell them as PostgreSQL's ->> does.
    return sa.case(
        {"true": sa.literal("true", sa.Text), "false": sa.literal("false", sa.Text)},
        value=json_type,
        else_=sa.cast(value, sa.Text),
    )


def is_number_text(value: str) -> bool:
    """Return whether ``value`` is a number to conditions (``"12"``, ``"-3.5"``, ``"1e3"``)."""
    return len(value) <= MAX_NUMBER_LENGTH and _NUMBER_RE.search(value) is not None


def is_date_text(value: str) -> bool:
    """Return whether ``value`` is an ISO 8601 date, optionally with a time, to conditions."""
    return _DATE_RE.search(value) is not None
