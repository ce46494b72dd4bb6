"""Signing bodies with a shared secret: ``sha256=<hex HMAC-SHA256>``, one definition.

Outgoing webhooks (campaign messages, lifecycle events) carry it as ``X-Signature``; incoming
provider callbacks are checked against it (in constant time).
"""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, body: bytes) -> str:
    """The signature header value of ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is ``body``'s signature with ``secret`` (case of the hex ignored)."""
    return hmac.compare_digest(header.strip().lower().encode(), sign(secret, body).encode())
