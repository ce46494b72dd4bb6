"""Answers of the contact lists API (EngageLab-compatible): its own snake_case shapes, no
envelope, times in UTC+8 — built from the members service's dataclasses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel

from engine.audience.members import BatchResult, Member, MemberPage

#: The contact lists API writes times in UTC+8, ``2026-01-31T17:00:00+0800``.
LIST_API_TZ = timezone(timedelta(hours=8))


def list_api_time(value: datetime | None) -> str | None:
    """A time as the contact lists API writes it."""
    return value.astimezone(LIST_API_TZ).strftime("%Y-%m-%dT%H:%M:%S%z") if value else None


class MemberOut(BaseModel):
    """A member of a list, in the contact lists API's shape."""

    member_id: str
    list_id: int | None
    email: str | None
    phone: str | None
    name: str | None
    fields: dict[str, Any]
    tag_ids: list[str]
    tag_names: list[str]
    create_time: str | None
    update_time: str | None
    unsubscribe_time: str | None

    @classmethod
    def of(cls, member: Member) -> MemberOut:
        """From the stored contact and its tags."""
        contact = member.contact
        return cls(
            member_id=str(contact.id),
            list_id=contact.list_id,
            email=contact.email,
            phone=contact.phone,
            name=contact.name,
            fields=contact.fields or {},
            tag_ids=[str(tag_id) for tag_id, _ in member.tags],
            tag_names=[name for _, name in member.tags],
            create_time=list_api_time(contact.created_at),
            update_time=list_api_time(contact.updated_at or contact.created_at),
            unsubscribe_time=list_api_time(contact.unsubscribed_at),
        )


class MemberResult(BaseModel):
    """``GET /members/{member_id}``: ``{"result": {...}}``."""

    result: MemberOut


class MemberList(BaseModel):
    """Members matching a condition: ``{"result": [...], "total": N, "count": n}``."""

    result: list[MemberOut]
    total: int
    count: int

    @classmethod
    def of(cls, page: MemberPage) -> MemberList:
        """From a page of members."""
        result = [MemberOut.of(m) for m in page.members]
        return cls(result=result, total=page.total, count=len(result))


class MemberId(BaseModel):
    """A member a batch wrote."""

    email: str
    member_id: str


class MemberError(BaseModel):
    """A member a batch refused, and why."""

    email: Any
    message: str


class BatchOut(BaseModel):
    """``POST /members``: what the batch did, member by member."""

    created_count: int
    created_members: list[MemberId]
    updated_count: int
    updated_members: list[MemberId]
    error_count: int
    error_members: list[MemberError]

    @classmethod
    def of(cls, done: BatchResult) -> BatchOut:
        """From the batch's result."""
        created = [MemberId(email=m.email, member_id=str(m.member_id)) for m in done.created]
        updated = [MemberId(email=m.email, member_id=str(m.member_id)) for m in done.updated]
        errors = [MemberError(email=m.email, message=m.message) for m in done.refused]
        return cls(
            created_count=len(created),
            created_members=created,
            updated_count=len(updated),
            updated_members=updated,
            error_count=len(errors),
            error_members=errors,
        )


class Count(BaseModel):
    """How many members a call changed: ``{"count": n}``."""

    count: int
