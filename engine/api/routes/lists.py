"""``/api/v1/lists``: an organization's contact lists (CSV import and export: ``contact_files``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import Field

from engine.api.deps import CurrentPrincipal, SessionDep
from engine.api.responses import Envelope, ListDeleted, ListOut, ok
from engine.api.schemas import MAX_ID, ApiModel
from engine.audience import lists as service

router = APIRouter(prefix="/api/v1/lists", tags=["contacts"])

#: A list id in the path: a positive 64-bit integer (the column's range).
ListId = Annotated[int, Path(ge=1, le=MAX_ID, description="the list's id")]


class ListIn(ApiModel):
    """A list to create."""

    name: str = Field(min_length=1, max_length=200, description="unique in the organization")


@router.get("", response_model=Envelope[list[ListOut]])
def list_all(session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The organization's lists by name, each with how many contacts it holds."""
    found = service.all_lists(session, principal.organization_id)
    sizes = service.list_sizes(session, [c.id for c in found if c.id is not None])
    return ok([ListOut.of(c, sizes.get(c.id or 0, 0)) for c in found])


@router.post("", status_code=201, response_model=Envelope[ListOut])
def create(body: ListIn, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Create an empty list (409 ``LIST_EXISTS`` when the name is taken)."""
    return ok(ListOut.of(service.create_list(session, principal.organization_id, body.name), 0))


@router.get("/{list_id}", response_model=Envelope[ListOut])
def get(list_id: ListId, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One list with its member count (404 ``LIST_NOT_FOUND``)."""
    found = service.get_list(session, principal.organization_id, list_id)
    return ok(ListOut.of(found, service.list_sizes(session, [list_id]).get(list_id, 0)))


@router.delete("/{list_id}", response_model=Envelope[ListDeleted])
def delete(list_id: ListId, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Delete a list together with its contacts and API users; says how many contacts went."""
    deleted = service.delete_list(session, principal.organization_id, list_id)
    return ok(ListDeleted(deleted_contacts=deleted))
