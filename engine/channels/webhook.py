"""The ``webhook`` channel: POSTs each message as JSON to the campaign's URL."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from engine.channels.base import OutgoingMessage
from engine.errors import PermanentDeliveryError, TransientDeliveryError, ValidationFailed


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class WebhookChannel:
    """POSTs ``{"idempotency_key", "execution_id", …, "to", "message"}`` to ``config["url"]``.

    Every request carries ``Idempotency-Key`` (stable across retries); with ``config["secret"]``
    it also carries ``X-Signature: sha256=<HMAC-SHA256 of the body>``. 2xx is sent, 429 and 5xx
    and network errors are transient (``Retry-After`` honoured), other 4xx are permanent.
    One ``httpx.Client`` (connection pool) serves the whole process.
    """

    name = "webhook"
    concurrent = True

    def __init__(self, timeout_s: float, max_connections: int) -> None:
        self._client = httpx.Client(
            timeout=timeout_s,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

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

    def send(self, message: OutgoingMessage) -> str | None:
        """POST the message; return the response's ``id`` field if it has one."""
        body = json.dumps(
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
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key}
        secret = message.config.get("secret")
        if secret:
            digest = hmac.new(str(secret).encode(), body, hashlib.sha256).hexdigest()
            headers["X-Signature"] = f"sha256={digest}"
        try:
            response = self._client.post(message.config["url"], content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(f"timeout: {exc}", code="TIMEOUT") from exc
        except httpx.TransportError as exc:
            raise TransientDeliveryError(f"network error: {exc}", code="NETWORK_ERROR") from exc
        return self._classify(response)

    @staticmethod
    def _classify(response: httpx.Response) -> str | None:
        status = response.status_code
        if status < 300:
            try:
                data = response.json()
            except ValueError:
                return None
            return str(data["id"]) if isinstance(data, dict) and "id" in data else None
        if status == 429:
            raise TransientDeliveryError(
                "rate limited by the receiver",
                code="RATE_LIMITED",
                retry_after=_retry_after(response),
            )
        if status >= 500:
            raise TransientDeliveryError(
                f"receiver answered {status}",
                code=f"HTTP_{status}",
                retry_after=_retry_after(response),
            )
        raise PermanentDeliveryError(f"receiver answered {status}", code=f"HTTP_{status}")

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
