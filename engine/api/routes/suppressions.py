"""``/api/v1/suppressions``: addresses (emails, phone numbers) the organization never messages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import Field

from engine.api.deps import CurrentPrincipal, PageDep, SessionDep
from engine.api.responses import Envelope, Message, Pagination, SuppressionOut, SuppressionPage, ok
from engine.api.schemas import ADDRESS_SCHEMA, ApiModel
from engine.audience import subscriptions as service

router = APIRouter(prefix="/api/v1/suppressions", tags=["suppressions"])


class SuppressionsIn(ApiModel):
    """Addresses to suppress; all or nothing (one invalid address refuses the call)."""

    addresses: list[Annotated[str, Field(max_length=320, json_schema_extra=ADDRESS_SCHEMA)]] = (
        Field(min_length=1, max_length=service.MAX_SUPPRESS_BATCH, description="emails or phones")
    )
    reason: str = Field(default="manual", min_length=1, max_length=64)


@router.get("", response_model=Envelope[SuppressionPage])
def list_suppressions(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
) -> dict[str, Any]:
    """The suppression list, newest first, a page at a time."""
    found, total = service.list_suppressions(
        session, principal.organization_id, offset=page.offset, limit=page.limit
    )
    return ok(
        SuppressionPage(
            suppressions=[SuppressionOut.of(s) for s in found],
            pagination=Pagination.of(page.page, page.limit, total),
        )
    )


@router.post("", status_code=201, response_model=Envelope[list[SuppressionOut]])
def create(
    body: SuppressionsIn, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Suppress addresses (emails lower-cased); answers the stored entries, old ones unchanged.

    400 ``INVALID_ADDRESS`` names the first address that is neither an email nor a phone.
    """
    stored = service.suppress(session, principal.organization_id, body.addresses, body.reason)
    return ok([SuppressionOut.of(s) for s in stored])


@router.delete("/{address:path}", response_model=Envelope[Message])
def delete(
    address: Annotated[
        str,
        Path(
            min_length=1,
            max_length=320,
            description="an email or a phone, URL-encoded",
            json_schema_extra=ADDRESS_SCHEMA,
        ),
    ],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Take an address off the suppression list (404 ``SUPPRESSION_NOT_FOUND``)."""
    service.unsuppress(session, principal.organization_id, address)
    return ok({"message": "Suppression deleted successfully"})
