"""Answers of the campaigns API: campaigns, touchpoints, executions started, paused,
resumed, cancelled, and an execution's live progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from engine.api.answers.base import Pagination, Time, WireModel
from engine.campaigns.catalog import CampaignFigures
from engine.execution.progress import ErrorCount, Progress
from engine.integrations.channel_accounts import SECRET_SETTINGS
from engine.models import (
    Campaign,
    Execution,
    Touchpoint,
)

#: Channel settings never shown back (they are credentials).
SECRET_KEYS = SECRET_SETTINGS | {"apiKey"}


class ErrorCountOut(WireModel):
    """Failures with one code."""

    code: str
    count: int
    message: str | None

    @classmethod
    def of(cls, error: ErrorCount) -> ErrorCountOut:
        """From the domain's count."""
        return cls(code=error.code, count=error.count, message=error.message)


class ProgressCounts(WireModel):
    """Counts of an execution's progress."""

    percentage: float
    processed: int
    total: int
    successful: int
    failed: int
    skipped: int


class ProgressOut(WireModel):
    """An execution's live progress (``GET /campaigns/{id}/progress``, ``/executions/{id}``)."""

    execution_id: str
    campaign_id: str
    status: str
    progress: ProgressCounts
    current_rate: float
    estimated_completion: Time
    errors: list[ErrorCountOut]
    started_at: Time
    finished_at: Time
    error: str | None

    @classmethod
    def of(cls, p: Progress) -> ProgressOut:
        """From the domain's progress."""
        return cls(
            execution_id=p.execution_id,
            campaign_id=p.campaign_id,
            status=p.status,
            progress=ProgressCounts(
                percentage=p.percentage,
                processed=p.processed,
                total=p.total,
                successful=p.successful,
                failed=p.failed,
                skipped=p.skipped,
            ),
            current_rate=p.current_rate,
            estimated_completion=p.estimated_completion,
            errors=[ErrorCountOut.of(e) for e in p.errors],
            started_at=p.started_at,
            finished_at=p.finished_at,
            error=p.error,
        )

    def wire(self) -> dict[str, Any]:
        """The JSON object the API answers (the CLI's ``--json`` prints the same)."""
        return self.model_dump(mode="json", by_alias=True)


class TouchpointOut(WireModel):
    """A touchpoint: a message or a wait, in its campaign's order."""

    id: str
    campaign_id: str
    name: str
    type: str
    position: int
    delay: float
    message: str | dict[str, Any] | None
    created_at: Time

    @classmethod
    def of(cls, touchpoint: Touchpoint) -> TouchpointOut:
        """From the stored touchpoint."""
        return cls(
            id=touchpoint.id,
            campaign_id=touchpoint.campaign_id,
            name=touchpoint.name,
            type=touchpoint.type,
            position=touchpoint.position,
            delay=touchpoint.delay_s,
            message=touchpoint.message,
            created_at=touchpoint.created_at,
        )


class CampaignCreated(BaseModel):
    """``POST /campaigns`` and ``/clone``: the new campaign's id, name and status."""

    id: str
    name: str
    status: str
    message: str

    @classmethod
    def of(cls, campaign: Campaign, message: str) -> CampaignCreated:
        """The new campaign, with a confirmation."""
        return cls(id=campaign.id, name=campaign.name, status=campaign.status, message=message)


class CampaignTotals(WireModel):
    """A campaign's delivery counters over its executions (test mode left out)."""

    total_tasks: int
    completed_tasks: int
    failed_tasks: int
    messages_sent: int
    conversions_achieved: int


