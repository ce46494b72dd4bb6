"""The Python SDK of the campaign-engine HTTP API (the SDK reference's ``client.campaign``).

Example:
    >>> from engine.client import Client
    >>> with Client("http://127.0.0.1:8000", api_key="ce_...") as client:
    ...     for c in client.campaign.list()["data"]:
    ...         print(c["_id"], c["name"], c["status"])
"""

from __future__ import annotations

from engine.client.campaigns import Campaigns
from engine.client.client import Client
from engine.client.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ServerError,
    ValidationError,
)
from engine.client.webhooks import Webhooks

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "AuthenticationError",
    "Campaigns",
    "Client",
    "ConflictError",
    "NotFoundError",
    "ServerError",
    "ValidationError",
    "Webhooks",
]
