"""``/api/v1/campaigns``: the campaigns API's endpoints, each a thin call to one service."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from sqlmodel import Session

from engine.api.answers.base import Envelope, Message, Pagination, ok
from engine.api.answers.campaigns import (
    CampaignCreated,
    CampaignDetail,
    CampaignOut,
    CampaignPage,
    Cancelled,
    ExecutionStarted,
    Paused,
    ProgressOut,
    Resumed,
)
from engine.api.answers.statistics import StatisticsOut
from engine.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from engine.api.schemas import CampaignChange, CampaignIn, CloneIn, ExecuteIn, details_of
from engine.audience.targeting import campaign_audience_count, campaign_audience_counts
from engine.campaigns import catalog
from engine.campaigns.campaign import (
    TouchpointSpec,
    create_campaign,
    get_campaign,
    list_touchpoints,
)
from engine.campaigns.statistics import campaign_statistics
from engine.execution.planning import expected_completion
from engine.execution.progress import get_progress
from engine.execution.runs import (
    cancel_campaign,
    pause_campaign,
    resume_campaign,
    start_execution,
)
from engine.models import Campaign
from engine.models.base import as_utc, utcnow
from engine.outbound import OutboundPolicy

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


def _message_specs(messages: list[dict[str, Any]] | None) -> list[TouchpointSpec]:
    """The campaigns API ``messages`` with ``content`` become message touchpoints (variations
    kept)."""
    specs = []
    for i, message in enumerate(messages or []):
        content = message.get("content")
        if isinstance(content, str) and content:
            body: dict[str, Any] = {"text": content}
            if message.get("variations"):
                body["variations"] = message["variations"]
            specs.append(
                TouchpointSpec(
                    message=body, name=str(message.get("id") or f"message {i + 1}")[:200]
                )
            )
    return specs


def _full(session: Session, campaign: Campaign) -> CampaignDetail:
    return CampaignDetail.with_touchpoints(
        campaign,
        catalog.campaign_figures(session, [campaign.id]).get(campaign.id),
        campaign_audience_count(session, campaign),
        list_touchpoints(session, campaign.id),
    )


@router.get("", response_model=Envelope[CampaignPage])
def list_campaigns(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Literal["draft", "scheduled", "active", "paused", "completed", "cancelled", "failed"]
    | None = None,
    type: Literal["message", "invitation", "data_collection", "engagement", "custom"] | None = None,
    sort: Annotated[
        str,
        Query(
            max_length=20,
            description="a field, prefixed with - for descending",
            json_schema_extra={"pattern": f"^-?({'|'.join(catalog.SORT_FIELDS)})$"},
        ),
    ] = "-createdAt",
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """List campaigns: filter by status and type, search name and description, sort, paginate."""
    result = catalog.list_campaigns(
        session,
        principal.organization_id,
        page=page,
        limit=limit,
        status=status,
        type=type,
        sort=sort,
        search=search,
    )
    figures = catalog.campaign_figures(session, [c.id for c in result.items])
    audiences = campaign_audience_counts(session, principal.organization_id, result.items)
    return ok(
        CampaignPage(
            campaigns=[CampaignOut.of(c, figures.get(c.id), audiences[c.id]) for c in result.items],
            pagination=Pagination.of(result.page, result.limit, result.total),
        )
    )


@router.post("", status_code=201, response_model=Envelope[CampaignCreated])
def create(
    body: CampaignIn, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Create a draft campaign (with touchpoints from ``touchpoints`` and ``messages``)."""
    specs = [
        TouchpointSpec(message=tp.message, name=tp.name, type=tp.type, delay_s=tp.delay)
        for tp in body.touchpoints or []
    ] + _message_specs(body.messages)
    campaign = create_campaign(
        session,
        principal.organization_id,
        body.name,
        body.channel or body.channel_type,
        specs,
        body.channel_config,
        body.description,
        type=body.type,
        details=details_of(body),
        created_by=principal.subject,
        secret_key=settings.verification_keys,
        outbound=OutboundPolicy.from_settings(settings),
    )
    return ok(CampaignCreated.of(campaign, "Campaign created successfully"))


