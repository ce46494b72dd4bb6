"""``/api/v1/auth``: log in with user and password, refresh tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engine.api.deps import SessionDep, SettingsDep
from engine.api.responses import Envelope, TokensOut, ok
from engine.api.schemas import LoginIn, RefreshIn
from engine.services import auth

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login", response_model=Envelope[TokensOut])
def login(body: LoginIn, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Exchange user + password for ``token`` (access) and ``refresh_token``."""
    return ok(TokensOut.of(auth.login(session, settings, body.user, body.password)))


@router.post("/refresh", response_model=Envelope[TokensOut])
def refresh(body: RefreshIn, settings: SettingsDep) -> dict[str, Any]:
    """Exchange a refresh token for new tokens."""
    return ok(TokensOut.of(auth.refresh(settings, body.refresh_token)))
