"""Answers about who campaigns reach: contacts, lists, segments, suppressions, CSV imports."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.api.answers.base import Pagination, Time, WireModel
from engine.audience.contact_import import ImportResult
from engine.models import (
    Contact,
    ContactList,
    Segment,
    Suppression,
)


class ContactOut(WireModel):
    """A contact, its tags and consent."""

    id: int
    list_id: int | None
    email: str | None
    phone: str | None
    name: str | None
    fields: dict[str, Any]
    tags: list[str]
    subscribed: bool
    unsubscribed_at: Time
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, contact: Contact, tags: list[str]) -> ContactOut:
        """From the stored contact and its tags' names."""
        assert contact.id is not None  # read from the store
        return cls(
            id=contact.id,
            list_id=contact.list_id,
            email=contact.email,
            phone=contact.phone,
            name=contact.name,
            fields=contact.fields or {},
            tags=tags,
            subscribed=contact.unsubscribed_at is None,
            unsubscribed_at=contact.unsubscribed_at,
            created_at=contact.created_at,
            updated_at=contact.updated_at or contact.created_at,
        )


class ContactPage(BaseModel):
    """A page of contacts."""

    contacts: list[ContactOut]
    pagination: Pagination


class ListOut(WireModel):
    """A contact list and how many contacts it holds."""

    id: int
    name: str
    member_count: int
    created_at: Time

    @classmethod
    def of(cls, contact_list: ContactList, members: int) -> ListOut:
        """From the stored list and its size."""
        assert contact_list.id is not None  # read from the store
        return cls(
            id=contact_list.id,
            name=contact_list.name,
            member_count=members,
            created_at=contact_list.created_at,
        )


class ListDeleted(WireModel):
    """A deleted list and how many of its contacts went with it."""

    message: str = "List deleted successfully"
    deleted_contacts: int


class SegmentOut(WireModel):
    """A saved condition, with how many contacts match it now when asked for one."""

    id: str
    name: str
    description: str
    condition: dict[str, Any]
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, segment: Segment) -> SegmentOut:
        """From the stored segment."""
        return cls.model_validate(segment)


class SegmentSized(SegmentOut):
    """A segment and how many contacts match it now."""

    size: int

    @classmethod
    def sized(cls, segment: Segment, size: int) -> SegmentSized:
        """The segment and its size now."""
        return cls(**SegmentOut.of(segment).model_dump(), size=size)


class SegmentPage(BaseModel):
    """A page of segments."""

    segments: list[SegmentOut]
    pagination: Pagination


class RowErrorOut(BaseModel):
    """A CSV row that could not be stored: its line, email, code and why."""

    model_config = ConfigDict(from_attributes=True)

    line: int
    email: str | None
    code: str
    message: str


class ImportResultOut(WireModel):
    """What a CSV import did: contacts created, updated, unchanged, and the rows refused."""

    created: int
    updated: int
    unchanged: int
    error_count: int
    errors: list[RowErrorOut]
    rows: int

    @classmethod
    def of(cls, result: ImportResult) -> ImportResultOut:
        """From the import's result."""
        return cls.model_validate(result)


class SuppressionOut(WireModel):
    """An address the organization never messages."""

    address: str
    reason: str
    created_at: Time

    @classmethod
    def of(cls, suppression: Suppression) -> SuppressionOut:
        """From the stored suppression."""
        return cls.model_validate(suppression)


class SuppressionPage(BaseModel):
    """A page of the suppression list."""

    suppressions: list[SuppressionOut]
    pagination: Pagination
