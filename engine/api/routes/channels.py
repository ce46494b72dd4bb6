"""``/api/v1/channels``: the organization's provider accounts (credentials stored encrypted)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from engine.api.answers.base import Envelope, Message, ok
from engine.api.answers.integrations import ChannelAccountList, ChannelAccountOut
from engine.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from engine.api.schemas import ApiModel, ChannelName
from engine.integrations import channel_accounts as service
from engine.outbound import OutboundPolicy

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


class AccountIn(ApiModel):
    """A provider account: the channel, a name (``default`` when omitted) and its settings."""

    channel: ChannelName
    name: str = Field(default="default", min_length=1, max_length=100)
    config: dict[str, Any] = Field(max_length=50)


class AccountChange(ApiModel):
    """Settings to change: given keys replace the stored ones, ``null`` removes one."""

    config: dict[str, Any] = Field(max_length=50)


@router.get("", response_model=Envelope[ChannelAccountList])
def list_accounts(session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Every account of the organization; secrets appear by name only."""
    accounts = service.list_accounts(session, principal.organization_id)
    return ok({"channels": [ChannelAccountOut.of(a) for a in accounts]})


@router.post("", status_code=201, response_model=Envelope[ChannelAccountOut])
def create(
    body: AccountIn, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Store an account; the channel checks the settings (400 ``INVALID_CHANNEL_CONFIG``; 400
    ``OUTBOUND_TARGET_REFUSED`` for a URL or host on an internal address)."""
    account = service.create_account(
        session,
        settings.verification_keys,
        principal.organization_id,
        body.channel,
        body.config,
        body.name,
        policy=OutboundPolicy.from_settings(settings),
    )
    return ok(ChannelAccountOut.of(account))


@router.get("/{account_id}", response_model=Envelope[ChannelAccountOut])
def get(account_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One account (secrets by name only)."""
    return ok(
        ChannelAccountOut.of(service.get_account(session, principal.organization_id, account_id))
    )


@router.put("/{account_id}", response_model=Envelope[ChannelAccountOut])
def update(
    account_id: str,
    body: AccountChange,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Change settings or rotate a secret."""
    account = service.update_account(
        session,
        settings.verification_keys,
        principal.organization_id,
        account_id,
        body.config,
        policy=OutboundPolicy.from_settings(settings),
    )
    return ok(ChannelAccountOut.of(account))


@router.delete("/{account_id}", response_model=Envelope[Message])
def delete(account_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Delete an account; campaigns that used it can no longer execute until another is set."""
    service.delete_account(session, principal.organization_id, account_id)
    return ok({"message": "Channel account deleted successfully"})
