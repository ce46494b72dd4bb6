"""Encrypting credentials at rest (Fernet: AES-128-CBC with HMAC-SHA256).

The key is derived from ``SECRET_KEY`` with HKDF and a purpose label, so the token-signing key
and the credential key differ though one setting configures both. During a key rotation the
keys are ``SECRET_KEY`` then ``SECRET_KEY_FALLBACKS`` (:attr:`Settings.verification_keys`): the
first encrypts, every one decrypts (cryptography's ``MultiFernet``), and :func:`reencrypt`
moves a stored value to the first (``campaign admin rotate-secrets``). A value none of them
decrypts is ``CREDENTIALS_UNREADABLE``: re-enter it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.errors import ValidationFailed

#: ``SECRET_KEY`` alone, or it and its fallbacks (``Settings.verification_keys``): the first
#: encrypts and signs, all decrypt and verify.
SecretKeys = str | Sequence[str]

_PURPOSE = b"campaign-engine channel credentials v1"


def key_list(keys: SecretKeys) -> tuple[str, ...]:
    """``keys`` as a tuple, current key first.

    Raises:
        ValueError: no key at all (a configuration error, not the user's).
    """
    found = (keys,) if isinstance(keys, str) else tuple(keys)
    if not found:
        raise ValueError("no secret key given")
    return found


@lru_cache(maxsize=16)
def _derived(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_derived(k) for k in keys])


def encrypt_text(keys: SecretKeys, value: str) -> str:
    """Encrypt ``value`` under the current key; the result is ASCII text safe to store."""
    return _fernet(key_list(keys)).encrypt(value.encode()).decode()


def decrypt_text(keys: SecretKeys, token: str) -> str:
    """Decrypt what :func:`encrypt_text` made, under any of ``keys``.

    Raises:
        ValidationFailed: ``CREDENTIALS_UNREADABLE`` (no key of these encrypted it, or it was
            altered).
    """
    try:
        return _fernet(key_list(keys)).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValidationFailed(
            "stored credentials cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS; "
            "enter them again",
            code="CREDENTIALS_UNREADABLE",
        ) from exc


def encrypt_json(keys: SecretKeys, value: dict[str, Any]) -> str:
    """Encrypt a JSON object under the current key; the result is ASCII text safe to store."""
    return encrypt_text(keys, json.dumps(value))


def decrypt_json(keys: SecretKeys, token: str) -> dict[str, Any]:
    """Decrypt what :func:`encrypt_json` made, under any of ``keys``.

    Raises:
        ValidationFailed: ``CREDENTIALS_UNREADABLE`` (no key of these encrypted it, or it was
            altered).
    """
    return dict(json.loads(decrypt_text(keys, token)))


def reencrypt(keys: SecretKeys, token: str) -> str:
    """``token``'s value encrypted under the current key (the first of ``keys``).

    Raises:
        ValidationFailed: ``CREDENTIALS_UNREADABLE`` when no key of these decrypts it.
    """
    try:
        return _fernet(key_list(keys)).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise ValidationFailed(
            "a stored credential cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS",
            code="CREDENTIALS_UNREADABLE",
        ) from exc


def is_encrypted(keys: SecretKeys, value: str) -> bool:
    """Whether ``value`` is something :func:`encrypt_text` made under one of ``keys``."""
    try:
        _fernet(key_list(keys)).decrypt(value.encode())
    except InvalidToken:
        return False
    return True
