"""Touchpoints: under a campaign (``/api/v1/campaigns/:id/touchpoints``) and by id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engine.api.answers.base import Envelope, Message, Validation, ok
from engine.api.answers.campaigns import TouchpointOut
from engine.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from engine.api.schemas import TouchpointChange, TouchpointCreate, TouchpointIn, ValidateIn
from engine.campaigns import touchpoints as service
from engine.campaigns.campaign import TouchpointSpec, get_campaign
from engine.errors import ValidationFailed

router = APIRouter(tags=["touchpoints"])


def _spec(body: TouchpointIn) -> TouchpointSpec:
    return TouchpointSpec(message=body.message, name=body.name, type=body.type, delay_s=body.delay)


@router.get(
    "/api/v1/campaigns/{campaign_id}/touchpoints", response_model=Envelope[list[TouchpointOut]]
)
def list_for_campaign(
    campaign_id: str, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The campaign's touchpoints in order."""
    campaign = get_campaign(session, campaign_id, principal.organization_id)
    return ok([TouchpointOut.of(tp) for tp in service.list_touchpoints(session, campaign.id)])


@router.post(
    "/api/v1/campaigns/{campaign_id}/touchpoints",
    status_code=201,
    response_model=Envelope[TouchpointOut],
)
def create_for_campaign(
    campaign_id: str, body: TouchpointIn, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Append a touchpoint to the campaign."""
    if body.campaign_id not in (None, campaign_id):
        raise ValidationFailed(
            "campaign_id in the body differs from the path", code="CAMPAIGN_MISMATCH"
        )
    touchpoint = service.add_touchpoint(
        session, principal.organization_id, campaign_id, _spec(body)
    )
    return ok(TouchpointOut.of(touchpoint))


@router.post("/api/v1/touchpoints", status_code=201, response_model=Envelope[TouchpointOut])
def create(
    body: TouchpointCreate, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Append a touchpoint to the campaign named by ``campaign_id`` (the SDK reference's input)."""
    if not body.campaign_id:
        raise ValidationFailed("campaign_id is required", code="MISSING_CAMPAIGN_ID")
    touchpoint = service.add_touchpoint(
        session, principal.organization_id, body.campaign_id, _spec(body)
    )
    return ok(TouchpointOut.of(touchpoint))


@router.post("/api/v1/touchpoints/validate", response_model=Envelope[Validation])
def validate_by_body(
    body: ValidateIn, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """``{"touchpoint_id"}`` → ``{"valid", "errors"}``: can it be sent as configured?"""
    return ok(
        service.validate_touchpoint(
            session, principal.organization_id, body.touchpoint_id, settings.verification_keys
        )
    )


@router.get("/api/v1/touchpoints/{touchpoint_id}", response_model=Envelope[TouchpointOut])
def get(touchpoint_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One touchpoint."""
    return ok(
        TouchpointOut.of(service.get_touchpoint(session, touchpoint_id, principal.organization_id))
    )


@router.put("/api/v1/touchpoints/{touchpoint_id}", response_model=Envelope[TouchpointOut])
def update(
    touchpoint_id: str, body: TouchpointChange, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Change a touchpoint's name, type, message or delay."""
    given = body.model_dump(exclude_unset=True)
    changes = {("delay_s" if k == "delay" else k): v for k, v in given.items() if v is not None}
    return ok(
        TouchpointOut.of(
            service.update_touchpoint(session, principal.organization_id, touchpoint_id, changes)
        )
    )


@router.delete("/api/v1/touchpoints/{touchpoint_id}", response_model=Envelope[Message])
def delete(touchpoint_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Remove a touchpoint."""
    service.delete_touchpoint(session, principal.organization_id, touchpoint_id)
    return ok({"message": "Touchpoint deleted successfully"})


@router.post("/api/v1/touchpoints/{touchpoint_id}/validate", response_model=Envelope[Validation])
def validate(
    touchpoint_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """``{"valid", "errors"}`` for the touchpoint."""
    return ok(
        service.validate_touchpoint(
            session, principal.organization_id, touchpoint_id, settings.verification_keys
        )
    )