class CampaignOut(WireModel):
    """A campaign as the campaigns API shows it. The descriptive fields given at creation
    (``goals``, ``strategy``, ``messages``, ``budget`` …) come back as they were stored."""

    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    description: str
    type: str
    status: str
    channel: str | None
    channel_config: dict[str, Any]
    target_audience: dict[str, Any]
    statistics: CampaignTotals
    created_by: str | None
    created_at: Time
    updated_at: Time

    @classmethod
    def fields_of(
        cls, campaign: Campaign, figures: CampaignFigures | None, audience: int
    ) -> dict[str, Any]:
        """The fields of :meth:`of` (credentials of ``channelConfig`` left out)."""
        details = dict(campaign.details or {})
        figures = figures or CampaignFigures()
        target = {**(details.pop("targetAudience", None) or {}), "totalCount": audience}
        return {
            "id": campaign.id,
            "name": campaign.name,
            "description": campaign.description,
            "type": campaign.type,
            "status": campaign.status,
            "channel": campaign.channel or None,
            "channelConfig": {
                k: v for k, v in campaign.channel_config.items() if k not in SECRET_KEYS
            },
            "targetAudience": target,
            **details,
            "statistics": CampaignTotals(
                total_tasks=figures.total,
                completed_tasks=figures.successful,
                failed_tasks=figures.failed,
                messages_sent=figures.successful,
                conversions_achieved=0,
            ),
            "createdBy": campaign.created_by,
            "createdAt": campaign.created_at,
            "updatedAt": campaign.updated_at,
        }

    @classmethod
    def of(cls, campaign: Campaign, figures: CampaignFigures | None, audience: int) -> CampaignOut:
        """From the stored campaign, its delivery figures and its audience's size."""
        return cls(**cls.fields_of(campaign, figures, audience))


class CampaignDetail(CampaignOut):
    """One campaign, with its touchpoints in order."""

    touchpoints: list[TouchpointOut]

    @classmethod
    def with_touchpoints(
        cls,
        campaign: Campaign,
        figures: CampaignFigures | None,
        audience: int,
        touchpoints: list[Touchpoint],
    ) -> CampaignDetail:
        """The campaign and its touchpoints."""
        return cls(
            **cls.fields_of(campaign, figures, audience),
            touchpoints=[TouchpointOut.of(tp) for tp in touchpoints],
        )


class CampaignPage(BaseModel):
    """A page of campaigns."""

    campaigns: list[CampaignOut]
    pagination: Pagination


class ExecutionStarted(WireModel):
    """``POST /campaigns/{id}/execute``: the execution started or scheduled."""

    execution_id: str
    status: Literal["started", "scheduled"]
    scheduled_at: Time
    estimated_completion: Time
    message: str

    @classmethod
    def of(cls, execution: Execution, later: bool, estimate: datetime | None) -> ExecutionStarted:
        """The execution, scheduled for ``later`` or started now, and when it should end."""
        return cls(
            execution_id=execution.id,
            status="scheduled" if later else "started",
            scheduled_at=execution.scheduled_at,
            estimated_completion=estimate,
            message="Campaign execution scheduled" if later else "Campaign execution started",
        )


class RetryStarted(WireModel):
    """``POST /executions/{id}/retry``: the new execution for those not reached."""

    execution_id: str
    retry_of: str | None
    status: Literal["started"] = "started"
    scheduled_at: Time
    message: str = "Retry started for the contacts not reached"

    @classmethod
    def of(cls, execution: Execution) -> RetryStarted:
        """The retry's execution."""
        return cls(
            execution_id=execution.id,
            retry_of=execution.retry_of,
            scheduled_at=execution.scheduled_at,
        )


class Paused(WireModel):
    """``POST /campaigns/{id}/pause``."""

    status: Literal["paused"] = "paused"
    message: str = "Campaign paused successfully"
    paused_at: Time


class Resumed(WireModel):
    """``POST /campaigns/{id}/resume``."""

    status: Literal["active"] = "active"
    message: str = "Campaign resumed successfully"
    resumed_at: Time


class Cancelled(WireModel):
    """``POST /campaigns/{id}/cancel``."""

    status: Literal["cancelled"] = "cancelled"
    message: str = "Campaign cancelled successfully"
    cancelled_at: Time
