"""Engagement: provider status callbacks, conversions, and the click and unsubscribe links.

- ``GET/POST /api/v1/providers/whatsapp/{account_id}``: WhatsApp Cloud API webhook
  (verification, then ``X-Hub-Signature-256``-signed statuses).
- ``POST /api/v1/providers/{channel}/{account_id}/status``: any provider or relay, signed
  ``X-Signature: sha256=HMAC(callback_secret, body)``.
- ``POST /api/v1/events``: a conversion reported by the client (bearer auth).
- ``GET /c/{token}`` (click → 302) and ``GET/POST /u/{token}`` (unsubscribe page, one-click).

Telegram's Bot API reports no delivery or read receipts: telegram campaigns count clicks (none:
telegram messages are not rewritten) and conversions only. See docs/engagement.md.
"""

from __future__ import annotations

import hmac
import html
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from pydantic import Field
from sqlmodel import Session

from engine.api.answers.base import Envelope, ok
from engine.api.answers.integrations import ConversionOut, StatusReportOut
from engine.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from engine.api.errors import error_response
from engine.api.schemas import ApiModel, Id, Timestamp
from engine.channels.whatsapp import parse_statuses as parse_whatsapp_statuses
from engine.config import Settings
from engine.errors import NotFound, ValidationFailed
from engine.integrations import events as service
from engine.integrations import message_links
from engine.integrations.links import UnsubscribeLink

router = APIRouter(tags=["engagement"])


async def _raw_body(request: Request) -> bytes:
    """The request body as sent: signatures are over these exact bytes."""
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise ValidationFailed("the request body is not valid JSON", code="INVALID_JSON") from None


def _answer(report: service.StatusReport) -> Response | dict[str, Any]:
    """200 with the counts; 503 when some statuses are for messages not recorded yet, so the
    provider retries (those recorded now count once: they are deduplicated)."""
    counts = StatusReportOut.of(report)
    if report.pending:
        return error_response(
            503,
            "NOT_YET_RECORDED",
            f"{report.pending} status(es) for messages not recorded yet; retry later",
            report=counts.model_dump(),
        )
    return ok(counts)


# --- WhatsApp Cloud API ----------------------------------------------------------------------


@router.get(
    "/api/v1/providers/whatsapp/{account_id}",
    response_class=PlainTextResponse,
    response_model=None,
    responses={403: {"description": "wrong hub.mode or hub.verify_token"}},
)
def whatsapp_verify(
    account_id: str,
    session: SessionDep,
    settings: SettingsDep,
    mode: Annotated[str | None, Query(alias="hub.mode", max_length=100)] = None,
    verify_token: Annotated[str | None, Query(alias="hub.verify_token", max_length=500)] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=500)] = None,
) -> Response:
    """Webhook verification: echo ``hub.challenge`` when ``hub.verify_token`` is the account's
    ``verify_token`` secret; 403 otherwise."""
    _, secrets = service.callback_account(
        session, settings.verification_keys, "whatsapp", account_id
    )
    expected = secrets.get("verify_token")
    if mode != "subscribe" or challenge is None or not _same(verify_token, expected):
        return error_response(403, "VERIFICATION_FAILED", "wrong hub.mode or hub.verify_token")
    return PlainTextResponse(challenge)


def _same(given: str | None, expected: Any) -> bool:
    """Whether ``given`` is the secret ``expected``, compared in constant time."""
    if not isinstance(expected, str) or not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@router.post("/api/v1/providers/whatsapp/{account_id}", response_model=Envelope[StatusReportOut])
def whatsapp_webhook(
    account_id: str,
    session: SessionDep,
    settings: SettingsDep,
    body: RawBody,
    x_hub_signature_256: Annotated[str | None, Header(max_length=200)] = None,
) -> Response | dict[str, Any]:
    """Message statuses (``sent``, ``delivered``, ``read``, ``failed``), signed
    ``X-Hub-Signature-256: sha256=HMAC(app_secret, body)``; a bad signature is 401."""
    account, secrets = service.callback_account(
        session, settings.verification_keys, "whatsapp", account_id
    )
    service.check_signature(secrets.get("app_secret"), body, x_hub_signature_256)
    updates = parse_whatsapp_statuses(_json(body))
    report = service.record_statuses(session, account.organization_id, "whatsapp", updates)
    return _answer(report)


# --- any provider ----------------------------------------------------------------------------


