"""``/api/v1/auth``: log in with user and password, refresh tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engine.api.answers.auth import TokensOut
from engine.api.answers.base import Envelope, ok
from engine.api.deps import AttemptsDep, SessionDep, SettingsDep
from engine.api.openapi import ATTEMPT_LIMITED
from engine.api.schemas import LoginIn, RefreshIn
from engine.services import auth

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login", response_model=Envelope[TokensOut], responses=ATTEMPT_LIMITED)
def login(
    body: LoginIn, session: SessionDep, settings: SettingsDep, attempts: AttemptsDep
) -> dict[str, Any]:
    """Exchange user + password for ``token`` (access) and ``refresh_token``.

    Too many failures for the user or the client address answer 429 ``TOO_MANY_ATTEMPTS``
    with ``Retry-After``.
    """
    return ok(TokensOut.of(auth.login(session, settings, body.user, body.password, attempts)))


@router.post("/refresh", response_model=Envelope[TokensOut])
def refresh(body: RefreshIn, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Exchange a refresh token for new tokens; the one given is used up.

    Presenting a used refresh token again revokes its whole login (401 ``TOKEN_REUSED``).
    """
    return ok(TokensOut.of(auth.refresh(session, settings, body.refresh_token)))
