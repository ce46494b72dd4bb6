"""``/api/v1/segments``: saved contact lists API conditions that campaign audiences name by id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import Field
from sqlmodel import Session

from engine.api.deps import CurrentPrincipal, PageDep, SessionDep
from engine.api.responses import (
    Envelope,
    Message,
    Pagination,
    SegmentOut,
    SegmentPage,
    SegmentSized,
    ok,
)
from engine.api.schemas import ApiModel, ConditionIn, ConditionItemIn
from engine.audience import segments as service
from engine.audience.conditions import MAX_CONDITION_ITEMS
from engine.models import Segment

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])

SegmentId = Annotated[str, Path(min_length=1, max_length=64, description="the segment's id")]


class SegmentCondition(ConditionIn):
    """A segment's condition: at least one item."""

    items: list[ConditionItemIn] = Field(
        max_length=100, json_schema_extra={"minItems": 1, "maxItems": MAX_CONDITION_ITEMS}
    )


class SegmentIn(ApiModel):
    """A segment to create."""

    name: str = Field(min_length=1, max_length=200, description="unique in the organization")
    description: str = Field(default="", max_length=2000)
    condition: SegmentCondition


class SegmentChange(ApiModel):
    """The fields of a segment to change; those left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    condition: SegmentCondition | None = None


def _condition(condition: ConditionIn) -> dict[str, Any]:
    return condition.model_dump(exclude_none=True)


def _with_size(session: Session, organization_id: str, segment: Segment) -> SegmentSized:
    return SegmentSized.sized(segment, service.segment_size(session, organization_id, segment))


@router.get("", response_model=Envelope[SegmentPage])
def list_segments(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
) -> dict[str, Any]:
    """The organization's segments by name, a page at a time (without sizes)."""
    found, total = service.list_segments(
        session, principal.organization_id, offset=page.offset, limit=page.limit
    )
    return ok(
        SegmentPage(
            segments=[SegmentOut.of(s) for s in found],
            pagination=Pagination.of(page.page, page.limit, total),
        )
    )


@router.post("", status_code=201, response_model=Envelope[SegmentSized])
def create(body: SegmentIn, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Save a condition under a name (400 ``INVALID_CONDITION``, 409 ``SEGMENT_EXISTS``)."""
    segment = service.create_segment(
        session, principal.organization_id, body.name, _condition(body.condition), body.description
    )
    return ok(_with_size(session, principal.organization_id, segment))


@router.get("/{segment_id}", response_model=Envelope[SegmentSized])
def get(segment_id: SegmentId, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One segment and its ``size``: how many people it targets now (subscribed, not suppressed)."""
    segment = service.get_segment(session, principal.organization_id, segment_id)
    return ok(_with_size(session, principal.organization_id, segment))


@router.put("/{segment_id}", response_model=Envelope[SegmentSized])
def update(
    segment_id: SegmentId, body: SegmentChange, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change a segment's name, description or condition; campaigns naming it follow."""
    changes: dict[str, Any] = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None
    }
    if body.condition is not None:
        changes["condition"] = _condition(body.condition)
    segment = service.update_segment(session, principal.organization_id, segment_id, changes)
    return ok(_with_size(session, principal.organization_id, segment))


@router.delete("/{segment_id}", response_model=Envelope[Message])
def delete(
    segment_id: SegmentId, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Delete a segment; campaigns still naming it then target nobody through it."""
    service.delete_segment(session, principal.organization_id, segment_id)
    return ok({"message": "Segment deleted successfully"})