@router.post(
    "/api/v1/providers/{channel}/{account_id}/status", response_model=Envelope[StatusReportOut]
)
def provider_status(
    channel: str,
    account_id: str,
    session: SessionDep,
    settings: SettingsDep,
    body: RawBody,
    x_signature: Annotated[str | None, Header(max_length=200)] = None,
) -> Response | dict[str, Any]:
    """Statuses from a provider or relay: ``{"provider_message_id", "status", "occurred_at"?}``
    or a list, signed ``X-Signature: sha256=HMAC(callback_secret, body)``."""
    account, secrets = service.callback_account(
        session, settings.verification_keys, channel, account_id
    )
    service.check_signature(secrets.get("callback_secret"), body, x_signature)
    updates = service.generic_statuses(_json(body))
    return _answer(service.record_statuses(session, account.organization_id, channel, updates))


# --- conversions -----------------------------------------------------------------------------


class EventIn(ApiModel):
    """A conversion reported by the client."""

    type: Literal["conversion"]
    contact_id: Id = Field(alias="contactId")
    campaign_id: str = Field(alias="campaignId", min_length=1, max_length=32)
    value: float | None = Field(default=None, ge=0, le=service.MAX_VALUE)
    occurred_at: Timestamp | None = Field(default=None, alias="occurredAt")
    event_id: str | None = Field(default=None, alias="eventId", min_length=1, max_length=100)


@router.post(
    "/api/v1/events",
    status_code=201,
    response_model=Envelope[ConversionOut],
    responses={200: {"description": "the event was recorded before (same eventId): as stored"}},
)
def post_event(
    body: EventIn, response: Response, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Record a conversion (201; 200 when its ``eventId`` was recorded before)."""
    conversion = service.Conversion(
        campaign_id=body.campaign_id,
        contact_id=body.contact_id,
        value=body.value,
        occurred_at=body.occurred_at.isoformat() if body.occurred_at else None,
        event_id=body.event_id,
    )
    event, created = service.record_conversion(session, principal.organization_id, conversion)
    if not created:
        response.status_code = 200
    return ok(ConversionOut.of(event))


# --- links in messages -----------------------------------------------------------------------


def _page(title: str, text: str, status: int = 200, form: bool = False) -> HTMLResponse:
    """A small HTML page; ``form``: a button that POSTs to this same URL."""
    button = (
        '<form method="post" action=""><button type="submit">Unsubscribe</button></form>'
        if form
        else ""
    )
    document = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{button}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={"Cache-Control": "no-store"})


def _invalid_link() -> HTMLResponse:
    return _page("Link not valid", "This link is not valid or has been altered.", status=404)


@router.get("/c/{token}", include_in_schema=False, response_model=None)
def click(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    """Record a click, then redirect (302) to the URL the sealed token names."""
    link = message_links.read_click(session, message_links.link_tokens(settings), token)
    if link is None:
        return _invalid_link()
    service.record_click(session, link.execution_id, link.touchpoint_id, link.contact_id, link.url)
    return RedirectResponse(link.url, status_code=302, headers={"Cache-Control": "no-store"})


@router.get("/u/{token}", include_in_schema=False, response_model=None)
def unsubscribe_page(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    """A confirmation page; nothing changes until its form is posted (link scanners GET)."""
    if _read_unsubscribe(session, settings, token) is None:
        return _invalid_link()
    return _page("Unsubscribe", "Do you want to stop receiving these messages?", form=True)


@router.post("/u/{token}", include_in_schema=False, response_model=None)
def unsubscribe(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    """Unsubscribe: the page's form, or RFC 8058 one-click (``List-Unsubscribe=One-Click``)."""
    link = _read_unsubscribe(session, settings, token)
    if link is None:
        return _invalid_link()
    return _unsubscribe(session, link)


def _read_unsubscribe(session: Session, settings: Settings, token: str) -> UnsubscribeLink | None:
    return message_links.read_unsubscribe(session, message_links.link_tokens(settings), token)


def _unsubscribe(session: Session, link: UnsubscribeLink) -> Response:
    try:
        service.record_unsubscribe(
            session,
            link.organization_id,
            link.campaign_id,
            link.execution_id,
            link.touchpoint_id,
            link.contact_id,
        )
    except NotFound:
        return _page("Unsubscribe", "You will not receive these messages any more.")
    return _page("Unsubscribed", "You will not receive these messages any more.")
