"""What providers tell about the messages they were given: statuses, and the times they carry.

Each channel that receives status callbacks parses its provider's payload into
:class:`StatusUpdate` (``engine.channels.whatsapp.parse_statuses``); recording them is
``engine.integrations.events``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.errors import ValidationFailed
from engine.models.base import from_iso, utcnow

#: Most statuses one callback may carry.
MAX_STATUSES = 1000
#: How far in the future a reported time may be (clock skew).
MAX_CLOCK_SKEW = timedelta(hours=1)


@dataclass(frozen=True)
class StatusUpdate:
    """One status a provider reports for one of its messages."""

    provider_message_id: str
    status: str
    occurred_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


def parse_time(value: Any, *, strict: bool = True) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text or Unix seconds (a number or digits).

    Raises:
        ValidationFailed: ``INVALID_TIME`` for anything else (``None`` instead when not
            ``strict``), or a time more than an hour ahead.
    """
    if value is None:
        return None
    try:
        found = _to_datetime(value)
    except (ValueError, TypeError, OverflowError, OSError):
        if not strict:
            return None
        raise ValidationFailed(
            "a time is ISO 8601 (2024-06-01T10:00:00Z) or Unix seconds", code="INVALID_TIME"
        ) from None
    if found > utcnow() + MAX_CLOCK_SKEW:
        if not strict:
            return None
        raise ValidationFailed("the time is in the future", code="INVALID_TIME")
    return found


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(float(value), UTC)
    if not isinstance(value, str):
        raise TypeError(value)
    return from_iso(value)
