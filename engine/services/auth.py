"""Authentication: passwords and API keys (stored as :mod:`engine.hashing` says).

Every authenticated call resolves to a :class:`Principal`: the organization it acts for. Tokens
(JWT) are :mod:`engine.services.tokens`, attempt limits :mod:`engine.services.attempts`, and
listing and revoking keys and users :mod:`engine.services.credentials`.
"""

from __future__ import annotations

import secrets

from sqlmodel import Session, select

from engine.audience.lists import get_or_create_list
from engine.campaigns.campaign import get_or_create_organization
from engine.config import Settings
from engine.errors import AuthenticationFailed, ValidationFailed
from engine.hashing import (
    digest_key,
    hash_password,
    key_matches,
    key_needs_upgrade,
    password_needs_rehash,
    spend_password_check,
    verify_password,
)
from engine.models import ApiKey, ApiUser, Organization, User
from engine.models.base import utcnow
from engine.services.attempts import Attempts
from engine.services.tokens import Principal as Principal
from engine.services.tokens import Tokens as Tokens
from engine.services.tokens import authenticate_access_token
from engine.services.tokens import issue_tokens as issue_tokens
from engine.services.tokens import refresh as refresh

#: Prefix of every API key, so a leaked one is recognisable (and greppable).
KEY_PREFIX = "ce_"

#: What login and Basic auth check attempts under (separate namespaces of names).
LOGIN, BASIC = "login", "basic"


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
        organization_id=organization_id, username=username, password_hash=hash_password(password)
    )
    session.add(user)
    session.flush()
    return user


def create_api_key(session: Session, organization_id: str, name: str = "") -> tuple[ApiKey, str]:
    """Create an API key; return the row and the key itself (shown once, never stored)."""
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    row = ApiKey(
        organization_id=organization_id, name=name, prefix=prefix, key_hash=digest_key(key)
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
    if user is None:
        spend_password_check(password)
    if user is None or not verify_password(user.password_hash, password):
        raise AuthenticationFailed("wrong username or password", code="INVALID_CREDENTIALS")
    attempts.succeeded(LOGIN, username)
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)  # the configured cost changed
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


def create_api_user(
    session: Session, organization_id: str, list_name: str, api_user: str
) -> tuple[ApiUser, str]:
    """Create the contact lists API's ``api_user:api_key`` credential for a list (created if new).

    Returns:
        The row and the api_key itself (shown once, stored as its SHA-256 digest).

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
        key_hash=digest_key(key),
    )
    session.add(row)
    session.flush()
    return row, key


def authenticate_api_user(
    session: Session, api_user: str, api_key: str, attempts: Attempts
) -> ApiUser:
    """Resolve the contact lists API's Basic ``api_user:api_key`` to its credential (organization
    and list).

    The right key always passes, so someone guessing at a client's api_user cannot lock the
    client out; any other answer is attempt-limited (per api_user and per client address). A
    key still stored as an earlier argon2id hash is checked after the attempt is counted (argon2
    is slow on purpose) and then replaced by its digest.

    Raises:
        TooManyAttempts: too many failures lately.
        AuthenticationFailed: unknown user or wrong key.
    """
    row = session.exec(select(ApiUser).where(ApiUser.api_user == api_user)).first()
    if (
        row is not None
        and not key_needs_upgrade(row.key_hash)
        and key_matches(row.key_hash, api_key)
    ):
        return row
    attempts.begin(BASIC, api_user)
    if row is None or not key_matches(row.key_hash, api_key):
        raise AuthenticationFailed("Authentication failed", code="INVALID_API_USER")
    attempts.succeeded(BASIC, api_user)
    row.key_hash = digest_key(api_key)  # only an earlier argon2id hash gets here: upgrade it
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
    if not key_matches(row.key_hash, key):
        raise AuthenticationFailed("invalid API key", code="INVALID_API_KEY")
    if key_needs_upgrade(row.key_hash):
        row.key_hash = digest_key(key)  # an earlier argon2id hash: checked once, never again
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now  # at most once a minute: no write on every request
    return Principal(row.organization_id, row.id)
