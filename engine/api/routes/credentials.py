"""``/api/v1/api-keys`` and ``/api/v1/users``: an organization's credentials, listed and revoked.

Any credential of the organization (a user's token or an API key) administers it: the engine
has no roles. A revoked key and a disabled user's tokens answer 401 from the next request on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from engine.api.answers.auth import ApiKeyOut, UserOut
from engine.api.answers.base import Envelope, ok
from engine.api.deps import CurrentPrincipal, SessionDep
from engine.services import credentials as service

router = APIRouter(prefix="/api/v1", tags=["credentials"])

KeyId = Annotated[str, Path(min_length=1, max_length=32, description="the API key's id")]
UserId = Annotated[str, Path(min_length=1, max_length=32, description="the user's id")]


@router.get("/api-keys", response_model=Envelope[list[ApiKeyOut]])
def list_keys(session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The organization's API keys (prefix, last use, revocation; never the key)."""
    keys = service.list_api_keys(session, principal.organization_id)
    return ok([ApiKeyOut.of(k) for k in keys])


@router.post("/api-keys/{key_id}/revoke", response_model=Envelope[ApiKeyOut])
def revoke_key(key_id: KeyId, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Revoke an API key: it answers 401 at once (404 ``API_KEY_NOT_FOUND``; 409
    ``CURRENT_CREDENTIAL`` for the key making the request)."""
    org = principal.organization_id
    return ok(ApiKeyOut.of(service.revoke_api_key(session, org, key_id, principal.subject)))


@router.get("/users", response_model=Envelope[list[UserOut]])
def list_users(session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The organization's users."""
    return ok([UserOut.of(u) for u in service.list_users(session, principal.organization_id)])


@router.post("/users/{user_id}/disable", response_model=Envelope[UserOut])
def disable_user(
    user_id: UserId, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Disable a user: its logins, access and refresh tokens stop working at once (404
    ``USER_NOT_FOUND``; 409 ``CURRENT_CREDENTIAL`` for the user making the request)."""
    org = principal.organization_id
    return ok(UserOut.of(service.disable_user(session, org, user_id, principal.subject)))
