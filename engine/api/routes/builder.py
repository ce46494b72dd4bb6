"""``/builder``: the bot platform's campaign module (bot campaigns API). See ``docs/builder.md``.

Successful answers are the bot campaigns API's bare shapes (no ``{"success", "data"}`` envelope):
the login tokens, the action object, the trigger's id as a bare number. Errors keep the API's
envelope ``{"success": false, "error": {"code", "message"}}``. The answers' models are in
``engine/api/bot_campaigns.py``, built from the bot services' domain objects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field
from sqlmodel import Session

from engine.api.answers.auth import BotTokens
from engine.api.answers.bot_campaigns import ActionOut, BotOut, CsvResponse, TriggerId, TriggerOut
from engine.api.deps import AttemptsDep, CurrentPrincipal, SessionDep, SettingsDep
from engine.api.openapi import ATTEMPT_LIMITED
from engine.api.schemas import MAX_ID, ApiModel, ChannelName, LoginIn, RefreshIn
from engine.bots import actions as service
from engine.bots import triggers
from engine.errors import AuthenticationFailed
from engine.models import Bot, CampaignAction
from engine.services import auth
from engine.services.auth import Principal

router = APIRouter(prefix="/builder", tags=["bot campaigns"])
_bearer = HTTPBearer(auto_error=False, description="An access token or an API key")

OrgName = Annotated[str, Path(min_length=1, max_length=200, description="Nome da organização")]
BotName = Annotated[str, Path(min_length=1, max_length=200, description="Nome do bot")]
ActionId = Annotated[str, Path(min_length=1, max_length=32, description="the action's _id")]


class BotIn(ApiModel):
    """A bot of the caller's organization."""

    name: str = Field(min_length=1, max_length=200)
    channel: ChannelName
    account: str | None = Field(
        default=None, max_length=100, description="the channel account it sends with"
    )


class ActionIn(ApiModel):
    """The bot campaigns API's campaign action. ``_id``, ``organization``, ``bot_name``, ``status``,
    ``creation_date`` and ``log_file`` are set by the engine: given values are ignored."""

    id: str | None = Field(default=None, alias="_id", max_length=200)
    organization: str | None = Field(default=None, max_length=200)
    scheduled_date: str | None = Field(default=None, max_length=100, description="ISO 8601")
    campaign_name: str = Field(default="", max_length=200)
    status: Literal["concluded", "in_progress", "not_started", "error"] = "not_started"
    bot_name: str | None = Field(default=None, max_length=200)
    creation_date: str | None = Field(default=None, max_length=100)
    description: str = Field(default="", max_length=2000)
    name: str = Field(default="", max_length=200)
    file: str | None = Field(default=None, description="a CSV as a data: URL or base64")
    content: str = Field(default="", max_length=10_000, description="the message (Jinja)")
    sheet_values: list[str] = Field(default_factory=list, description="CSV lines, a header first")
    log_file: str | None = Field(default=None, max_length=2000)


class TriggerIn(ApiModel):
    """The bot campaigns API's trigger: any data, under ``json``."""

    json_: dict[str, Any] = Field(default_factory=dict, alias="json")


def api_key_principal(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    apikey: Annotated[str | None, Query(max_length=500, description="an API key")] = None,
) -> Principal:
    """``?apikey=<API key>`` (as documented), else ``Authorization: Bearer``.

    Raises:
        AuthenticationFailed: neither, or a wrong one (401).
    """
    if apikey is not None:
        return auth.authenticate_api_key(session, apikey)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("give ?apikey= or Authorization: Bearer", code="UNAUTHORIZED")
    return auth.authenticate_bearer(session, settings, credentials.credentials)


ApiKeyPrincipal = Annotated[Principal, Depends(api_key_principal)]


@router.post("/login", responses=ATTEMPT_LIMITED)
def login(
    body: LoginIn, session: SessionDep, settings: SettingsDep, attempts: AttemptsDep
) -> BotTokens:
    """Login: ``{"user", "password"}`` → ``{"token", "refresh_token"}`` (401 when wrong)."""
    tokens = auth.login(session, settings, body.user, body.password, attempts)
    return BotTokens(token=tokens.token, refresh_token=tokens.refresh_token)


@router.post("/refresh")
def refresh(body: RefreshIn, session: SessionDep, settings: SettingsDep) -> BotTokens:
    """A refresh token → new ``{"token", "refresh_token"}`` (the one given is used up)."""
    tokens = auth.refresh(session, settings, body.refresh_token)
    return BotTokens(token=tokens.token, refresh_token=tokens.refresh_token)


