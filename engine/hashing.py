"""How credentials are stored: passwords as argon2id hashes, keys as SHA-256 digests.

People choose passwords, and people's choices are guessable: they are hashed slowly, with argon2id
(RFC 9106's low-memory profile by default; the cost is a setting, never below OWASP's minimum of
19 MiB, 2 passes). API keys and the contact lists API's api_keys are 192 random bits the engine
generated: no list of likely guesses exists for them, so a slow hash would add nothing but
latency to every request of a machine client. They are stored as SHA-256 digests
(``sha256$<hex>``) and compared in constant time. Keys stored by earlier versions as argon2id
hashes are still accepted, and replaced by their digest the first time they are used
(:func:`key_needs_upgrade`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.config import Settings

#: Prefix of a key's stored digest; anything else stored for a key is an earlier argon2id hash.
DIGEST_PREFIX = "sha256$"

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def configure(settings: Settings) -> None:
    """Hash new passwords with the argon2id cost ``settings`` names (for this whole process).

    Hashes stored under another cost still verify (argon2 reads the cost from the hash); a
    login replaces them (:func:`password_needs_rehash`).
    """
    global _hasher, _dummy_hash
    wanted = (
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )
    if wanted != (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism):
        _hasher = PasswordHasher(time_cost=wanted[0], memory_cost=wanted[1], parallelism=wanted[2])
        _dummy_hash = None


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` to store."""
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the stored argon2id hash (False for a malformed hash)."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def spend_password_check(password: str) -> None:
    """Spend one password check's time on a hash nothing matches: an unknown user name must
    cost what a known one does, or the answer's timing would tell which names exist."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(32))
    verify_password(_dummy_hash, password)


def password_needs_rehash(stored: str) -> bool:
    """Whether a stored password hash was made with another cost than the configured one."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def digest_key(key: str) -> str:
    """The SHA-256 digest to store for a generated key."""
    return DIGEST_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def key_matches(stored: str, key: str) -> bool:
    """Whether ``key`` matches what is stored for it: a digest, or an earlier argon2id hash."""
    if stored.startswith(DIGEST_PREFIX):
        return hmac.compare_digest(stored, digest_key(key))
    return verify_password(stored, key)


def key_needs_upgrade(stored: str) -> bool:
    """Whether a key is stored as an earlier (slow to check) argon2id hash."""
    return not stored.startswith(DIGEST_PREFIX)
