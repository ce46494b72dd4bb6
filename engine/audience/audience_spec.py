"""A campaign's ``targetAudience`` document: its shape checked and parsed into an
:class:`AudienceSpec`.

What each part matches, and how it becomes SQL, is :mod:`engine.audience.targeting`. A
malformed document is refused with ``INVALID_AUDIENCE`` when it is stored; one stored before it
was checked is read as an audience of nobody that says why (:func:`campaign_audience`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.audience.conditions import MAX_CONDITION_ITEMS
from engine.errors import ValidationFailed
from engine.models import Campaign

#: Error code of a malformed ``targetAudience``.
INVALID_AUDIENCE = "INVALID_AUDIENCE"
#: The keys ``targetAudience`` may hold (``totalCount`` is computed and ignored on input).
AUDIENCE_KEYS = frozenset({"segments", "lists", "tags", "filters", "condition", "totalCount"})
#: Most entries of each ``targetAudience`` part.
MAX_PARTS = 100


@dataclass(frozen=True)
class AudienceSpec:
    """A parsed ``targetAudience``."""

    segments: tuple[str, ...] = ()
    lists: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    filters: Mapping[str, Any] = field(default_factory=dict)
    condition: Mapping[str, Any] | None = None
    #: Why a stored ``targetAudience`` cannot be read (it then matches nobody).
    invalid: str | None = None


def _invalid(message: str) -> ValidationFailed:
    """The error of a malformed ``targetAudience`` part."""
    return ValidationFailed(f"targetAudience: {message}", code=INVALID_AUDIENCE)


def _names(raw: Any, key: str) -> tuple[str, ...]:
    """The names of a ``segments`` or ``tags`` part, checked, without repeats."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_PARTS:
        raise _invalid(f"{key} must be a list of at most {MAX_PARTS} entries")
    if not all(isinstance(v, str) and 0 < len(v) <= 200 for v in raw):
        raise _invalid(f"{key} must hold names of 1 to 200 characters")
    return tuple(dict.fromkeys(raw))


def parse_audience(raw: Any) -> AudienceSpec:
    """Check the shape of a ``targetAudience`` and return it parsed.

    Raises:
        ValidationFailed: code ``INVALID_AUDIENCE`` naming the part that is malformed.
    """
    if raw is None:
        return AudienceSpec()
    if not isinstance(raw, dict):
        raise _invalid("must be an object")
    unknown = set(raw) - AUDIENCE_KEYS
    if unknown:
        raise _invalid(f"unknown key(s) {sorted(unknown)}; known: {sorted(AUDIENCE_KEYS)}")
    lists = raw.get("lists") or []
    if (
        not isinstance(lists, list)
        or len(lists) > MAX_PARTS
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in lists)
    ):
        raise _invalid(f"lists must be a list of at most {MAX_PARTS} list ids (integers)")
    filters = raw.get("filters") or {}
    if not isinstance(filters, dict) or len(filters) > MAX_PARTS:
        raise _invalid(f"filters must be an object of at most {MAX_PARTS} fields")
    for name, value in filters.items():
        filter_items(name, value)  # raises on a malformed value
    condition = raw.get("condition")
    if condition is not None and not isinstance(condition, dict):
        raise _invalid("condition must be an object with relation and items")
    return AudienceSpec(
        segments=_names(raw.get("segments"), "segments"),
        lists=tuple(dict.fromkeys(lists)),
        tags=_names(raw.get("tags"), "tags"),
        filters=filters,
        condition=condition,
    )


def checked_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Campaign ``details`` ready to store: ``targetAudience`` checked, its ``totalCount`` dropped.

    Raises:
        ValidationFailed: ``INVALID_AUDIENCE`` for a malformed ``targetAudience``.
    """
    result = dict(details or {})
    target = result.get("targetAudience")
    if target is not None:
        parse_audience(target)
        result["targetAudience"] = {k: v for k, v in target.items() if k != "totalCount"}
    return result


def _text(value: Any) -> str:
    """A filter value as a condition value (conditions compare typed fields from text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise _invalid(f"filter values must be text, numbers or booleans (got {value!r})")


def filter_items(name: str, value: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """One filter as contact lists API conditions, all of which must hold: ``[(relation,
    items)]``. ``false`` ("not set") gives none: the caller negates ``exist`` itself.

    Raises:
        ValidationFailed: ``INVALID_AUDIENCE`` for a malformed filter name or value.
    """
    if not name or len(name) > 100:
        raise _invalid("filter names have 1 to 100 characters")
    if isinstance(value, bool):
        return [("and", [{"field_name": name, "op": "exist"}])] if value else []
    if name.endswith("Range") and len(name) > 5 and isinstance(value, list):
        if len(value) != 2 or all(v is None for v in value):
            raise _invalid(f"{name} must be [low, high] (either may be null)")
        target = name[: -len("Range")]
        bounds = [(">=", value[0]), ("<=", value[1])]
        items = [
            {"field_name": target, "op": op, "value": _text(v)} for op, v in bounds if v is not None
        ]
        return [("and", items)]
    if isinstance(value, list):
        if not value or len(value) > MAX_PARTS:
            raise _invalid(f"filter {name!r} must list 1 to {MAX_PARTS} values")
        items = [{"field_name": name, "op": "==", "value": _text(v)} for v in value]
        groups = range(0, len(items), MAX_CONDITION_ITEMS)
        return [("or", items[i : i + MAX_CONDITION_ITEMS]) for i in groups]
    return [("and", [{"field_name": name, "op": "==", "value": _text(value)}])]


def campaign_audience(campaign: Campaign) -> AudienceSpec:
    """The campaign's stored ``targetAudience``, parsed.

    One stored before it was checked, and now unreadable, targets nobody and says why
    (validate reports it, execute refuses it): reading a campaign never fails on it.
    """
    try:
        return parse_audience((campaign.details or {}).get("targetAudience"))
    except ValidationFailed as exc:
        return AudienceSpec(invalid=exc.message)
