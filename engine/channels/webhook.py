"""The ``webhook`` channel: POSTs each message as JSON to the campaign's URL (aiohttp)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.errors import PermanentDeliveryError, TransientDeliveryError, ValidationFailed


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


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


def _json_or_none(raw: bytes) -> Any:
    """The body as JSON if it is JSON: a 2xx with any other body is still a success."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _classify(status: int, headers: Any, data: Any) -> str | None:
    """Map an HTTP answer to a provider id, or raise the matching delivery error."""
    if status < 300:
        return str(data["id"]) if isinstance(data, dict) and "id" in data else None
    if status == 429:
        raise TransientDeliveryError(
            "rate limited by the receiver", code="RATE_LIMITED", retry_after=_retry_after(headers)
        )
    if status >= 500:
        raise TransientDeliveryError(
            f"receiver answered {status}", code=f"HTTP_{status}", retry_after=_retry_after(headers)
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

    def __init__(self, loop: EventLoopThread, timeout_s: float, max_connections: int) -> None:
        self._loop = loop
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

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

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily on the event loop's own thread, where it must live.
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def send_async(self, message: OutgoingMessage) -> str | None:
        """POST the message; return the response's ``id`` field if it has one."""
        body = _body(message)
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key}
        secret = message.config.get("secret")
        if secret:
            digest = hmac.new(str(secret).encode(), body, hashlib.sha256).hexdigest()
            headers["X-Signature"] = f"sha256={digest}"
        try:
            async with self._client().post(message.config["url"], data=body, headers=headers) as r:
                raw = await r.read() if r.status < 300 else b""
                return _classify(r.status, r.headers, _json_or_none(raw))
        except TimeoutError as exc:
            raise TransientDeliveryError("timeout", code="TIMEOUT") from exc
        except aiohttp.ClientError as exc:
            raise TransientDeliveryError(f"network error: {exc}", code="NETWORK_ERROR") from exc

    def close(self) -> None:
        """Close the connection pool (on the loop that owns it)."""
        if self._session is not None:
            self._loop.run(self._session.close())
            self._session = None
