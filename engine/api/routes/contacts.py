"""``/api/v1/contacts``: the organization's contacts, searched by condition, and their consent."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import ConfigDict, Field
from sqlmodel import Session

from engine.api.deps import CurrentPrincipal, Page, PageDep, SessionDep
from engine.api.responses import ContactOut, ContactPage, Envelope, Message, Pagination, ok
from engine.api.schemas import (
    EMAIL_SCHEMA,
    MAX_ID,
    PHONE_SCHEMA,
    ApiModel,
    ConditionIn,
    Id,
    Integer,
)
from engine.audience import contacts as service
from engine.audience import subscriptions
from engine.audience.contact_data import tags_by_contact
from engine.models import Contact

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])

_ContactId = Annotated[int, Field(ge=1, le=MAX_ID)]
_Name = Annotated[str, Field(min_length=1, max_length=100)]


class ContactChange(ApiModel):
    """A contact's attributes; on update, only those given change."""

    email: Annotated[str, Field(max_length=320, json_schema_extra=EMAIL_SCHEMA)] | None = None
    phone: Annotated[str, Field(max_length=32, json_schema_extra=PHONE_SCHEMA)] | None = None
    name: str | None = Field(default=None, max_length=200)
    fields: dict[str, Any] | None = Field(
        default=None,
        max_length=200,
        json_schema_extra={"propertyNames": {"minLength": 1, "maxLength": 100}},
    )
    tags: list[_Name] | None = Field(default=None, max_length=100)


class ContactIn(ContactChange):
    """A new contact: ``email`` or ``phone``, optionally in the list ``listId``."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("email", "phone")
            ]
        }
    )

    list_id: Id | None = Field(default=None, alias="listId")


class SearchIn(ApiModel):
    """A condition search, optionally within one list."""

    condition: ConditionIn | None = None
    list_id: Id | None = Field(default=None, alias="listId")
    page: Integer = Field(default=1, ge=1, le=1_000_000)
    limit: Integer = Field(default=20, ge=1, le=100)


def _names(tags: list[tuple[int, str]]) -> list[str]:
    return [name for _, name in tags]


def _one(session: Session, contact: Contact) -> dict[str, Any]:
    assert contact.id is not None
    return ok(ContactOut.of(contact, _names(tags_by_contact(session, [contact.id])[contact.id])))


def _page(session: Session, contacts: list[Contact], page: Page, total: int) -> dict[str, Any]:
    tags = tags_by_contact(session, [c.id for c in contacts if c.id is not None])
    return ok(
        ContactPage(
            contacts=[ContactOut.of(c, _names(tags[c.id])) for c in contacts if c.id is not None],
            pagination=Pagination.of(page.page, page.limit, total),
        )
    )


@router.get("", response_model=Envelope[ContactPage])
def list_contacts(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    list_id: Annotated[int | None, Query(alias="listId", ge=1, le=MAX_ID)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    status: Literal["subscribed", "unsubscribed"] | None = None,
) -> dict[str, Any]:
    """List contacts by id: filter by list and subscription, search name, email and phone."""
    contacts, total = service.search_contacts(
        session,
        principal.organization_id,
        list_id=list_id,
        search=search,
        subscribed=None if status is None else status == "subscribed",
        offset=page.offset,
        limit=page.limit,
    )
    return _page(session, contacts, page, total)


@router.post("/search", response_model=Envelope[ContactPage])
def search(body: SearchIn, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Contacts matching a contact lists API condition (``relation``, up to 10 ``items``)."""
    contacts, total = service.search_contacts(
        session,
        principal.organization_id,
        condition=body.condition.model_dump() if body.condition else None,
        list_id=body.list_id,
        offset=(body.page - 1) * body.limit,
        limit=body.limit,
    )
    return _page(session, contacts, Page(body.page, body.limit), total)


@router.post("", status_code=201, response_model=Envelope[ContactOut])
def create(body: ContactIn, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Add a contact (email or phone required; unique email within a list: 409 otherwise)."""
    data = body.model_dump(exclude_none=True)
    return _one(session, service.create_contact(session, principal.organization_id, data))


@router.get("/{contact_id:int}", response_model=Envelope[ContactOut])
def get(contact_id: _ContactId, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One contact, with its tags and consent."""
    return _one(session, service.get_contact(session, principal.organization_id, contact_id))


@router.put("/{contact_id:int}", response_model=Envelope[ContactOut])
def update(
    contact_id: _ContactId, body: ContactChange, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change attributes: ``fields`` merge (``null`` removes a key), ``tags`` replace."""
    changes = body.model_dump(exclude_unset=True)
    contact = service.update_contact(session, principal.organization_id, contact_id, changes)
    return _one(session, contact)


@router.delete("/{contact_id:int}", response_model=Envelope[Message])
def delete(
    contact_id: _ContactId, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Delete a contact (its past deliveries stay counted)."""
    service.delete_contact(session, principal.organization_id, contact_id)
    return ok({"message": "Contact deleted successfully"})


@router.post("/{contact_id:int}/unsubscribe", response_model=Envelope[ContactOut])
def unsubscribe(
    contact_id: _ContactId, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Unsubscribe: never targeted again, and skipped by executions already running."""
    contact = subscriptions.unsubscribe(session, principal.organization_id, contact_id)
    return _one(session, contact)


@router.post("/{contact_id:int}/resubscribe", response_model=Envelope[ContactOut])
def resubscribe(
    contact_id: _ContactId, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Undo an unsubscription (only when the contact asked for it)."""
    contact = subscriptions.resubscribe(session, principal.organization_id, contact_id)
    return _one(session, contact)
