"""``client.webhooks``: lifecycle event subscriptions (the campaigns API's webhooks) and their
log."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from engine.client.http import Transport

_WEBHOOKS = "/api/v1/webhooks"
#: Several records (an alias: inside the class, ``list`` names the method).
Records = list[dict[str, Any]]


class Webhooks:
    """Subscriptions of the caller's organization to ``campaign.*`` events.

    Example:
        >>> hook = client.webhooks.create("https://example.com/hook", ["campaign.completed"])
        >>> hook["secret"]  # shown once: verify X-Signature = sha256=HMAC(secret, body)
    """

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, url: str, events: list[str], secret: str | None = None) -> dict[str, Any]:
        """Subscribe ``url`` to ``events``; the answer holds the signing ``secret`` (once)."""
        body: dict[str, Any] = {"url": url, "events": events}
        if secret is not None:
            body["secret"] = secret
        return dict(self._t.request("POST", _WEBHOOKS, body))

    def list(self) -> Records:
        """The organization's subscriptions."""
        return list(self._t.request("GET", _WEBHOOKS))

    def get(self, webhook_id: str) -> dict[str, Any]:
        """One subscription (without its secret)."""
        return dict(self._t.request("GET", f"{_WEBHOOKS}/{quote(webhook_id, safe='')}"))

    def delete(self, webhook_id: str) -> None:
        """Stop sending to a subscription (its log stays readable)."""
        self._t.request("DELETE", f"{_WEBHOOKS}/{quote(webhook_id, safe='')}")

    def deliveries(self, webhook_id: str, limit: int = 50) -> Records:
        """The delivery log, newest first: event, status, attempts, last status code."""
        path = f"{_WEBHOOKS}/{quote(webhook_id, safe='')}/deliveries"
        return list(self._t.request("GET", path, params={"limit": limit}))
