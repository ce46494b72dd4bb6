"""Dependencies declared once: the settings, a unit of work, the calling organization."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from engine.config import Settings
from engine.db import session_scope
from engine.errors import AuthenticationFailed
from engine.services.attempts import Attempts
from engine.services.auth import Principal, authenticate_bearer

_bearer = HTTPBearer(auto_error=False, description="An access token or an API key")


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed if the route returns, rolled back if it raises.

    Declared with ``scope="function"``: the commit happens when the route function returns,
    before the response is sent, so an answered write is a committed write and a commit that
    fails is answered as an error, never as a success.
    """
    with session_scope(request.app.state.engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_principal(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Who is calling: ``Authorization: Bearer <access token | API key>``.

    Raises:
        AuthenticationFailed: no or bad credentials (401).
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("missing Authorization: Bearer header", code="UNAUTHORIZED")
    return authenticate_bearer(session, settings, credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def get_attempts(request: Request) -> Attempts:
    """The attempt limits of password checks, for the calling client's address.

    The address is the connection's peer: behind a reverse proxy, run uvicorn with
    ``--proxy-headers`` and ``FORWARDED_ALLOW_IPS`` so that it is the real client's.
    """
    address = request.client.host if request.client else "unknown"
    return request.app.state.attempts.for_client(address)  # type: ignore[no-any-return]


AttemptsDep = Annotated[Attempts, Depends(get_attempts)]


@dataclass(frozen=True)
class Page:
    """Which page of a list the caller asks for (``page`` from 1, ``limit`` up to 100)."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.limit


def get_page(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page:
    """``?page=&limit=`` of a list route."""
    return Page(page, limit)


PageDep = Annotated[Page, Depends(get_page)]
