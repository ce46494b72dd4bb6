"""Encrypting provider credentials at rest (Fernet: AES-128-CBC with HMAC-SHA256).

The key is derived from ``SECRET_KEY`` with HKDF and a purpose label, so the token-signing key
and the credential key differ though one setting configures both. Rotating ``SECRET_KEY``
makes stored credentials unreadable: re-enter them (``CREDENTIALS_UNREADABLE``).
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.errors import ValidationFailed

_PURPOSE = b"campaign-engine channel credentials v1"


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_json(secret_key: str, value: dict[str, Any]) -> str:
    """Encrypt a JSON object; the result is ASCII text safe to store."""
    return _fernet(secret_key).encrypt(json.dumps(value).encode()).decode()


def decrypt_json(secret_key: str, token: str) -> dict[str, Any]:
    """Decrypt what :func:`encrypt_json` made.

    Raises:
        ValidationFailed: ``CREDENTIALS_UNREADABLE`` (another key encrypted it, or it was altered).
    """
    try:
        value = json.loads(_fernet(secret_key).decrypt(token.encode()))
    except InvalidToken as exc:
        raise ValidationFailed(
            "stored credentials cannot be decrypted with this SECRET_KEY; enter them again",
            code="CREDENTIALS_UNREADABLE",
        ) from exc
    return dict(value)