@router.get("/{campaign_id}", response_model=Envelope[CampaignDetail])
def get(campaign_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """One campaign with its touchpoints, audience count and statistics."""
    return ok(_full(session, get_campaign(session, campaign_id, principal.organization_id)))


@router.put("/{campaign_id}", response_model=Envelope[CampaignDetail])
def update(
    campaign_id: str,
    body: CampaignChange,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Change a campaign's fields; status only where no execution is involved (else 409)."""
    given = body.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {
        k: given[k] for k in ("name", "description", "type", "status") if given.get(k) is not None
    }
    channel = body.channel or body.channel_type
    if channel:
        changes["channel"] = channel
    if body.channel_config is not None:
        changes["channel_config"] = body.channel_config
    changes["details"] = details_of(body)
    campaign = catalog.update_campaign(
        session,
        principal.organization_id,
        campaign_id,
        changes,
        settings.verification_keys,
        outbound=OutboundPolicy.from_settings(settings),
    )
    return ok(_full(session, campaign))


@router.delete("/{campaign_id}", response_model=Envelope[Message])
def delete(campaign_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Delete a draft or cancelled campaign (409 ``CANNOT_DELETE`` otherwise)."""
    catalog.delete_campaign(session, principal.organization_id, campaign_id)
    return ok({"message": "Campaign deleted successfully"})


@router.post("/{campaign_id}/execute", response_model=Envelope[ExecutionStarted])
def execute(
    campaign_id: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    body: ExecuteIn | None = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Any unique text: a retried request with the same key (a double "
            "click, a client retry) answers the first one's execution instead of starting "
            "another.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Start (or schedule) an execution; the scheduler picks it up.

    A campaign has at most one execution in progress: a second execute is refused with 409
    ``EXECUTION_ACTIVE`` (unless it repeats the first one's ``Idempotency-Key``).
    """
    body = body or ExecuteIn()
    at = body.scheduled_at
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    execution = start_execution(
        session,
        campaign_id,
        secret_key=settings.verification_keys,
        organization_id=principal.organization_id,
        priority=body.priority,
        target_percentage=body.target_percentage,
        scheduled_at=at,
        test_mode=body.test_mode,
        idempotency_key=idempotency_key,
    )
    campaign = session.get_one(Campaign, campaign_id)
    start = execution.scheduled_at
    later = as_utc(start) > utcnow()
    estimate = expected_completion(
        session, campaign, start, execution.target_percentage, settings.rate_limits
    )
    return ok(ExecutionStarted.of(execution, later, estimate))


@router.post("/{campaign_id}/pause", response_model=Envelope[Paused])
def pause(campaign_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Pause the running execution: no new sends within one chunk's time."""
    execution = pause_campaign(session, campaign_id, principal.organization_id)
    return ok(Paused(paused_at=execution.paused_at))


@router.post("/{campaign_id}/resume", response_model=Envelope[Resumed])
def resume(campaign_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Resume the paused execution; nobody already reached is sent to again."""
    execution = resume_campaign(session, campaign_id, principal.organization_id)
    return ok(Resumed(resumed_at=execution.updated_at))


@router.post("/{campaign_id}/cancel", response_model=Envelope[Cancelled])
def cancel(campaign_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Cancel the campaign: its execution in progress stops within one send batch.

    Nobody not yet reached is sent to afterwards. A campaign with nothing in progress (draft,
    completed, failed) is retired as ``cancelled`` (which also makes it deletable).
    """
    campaign = cancel_campaign(session, campaign_id, principal.organization_id)
    return ok(Cancelled(cancelled_at=campaign.updated_at))


@router.post("/{campaign_id}/clone", status_code=201, response_model=Envelope[CampaignCreated])
def clone(
    campaign_id: str, session: SessionDep, principal: CurrentPrincipal, body: CloneIn | None = None
) -> dict[str, Any]:
    """Copy a campaign and its touchpoints as a new draft."""
    body = body or CloneIn()
    copy = catalog.clone_campaign(session, principal.organization_id, campaign_id, body.name)
    return ok(CampaignCreated.of(copy, "Campaign cloned successfully"))


@router.get(
    "/{campaign_id}/statistics",
    response_model=Envelope[StatisticsOut],
    response_model_exclude_none=True,
)
def statistics(
    campaign_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    period: Literal["1h", "24h", "7d", "30d", "all"] = "all",
    metrics: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Overview, performance, timeline, segments and variations from stored deliveries."""
    get_campaign(session, campaign_id, principal.organization_id)
    return ok(StatisticsOut.of(campaign_statistics(session, campaign_id, period, metrics)))


@router.get("/{campaign_id}/progress", response_model=Envelope[ProgressOut])
def progress(campaign_id: str, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Live progress of the newest execution (the campaigns API's shape)."""
    get_campaign(session, campaign_id, principal.organization_id)
    execution = catalog.latest_execution(session, campaign_id)
    return ok(ProgressOut.of(get_progress(session, execution.id)))
