"""Access and refresh tokens (JWT, HS256) of a user's login, and their revocation.

A login starts a *family* (:class:`~engine.models.TokenFamily`). Its refresh tokens are used
once: each refresh marks the presented one used and issues the next of the family. Presenting a
used one again means two parties hold the chain (a stolen token, a replay): the whole family is
revoked, the thief's tokens and the owner's alike, and the owner logs in again. The family keeps
the expiry of its login: refreshing never extends it.

Every access token names its family (``fam``) and has a ``jti``; authenticating one reads its
user and family in one indexed query, so a disabled user or a revoked login stops at once.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.config import Settings
from engine.errors import AuthenticationFailed
from engine.logging import get_logger
from engine.models import RefreshToken, TokenFamily, User
from engine.models.base import as_utc, utcnow

log = get_logger()

_ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the organization, and the user or key acting for it."""

    organization_id: str
    subject: str


@dataclass(frozen=True)
class Tokens:
    """An access token, the refresh token that renews it, and the access token's lifetime."""

    token: str
    refresh_token: str
    #: Seconds the access token is valid.
    expires_in: int


def issue_tokens(session: Session, settings: Settings, principal: Principal) -> Tokens:
    """Start a new login of the user ``principal.subject``: a family and its first tokens."""
    family = TokenFamily(
        user_id=principal.subject,
        expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_s),
    )
    session.add(family)
    session.flush()  # before its first token refers to it (no ORM relationship orders them)
    return _next_tokens(session, settings, principal, family)


def refresh(session: Session, settings: Settings, refresh_token: str) -> Tokens:
    """Exchange a refresh token for the next tokens of its family (the token is used up).

    A refresh token presented a second time revokes its whole family; that revocation is
    committed even though the request fails.

    Raises:
        AuthenticationFailed: invalid or expired token (``INVALID_TOKEN``, ``TOKEN_EXPIRED``),
            the login was revoked or the user disabled (``TOKEN_REVOKED``, ``USER_DISABLED``),
            or the token was used before (``TOKEN_REUSED``).
    """
    claims = _decode(settings, refresh_token, "refresh")
    found = session.exec(
        select(RefreshToken, TokenFamily, User)
        .join(TokenFamily, col(TokenFamily.id) == RefreshToken.family_id)
        .join(User, col(User.id) == TokenFamily.user_id)
        .where(RefreshToken.jti == claims["jti"], TokenFamily.id == claims["fam"])
    ).first()
    if found is None or found[2].id != claims["sub"]:
        raise AuthenticationFailed("invalid token", code="INVALID_TOKEN")
    token, family, user = found
    _refuse_revoked(user.disabled_at, family.revoked_at)
    # A conditional update, not a read: of two refreshes racing with one token, one wins.
    used = session.execute(
        sa.update(RefreshToken)
        .where(col(RefreshToken.jti) == token.jti, col(RefreshToken.used_at).is_(None))
        .values(used_at=utcnow())
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        revoke_families(session, TokenFamily.id == family.id)
        # The request is refused (its unit of work rolls back): the revocation must stay.
        session.commit()
        log.warning(
            "auth.refresh_token_reused", family_id=family.id, user_id=user.id, jti=token.jti
        )
        raise AuthenticationFailed(
            "this refresh token was already used: the login is revoked, log in again",
            code="TOKEN_REUSED",
        )
    return _next_tokens(session, settings, Principal(user.organization_id, user.id), family)


def authenticate_access_token(session: Session, settings: Settings, token: str) -> Principal:
    """Resolve an access token: valid signature and expiry, user enabled, login not revoked.

    Raises:
        AuthenticationFailed: invalid, expired or revoked token, or a disabled user.
    """
    claims = _decode(settings, token, "access")
    # One indexed read: the family and its user, both by primary key.
    found = session.execute(
        sa.select(User.disabled_at, TokenFamily.revoked_at)  # type: ignore[call-overload]
        .join_from(TokenFamily, User, User.id == TokenFamily.user_id)
        .where(TokenFamily.id == claims["fam"], User.id == claims["sub"])
    ).first()
    if found is None:
        raise AuthenticationFailed("invalid token", code="INVALID_TOKEN")
    _refuse_revoked(found[0], found[1])
    return Principal(str(claims["org"]), str(claims["sub"]))


def revoke_families(session: Session, where: Any) -> None:
    """Revoke every live family matching ``where`` (a condition on :class:`TokenFamily`)."""
    session.execute(
        sa.update(TokenFamily)
        .where(where, col(TokenFamily.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def _refuse_revoked(disabled_at: datetime | None, revoked_at: datetime | None) -> None:
    if disabled_at is not None:
        raise AuthenticationFailed("this user is disabled", code="USER_DISABLED")
    if revoked_at is not None:
        raise AuthenticationFailed("this login was revoked; log in again", code="TOKEN_REVOKED")


def _next_tokens(
    session: Session, settings: Settings, principal: Principal, family: TokenFamily
) -> Tokens:
    jti = secrets.token_hex(16)
    session.add(RefreshToken(jti=jti, family_id=family.id))
    session.flush()
    now = int(time.time())
    family_end = int(as_utc(family.expires_at).timestamp())
    access_exp = min(now + settings.access_token_ttl_s, family_end)
    common = {"sub": principal.subject, "org": principal.organization_id, "fam": family.id}
    access = {**common, "typ": "access", "jti": secrets.token_hex(16)}
    return Tokens(
        token=_encode(settings, access, access_exp),
        refresh_token=_encode(settings, {**common, "typ": "refresh", "jti": jti}, family_end),
        expires_in=max(access_exp - now, 0),
    )


def _encode(settings: Settings, claims: dict[str, Any], exp: int) -> str:
    return jwt.encode(
        {**claims, "iat": int(time.time()), "exp": exp}, settings.secret_key, algorithm=_ALGORITHM
    )


def _decode(settings: Settings, token: str, kind: str) -> dict[str, Any]:
    """The claims of a token of ``kind`` signed with the secret key or one of its fallbacks."""
    for key in (settings.secret_key, *settings.secret_key_fallbacks):
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "sub", "org", "jti", "fam"]},
            )
        except jwt.InvalidSignatureError:
            continue  # maybe signed with an earlier key (rotation)
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationFailed("token expired", code="TOKEN_EXPIRED") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed("invalid token", code="INVALID_TOKEN") from exc
        if claims.get("typ") != kind:
            raise AuthenticationFailed(f"not an {kind} token", code="INVALID_TOKEN")
        return claims
    raise AuthenticationFailed("invalid token", code="INVALID_TOKEN")
