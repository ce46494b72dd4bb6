"""Column helpers shared by the table models: ids, timestamps, portable JSON and big integers."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

#: JSON everywhere, JSONB on PostgreSQL (indexable, compact).
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
#: 64-bit ids on PostgreSQL; SQLite only auto-increments a plain INTEGER primary key.
BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime (the store keeps UTC everywhere)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives stored times back without a zone)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """Format a stored UTC datetime as ISO 8601 with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    """Parse ISO 8601 text (``Z`` allowed) to an aware datetime; no zone means UTC.

    Raises:
        ValueError: not an ISO 8601 date-time.
    """
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def new_id(prefix: str) -> str:
    """Return a new, roughly time-ordered public id such as ``exe_18c2f3a1b2c3d4e5f6a7``.

    Args:
        prefix: short type tag (``org``, ``cmp``, ``tp``, ``exe``).
    """
    return f"{prefix}_{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


def json_column(**kwargs: Any) -> sa.Column[Any]:
    """Return a JSON (JSONB on PostgreSQL) column."""
    return sa.Column(JSONType, **kwargs)