@router.post("/bots", status_code=201)
def create_bot(body: BotIn, session: SessionDep, principal: CurrentPrincipal) -> BotOut:
    """Create a bot of the caller's organization (409 ``BOT_EXISTS``)."""
    bot = service.create_bot(
        session, principal.organization_id, body.name, body.channel, body.account
    )
    return BotOut.of(bot)


@router.get("/bots")
def list_bots(session: SessionDep, principal: CurrentPrincipal) -> list[BotOut]:
    """The caller's organization's bots."""
    return [BotOut.of(b) for b in service.list_bots(session, principal.organization_id)]


def _actions_path(organization: str, bot: Bot) -> str:
    return f"/builder/organizations/{organization}/bots/{bot.name}/campaigns"


def _document(session: Session, action: CampaignAction, organization: str, bot: Bot) -> ActionOut:
    return ActionOut.of(
        action,
        organization=organization,
        bot=bot,
        log_file=f"{_actions_path(organization, bot)}/{action.id}/log",
        counts=service.counts(session, action),
    )


@router.post("/organizations/{organization_name}/bots/{bot_name}/campaigns", status_code=201)
def create_action(
    organization_name: OrgName,
    bot_name: BotName,
    body: ActionIn,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> ActionOut:
    """Criar ação de campanha: schedule ``content`` to the sheet's rows at ``scheduled_date``."""
    org, bot = service.resolve_bot(session, principal.organization_id, organization_name, bot_name)
    data = service.ActionInput(
        content=body.content,
        campaign_name=body.campaign_name,
        name=body.name,
        description=body.description,
        scheduled_date=body.scheduled_date,
        file=body.file,
        sheet_values=body.sheet_values,
    )
    action = service.create_action(
        session, settings.verification_keys, bot, data, created_by=principal.subject
    )
    return _document(session, action, org.name, bot)


@router.get("/organizations/{organization_name}/bots/{bot_name}/campaigns")
def list_actions(
    organization_name: OrgName, bot_name: BotName, session: SessionDep, principal: CurrentPrincipal
) -> list[ActionOut]:
    """The bot's campaign actions, newest first."""
    org, bot = service.resolve_bot(session, principal.organization_id, organization_name, bot_name)
    return [_document(session, a, org.name, bot) for a in service.list_actions(session, bot)]


@router.get("/organizations/{organization_name}/bots/{bot_name}/campaigns/{action_id}")
def get_action(
    organization_name: OrgName,
    bot_name: BotName,
    action_id: ActionId,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> ActionOut:
    """One action, its ``status`` read from its execution (404 ``ACTION_NOT_FOUND``)."""
    org, bot = service.resolve_bot(session, principal.organization_id, organization_name, bot_name)
    return _document(session, service.get_action(session, bot, action_id), org.name, bot)


@router.post("/organizations/{organization_name}/bots/{bot_name}/campaigns/{action_id}/cancel")
def cancel_action(
    organization_name: OrgName,
    bot_name: BotName,
    action_id: ActionId,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> ActionOut:
    """Cancel an action that has not finished (409 ``CANNOT_CANCEL`` once it has)."""
    org, bot = service.resolve_bot(session, principal.organization_id, organization_name, bot_name)
    return _document(session, service.cancel_action(session, bot, action_id), org.name, bot)


@router.get(
    "/organizations/{organization_name}/bots/{bot_name}/campaigns/{action_id}/log",
    response_class=CsvResponse,
)
def download_log(
    organization_name: OrgName,
    bot_name: BotName,
    action_id: ActionId,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> CsvResponse:
    """The log file (CSV): ``recipient,status,error_code,time,detail``, one row per recipient."""
    _, bot = service.resolve_bot(session, principal.organization_id, organization_name, bot_name)
    action = service.get_action(session, bot, action_id)
    return CsvResponse(
        service.log_csv(session, action),
        headers={"Content-Disposition": f'attachment; filename="{action.id}.csv"'},
    )


@router.post("/triggers", status_code=201)
def fire_trigger(
    body: TriggerIn, session: SessionDep, settings: SettingsDep, principal: ApiKeyPrincipal
) -> TriggerId:
    """Gerar acionamento: fire an action now with ``json``; answers the trigger's id."""
    trigger = triggers.fire_trigger(
        session,
        settings.verification_keys,
        principal.organization_id,
        body.json_,
        created_by=principal.subject,
    )
    assert trigger.id is not None
    return trigger.id


@router.get("/triggers/{trigger_id}")
def get_trigger(
    trigger_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: SessionDep,
    principal: ApiKeyPrincipal,
) -> TriggerOut:
    """Buscar acionamento: its status and deliveries (``?apikey=``; 401 when wrong)."""
    trigger = triggers.get_trigger(session, principal.organization_id, trigger_id)
    return TriggerOut.of(triggers.trigger_report(session, trigger))
