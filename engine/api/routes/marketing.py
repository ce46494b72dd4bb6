"""The contact lists API's contact management: ``/v1/marketing/lists/...`` with Basic
``api_user:api_key``.

Answers keep the documented shapes (``{"result": …}``, ``{"count": 1}``, the batch counters) and its
errors (``{"code": 30000, "message": "Authentication failed"}``, ``30036`` not found).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BeforeValidator, Field

from engine.api.answers.contact_lists import BatchOut, Count, MemberList, MemberOut, MemberResult
from engine.api.deps import AttemptsDep, SessionDep
from engine.api.openapi import ATTEMPT_LIMITED
from engine.api.schemas import PHONE_SCHEMA, ApiModel, ConditionIn, Flag, json_integer
from engine.audience import members as service
from engine.errors import AuthenticationFailed
from engine.models import ApiUser
from engine.services.auth import authenticate_api_user

router = APIRouter(
    prefix="/v1/marketing/lists",
    tags=["contact lists API (EngageLab-compatible)"],
    responses=ATTEMPT_LIMITED,
)
_basic = HTTPBasic(auto_error=False, description="api_user:api_key")


def get_api_user(
    session: SessionDep,
    attempts: AttemptsDep,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> ApiUser:
    """The list credential of ``Authorization: Basic base64(api_user:api_key)``."""
    if credentials is None:
        raise AuthenticationFailed("Authentication failed", code="UNAUTHORIZED")
    return authenticate_api_user(session, credentials.username, credentials.password, attempts)


CurrentApiUser = Annotated[ApiUser, Depends(get_api_user)]


class ConditionBody(ApiModel):
    """A body holding an optional ``condition``."""

    condition: ConditionIn | None = None


class BatchBody(ApiModel):
    """``POST /members``: up to 1000 members (each checked by the service, errors per member)."""

    members: list[dict[str, Any]] = Field(
        min_length=1, json_schema_extra={"maxItems": service.MAX_BATCH}
    )
    tag_flag: Annotated[Literal[0, 1, 2], BeforeValidator(json_integer)] = 1
    update_existing: Flag


class MemberChange(ApiModel):
    """``PUT /members/{member_id}``."""

    phone: Annotated[str, Field(max_length=32, json_schema_extra=PHONE_SCHEMA)] | None = None
    name: str | None = Field(default=None, max_length=200)
    fields: dict[str, Any] | None = None
    tags: (
        list[Annotated[str, Field(json_schema_extra={"minLength": 1, "maxLength": 100})]] | None
    ) = Field(default=None, max_length=100)


def _condition(body: ConditionBody | None) -> dict[str, Any] | None:
    return body.condition.model_dump() if body and body.condition else None


@router.post("/members")
def add_or_update(body: BatchBody, session: SessionDep, api_user: CurrentApiUser) -> BatchOut:
    """Add or update members in batch (matched on email) per ``tag_flag``/``update_existing``."""
    return BatchOut.of(
        service.batch_upsert(session, api_user, body.members, body.tag_flag, body.update_existing)
    )


@router.delete("/members/delete")
def delete_by_condition(
    body: ConditionBody, session: SessionDep, api_user: CurrentApiUser
) -> Count:
    """Delete the members matching the condition: ``{"count": n}``."""
    return Count(count=service.delete_by_condition(session, api_user, _condition(body)))


@router.delete("/members/{member_id}")
def delete(member_id: str, session: SessionDep, api_user: CurrentApiUser) -> Count:
    """Delete one member: ``{"count": 1}``."""
    return Count(count=service.delete_member(session, api_user, member_id))


@router.put("/members/{member_id}")
def update(
    member_id: str, body: MemberChange, session: SessionDep, api_user: CurrentApiUser
) -> Count:
    """Update one member: ``{"count": 1}``."""
    changes = body.model_dump(exclude_unset=True)
    return Count(count=service.update_member(session, api_user, member_id, changes))


@router.get("/members/{member_id}")
def get(member_id: str, session: SessionDep, api_user: CurrentApiUser) -> MemberResult:
    """One member: ``{"result": {...}}``."""
    return MemberResult(result=MemberOut.of(service.get_member(session, api_user, member_id)))


def _list(
    session: SessionDep,
    api_user: CurrentApiUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    body: ConditionBody | None = None,
) -> MemberList:
    """Members matching the condition: ``{"result": [...], "total": N, "count": n}``."""
    return MemberList.of(service.list_members(session, api_user, _condition(body), limit, offset))


router.post("/list_members", summary="List members by condition")(_list)
router.post(
    "/listMembers",
    summary="List members by condition (the spelling of the documented curl example)",
)(_list)
