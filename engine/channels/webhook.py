"""The ``webhook`` channel: POSTs each message as JSON to the campaign's URL (aiohttp)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.channels.http import LazySession, post, retry_after
from engine.config import Settings
from engine.errors import PermanentDeliveryError, TransientDeliveryError, ValidationFailed
from engine.signing import sign


def _body(message: OutgoingMessage) -> bytes:
    return json.dumps(
        {
            "idempotency_key": message.idempotency_key,
            "execution_id": message.execution_id,
            "campaign_id": message.campaign_id,
            "touchpoint_id": message.touchpoint_id,
            "contact_id": message.contact_id,
            "to": message.recipient,
            "message": message.body,
        },
        default=str,
    ).encode()


def _classify(status: int, headers: Any, data: Any) -> str | None:
    """Map an HTTP answer to a provider id, or raise the matching delivery error."""
    if status < 300:
        return str(data["id"]) if isinstance(data, dict) and "id" in data else None
    if status == 429:
        raise TransientDeliveryError(
            "rate limited by the receiver", code="RATE_LIMITED", retry_after=retry_after(headers)
        )
    if status >= 500:
        raise TransientDeliveryError(
            f"receiver answered {status}", code=f"HTTP_{status}", retry_after=retry_after(headers)
        )
    raise PermanentDeliveryError(f"receiver answered {status}", code=f"HTTP_{status}")


class WebhookChannel:
    """POSTs ``{"idempotency_key", "execution_id", …, "to", "message"}`` to ``config["url"]``.

    Every request carries ``Idempotency-Key`` (stable across retries); with ``config["secret"]``
    it also carries ``X-Signature: sha256=<HMAC-SHA256 of the body>``. 2xx is sent; 429, 5xx and
    network errors are transient (``Retry-After`` honoured); other 4xx are permanent.
    One aiohttp session (connection pool) per process, on the process's event loop: aiohttp
    measured 5 to 8 times faster than httpx on loopback (``bench/http_clients.py``).
    """

    name = "webhook"

    @classmethod
    def from_settings(cls, settings: Settings, loop: EventLoopThread) -> WebhookChannel:
        """Build the process's instance from the settings (the registry calls this)."""
        return cls(loop, settings.http_timeout_s, settings.http_max_connections)

    def __init__(self, loop: EventLoopThread, timeout_s: float, max_connections: int) -> None:
        self._session = LazySession(loop, timeout_s, max_connections)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Require an http(s) ``url``."""
        url = config.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ValidationFailed(
                "webhook channel needs channel_config.url, an http(s) URL",
                code="INVALID_CHANNEL_CONFIG",
            )

    def rate_key(self, config: dict[str, Any]) -> str:
        """One key per destination host."""
        return f"webhook:{urlsplit(str(config.get('url', ''))).netloc}"

    async def send_async(self, message: OutgoingMessage) -> str | None:
        """POST the message; return the response's ``id`` field if it has one."""
        body = _body(message)
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key}
        secret = message.config.get("secret")
        if secret:
            headers["X-Signature"] = sign(str(secret), body)
        answer = await post(
            self._session.get(),
            message.config["url"],
            body,
            headers,
            read_errors=False,
            allow_redirects=True,
        )
        return _classify(answer.status, answer.headers, answer.data)

    def close(self) -> None:
        """Close the connection pool (on the loop that owns it)."""
        self._session.close()
