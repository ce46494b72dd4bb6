"""The links of a message step in the store: written once per execution step at its first
chunk's claim (never once per message), read when a link is clicked or unsubscribes.

:mod:`engine.integrations.links` seals and opens the tokens; this module gives them the row
they name (:class:`~engine.models.MessageLinks`) and resolves a token to what it is about.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog
from sqlmodel import Session, col

from engine.channels.http import is_http_url
from engine.config import Settings
from engine.db import insert_ignore, table_of
from engine.integrations.links import (
    ClickLink,
    LinkSigner,
    LinkTokens,
    SealedClick,
    SealedUnsubscribe,
    UnsubscribeLink,
    template_urls,
)
from engine.models import Execution, MessageLinks
from engine.models.base import utcnow

log = structlog.get_logger()


def link_tokens(settings: Settings) -> LinkTokens:
    """Tokens sealed under ``SECRET_KEY``, opened under it or any of its fallbacks."""
    return LinkTokens(settings.secret_key, settings.secret_key_fallbacks)


def step_links(
    session: Session, settings: Settings, execution: Execution, touchpoint_id: str, message: Any
) -> LinkSigner:
    """The signer of one step's links in ``execution``: its row is created by the first chunk
    claimed (the URLs of ``message`` numbered), then only read."""
    key = (col(MessageLinks.execution_id) == execution.id) & (
        col(MessageLinks.touchpoint_id) == touchpoint_id
    )
    query = sa.select(col(MessageLinks.id), col(MessageLinks.urls)).where(key)
    row = session.execute(query).first()
    if row is None:
        # Read first, insert only when missing: a conflicting insert would still use up a
        # sequence number on PostgreSQL, and these numbers are what keeps tokens short.
        table = table_of(MessageLinks)
        dialect = session.get_bind().dialect.name
        inserted = session.execute(
            insert_ignore(table, dialect).values(
                organization_id=execution.organization_id,
                campaign_id=execution.campaign_id,
                execution_id=execution.id,
                touchpoint_id=touchpoint_id,
                urls=template_urls(message),
                created_at=utcnow(),
            )
        )
        row = session.execute(query).one()  # ours, or the one a concurrent claim wrote
        if inserted.rowcount:  # type: ignore[attr-defined]
            ids = {"execution_id": execution.id, "touchpoint_id": touchpoint_id}
            log.info("message_links.created", links_id=row[0], **ids)
    links_id, urls = row
    return LinkSigner(link_tokens(settings), settings.public_base_url, int(links_id), urls)


def read_click(session: Session, tokens: LinkTokens, token: str) -> ClickLink | None:
    """The click a token stands for, or ``None`` if it is forged, altered or names nothing."""
    sealed = tokens.open_click(token)
    if not isinstance(sealed, SealedClick):
        return sealed
    links = session.get(MessageLinks, sealed.links_id)
    if links is None:
        return None
    if isinstance(sealed.target, str):
        url = sealed.target
    elif 0 <= sealed.target < len(links.urls):
        url = links.urls[sealed.target]
    else:
        return None
    if not is_http_url(url):
        return None
    return ClickLink(links.execution_id, links.touchpoint_id, sealed.contact_id, url)


def read_unsubscribe(session: Session, tokens: LinkTokens, token: str) -> UnsubscribeLink | None:
    """The unsubscription a token stands for, or ``None`` if it is not one of ours."""
    sealed = tokens.open_unsubscribe(token)
    if not isinstance(sealed, SealedUnsubscribe):
        return sealed
    links = session.get(MessageLinks, sealed.links_id)
    if links is None:
        return None
    return UnsubscribeLink(
        links.organization_id,
        links.campaign_id,
        links.execution_id,
        links.touchpoint_id,
        sealed.contact_id,
    )
