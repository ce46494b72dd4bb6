"""Authentication: passwords and API keys (argon2id hashes).

Every authenticated call resolves to a :class:`Principal`: the organization it acts for. Tokens
(JWT) are :mod:`engine.services.tokens`, attempt limits :mod:`engine.services.attempts`, and
listing and revoking keys and users :mod:`engine.services.credentials`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from engine.audience.lists import get_or_create_list
from engine.campaigns.campaign import get_or_create_organization
from engine.config import Settings
from engine.errors import AuthenticationFailed, ValidationFailed
from engine.models import ApiKey, ApiUser, Organization, User
from engine.models.base import utcnow
from engine.services.attempts import Attempts
from engine.services.tokens import Principal as Principal
from engine.services.tokens import Tokens as Tokens
from engine.services.tokens import authenticate_access_token
from engine.services.tokens import issue_tokens as issue_tokens
from engine.services.tokens import refresh as refresh

_hasher = PasswordHasher()
#: Prefix of every API key, so a leaked one is recognisable (and greppable).
KEY_PREFIX = "ce_"

#: What login and Basic auth check attempts under (separate namespaces of names).
LOGIN, BASIC = "login", "basic"


def _verify(hash_: str, secret: str) -> bool:
    try:
        return _hasher.verify(hash_, secret)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    """A hash no secret matches, computed once: unknown names cost as much as known ones."""
    return _hasher.hash(secrets.token_urlsafe(32))


def _verify_or_dummy(hash_: str | None, secret: str) -> bool:
    """Check ``secret`` against ``hash_``, or spend the same argon2 time when there is none."""
    if hash_ is None:
        _verify(_dummy_hash(), secret)
        return False
    return _verify(hash_, secret)


def create_user(session: Session, organization_id: str, username: str, password: str) -> User:
    """Create a user of the organization with a hashed password.

    Raises:
        ValidationFailed: empty username, short password, or the username is taken.
    """
    if not username or len(username) > 200:
        raise ValidationFailed("username must be 1 to 200 characters", code="INVALID_FIELD")
    if len(password) < 8:
        raise ValidationFailed("password must have at least 8 characters", code="WEAK_PASSWORD")
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise ValidationFailed(f"username {username!r} is taken", code="USERNAME_TAKEN")
    user = User(
        organization_id=organization_id, username=username, password_hash=_hasher.hash(password)
    )
    session.add(user)
    session.flush()
    return user


def create_api_key(session: Session, organization_id: str, name: str = "") -> tuple[ApiKey, str]:
    """Create an API key; return the row and the key itself (shown once, never stored)."""
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    row = ApiKey(
        organization_id=organization_id, name=name, prefix=prefix, key_hash=_hasher.hash(key)
    )
    session.add(row)
    session.flush()
    return row, key


def bootstrap(
    session: Session, organization: str, username: str, password: str
) -> tuple[Organization, User, str]:
    """Create an organization with its first user and API key (``campaign admin bootstrap``)."""
    org = get_or_create_organization(session, organization)
    user = create_user(session, org.id, username, password)
    _, key = create_api_key(session, org.id, name=f"{username} (bootstrap)")
    return org, user, key


def login(
    session: Session, settings: Settings, username: str, password: str, attempts: Attempts
) -> Tokens:
    """Check a user's password and start a login: fresh :class:`Tokens`.

    Unknown users cost the same argon2 time as known ones; failures count against the user and
    the client address (:mod:`engine.services.attempts`).

    Raises:
        TooManyAttempts: too many failures lately (counted before the password is checked).
        AuthenticationFailed: unknown user or wrong password (the same answer for both), or a
            disabled user (``USER_DISABLED``, only with the right password).
    """
    attempts.begin(LOGIN, username)
    user = session.exec(select(User).where(User.username == username)).first()
    if not _verify_or_dummy(user.password_hash if user else None, password):
        raise AuthenticationFailed("wrong username or password", code="INVALID_CREDENTIALS")
    assert user is not None
    attempts.succeeded(LOGIN, username)
    if user.disabled_at is not None:
        raise AuthenticationFailed("this user is disabled", code="USER_DISABLED")
    return issue_tokens(session, settings, Principal(user.organization_id, user.id))


def authenticate_bearer(session: Session, settings: Settings, credential: str) -> Principal:
    """Resolve ``Authorization: Bearer <credential>``: an access token or an API key.

    Raises:
        AuthenticationFailed: neither a valid access token nor an active API key.
    """
    if credential.startswith(KEY_PREFIX):
        return authenticate_api_key(session, credential)
    return authenticate_access_token(session, settings, credential)


class _VerifiedKeys:
    """Keys verified in the last ``ttl_s`` seconds, by SHA-256 of the key.

    argon2 is slow on purpose (~50 ms); paying it on every request of a machine client would
    cap the API at a few dozen requests per second. A key's row is still read every time, so
    a revoked key stops working at once.
    """

    def __init__(self, ttl_s: float = 300.0, size: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._size = size
        self._seen: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __contains__(self, item: tuple[str, str]) -> bool:
        digest, key_id = item
        with self._lock:
            entry = self._seen.get(digest)
            return entry is not None and entry[0] == key_id and entry[1] > time.monotonic()

    def add(self, digest: str, key_id: str) -> None:
        with self._lock:
            if len(self._seen) >= self._size:
                self._seen.clear()
            self._seen[digest] = (key_id, time.monotonic() + self._ttl_s)


_verified = _VerifiedKeys()


def create_api_user(
    session: Session, organization_id: str, list_name: str, api_user: str
) -> tuple[ApiUser, str]:
    """Create the contact lists API's ``api_user:api_key`` credential for a list (created if new).

    Returns:
        The row and the api_key itself (shown once, stored as an argon2id hash).

    Raises:
        ValidationFailed: the api_user name is taken or malformed.
    """
    if not api_user or len(api_user) > 100 or ":" in api_user:
        raise ValidationFailed(
            "api_user must be 1 to 100 characters without ':'", code="INVALID_FIELD"
        )
    if session.exec(select(ApiUser).where(ApiUser.api_user == api_user)).first() is not None:
        raise ValidationFailed(f"api_user {api_user!r} is taken", code="USERNAME_TAKEN")
    contact_list = get_or_create_list(session, organization_id, list_name)
    assert contact_list.id is not None
    key = secrets.token_urlsafe(24)
    row = ApiUser(
        organization_id=organization_id,
        list_id=contact_list.id,
        api_user=api_user,
        key_hash=_hasher.hash(key),
    )
    session.add(row)
    session.flush()
    return row, key


def authenticate_api_user(
    session: Session, api_user: str, api_key: str, attempts: Attempts
) -> ApiUser:
    """Resolve the contact lists API's Basic ``api_user:api_key`` to its credential (organization
    and list).

    A pair verified lately is recognised without argon2; any other check is attempt-limited and
    costs the same for unknown users.

    Raises:
        TooManyAttempts: too many failures lately (counted before the key is checked).
        AuthenticationFailed: unknown user or wrong key.
    """
    row = session.exec(select(ApiUser).where(ApiUser.api_user == api_user)).first()
    digest = hashlib.sha256(f"{api_user}:{api_key}".encode()).hexdigest()
    if row is not None and (digest, row.id) in _verified:
        return row
    attempts.begin(BASIC, api_user)
    if not _verify_or_dummy(row.key_hash if row else None, api_key):
        raise AuthenticationFailed("Authentication failed", code="INVALID_API_USER")
    assert row is not None
    attempts.succeeded(BASIC, api_user)
    _verified.add(digest, row.id)
    return row


def authenticate_api_key(session: Session, key: str) -> Principal:
    """Resolve an API key to its organization.

    Raises:
        AuthenticationFailed: unknown, wrong or revoked key.
    """
    parts = key.split("_")
    prefix = parts[1] if len(parts) >= 3 and key.startswith(KEY_PREFIX) else ""
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first() if prefix else None
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed("invalid API key", code="INVALID_API_KEY")
    digest = hashlib.sha256(key.encode()).hexdigest()
    if (digest, row.id) not in _verified:
        if not _verify(row.key_hash, key):
            raise AuthenticationFailed("invalid API key", code="INVALID_API_KEY")
        _verified.add(digest, row.id)
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now  # at most once a minute: no write on every request
    return Principal(row.organization_id, row.id)
