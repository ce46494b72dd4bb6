"""The API's records (campaigns API: ``id``, camelCase) in the SDK's names (SDK reference: ``_id``,
snake).

Only top-level keys are renamed: nested objects (``statistics``, ``goals``, a message) are
returned as the API sends them, since their keys are data rather than field names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: API names that the SDK reference spells differently (beyond camelCase → snake_case).
RENAMED = {"id": "_id", "channel": "channel_type"}

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(name: str) -> str:
    """``createdAt`` → ``created_at``; ``id`` → ``_id``; ``channel`` → ``channel_type``."""
    return RENAMED.get(name) or _CAMEL_BOUNDARY.sub("_", name).lower()


def touchpoint(data: Mapping[str, Any]) -> dict[str, Any]:
    """A touchpoint as the SDK reference shows it: ``_id``, ``name``, ``type``, ``campaign_id``,
    ``created_at`` (and ``message``, ``delay``, ``position``)."""
    return {snake(key): value for key, value in data.items()}


def campaign(data: Mapping[str, Any]) -> dict[str, Any]:
    """A campaign as the SDK reference shows it: ``_id``, ``name``, ``status``, ``channel_type``,
    ``created_at``, ``updated_at`` (and the API's other fields, snake_cased)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "touchpoints" and isinstance(value, list):
            value = [touchpoint(tp) if isinstance(tp, Mapping) else tp for tp in value]
        out[snake(key)] = value
    return out


__all__ = ["RENAMED", "campaign", "snake", "touchpoint"]
