"""An organization's credentials listed and revoked: API keys and users.

A revoked key or a disabled user stops at once: every request reads the key's row, and every
access or refresh token its user's and login's (:mod:`engine.services.tokens`).
"""

from __future__ import annotations

from sqlmodel import Session, select

from engine.db import get_owned
from engine.errors import Conflict, NotFound
from engine.logging import get_logger
from engine.models import ApiKey, TokenFamily, User
from engine.models.base import utcnow
from engine.services.tokens import revoke_families

log = get_logger()


def list_api_keys(session: Session, organization_id: str) -> list[ApiKey]:
    """The organization's API keys, revoked ones too, oldest first."""
    return list(
        session.exec(
            select(ApiKey)
            .where(ApiKey.organization_id == organization_id)
            .order_by(ApiKey.created_at, ApiKey.id)  # type: ignore[arg-type]
        )
    )


def revoke_api_key(
    session: Session, organization_id: str, key_id: str, caller: str | None = None
) -> ApiKey:
    """Revoke an API key of the organization: it answers 401 from the next request on.

    Revoking a revoked key changes nothing.

    Args:
        caller: the key or user asking (``Principal.subject``); ``None`` for an operator (CLI).

    Raises:
        NotFound: no such key in the organization.
        Conflict: the key asked to revoke itself (``CURRENT_CREDENTIAL``): a client would cut
            itself off mid-work; another key, a login or ``campaign admin revoke-key`` can.
    """
    key = get_owned(
        session, ApiKey, key_id, organization_id, what="API key", code="API_KEY_NOT_FOUND"
    )
    if key.id == caller:
        raise Conflict(
            "a key cannot revoke itself: use another key, a login or the CLI",
            code="CURRENT_CREDENTIAL",
        )
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        log.info("auth.api_key_revoked", organization_id=organization_id, key_id=key.id)
    return key


def list_users(session: Session, organization_id: str) -> list[User]:
    """The organization's users, disabled ones too, oldest first."""
    return list(
        session.exec(
            select(User)
            .where(User.organization_id == organization_id)
            .order_by(User.created_at, User.id)  # type: ignore[arg-type]
        )
    )


def disable_user(
    session: Session, organization_id: str, user_id: str, caller: str | None = None
) -> User:
    """Disable a user of the organization: no more logins, and its tokens stop working at once.

    Its logins are revoked too, so that enabling it again would not revive old tokens.
    Disabling a disabled user changes nothing.

    Args:
        caller: the key or user asking (``Principal.subject``); ``None`` for an operator (CLI).

    Raises:
        NotFound: no such user in the organization.
        Conflict: the user asked to disable itself (``CURRENT_CREDENTIAL``).
    """
    user = get_owned(session, User, user_id, organization_id, what="user", code="USER_NOT_FOUND")
    if user.id == caller:
        raise Conflict(
            "a user cannot disable itself: use another user, an API key or the CLI",
            code="CURRENT_CREDENTIAL",
        )
    if user.disabled_at is None:
        user.disabled_at = utcnow()
        revoke_families(session, TokenFamily.user_id == user.id)
        log.info("auth.user_disabled", organization_id=organization_id, user_id=user.id)
    return user


def find_user(session: Session, organization_id: str, username: str) -> User:
    """The organization's user named ``username``.

    Raises:
        NotFound: no such user in the organization.
    """
    user = session.exec(
        select(User).where(User.username == username, User.organization_id == organization_id)
    ).first()
    if user is None:
        raise NotFound(f"user {username!r} not found", code="USER_NOT_FOUND")
    return user
