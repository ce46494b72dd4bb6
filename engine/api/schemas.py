"""Request bodies of the HTTP API (campaigns API names); responses are built in ``presenters``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CampaignType = Literal["message", "invitation", "data_collection", "engagement", "custom"]
CampaignStatusName = Literal[
    "draft", "scheduled", "active", "paused", "completed", "cancelled", "failed"
]


class ApiModel(BaseModel):
    """Unknown fields are refused (a typo must not pass silently); camelCase or snake_case."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TouchpointIn(ApiModel):
    """A touchpoint to create (SDK reference ``CreateTouchpointInput``)."""

    name: str = Field(default="", max_length=200)
    type: Literal["message", "wait"] = "message"
    message: str | dict[str, Any] | None = None
    delay: float = Field(
        default=0, ge=0, le=365 * 24 * 3600, description="seconds after the previous touchpoint"
    )
    campaign_id: str | None = Field(default=None, description="for POST /api/v1/touchpoints")


class TouchpointChange(ApiModel):
    """Fields of a touchpoint to change."""

    name: str | None = Field(default=None, max_length=200)
    type: Literal["message", "wait"] | None = None
    message: str | dict[str, Any] | None = None
    delay: float | None = Field(default=None, ge=0, le=365 * 24 * 3600)


class CampaignFields(ApiModel):
    """Optional campaign fields shared by create and update: channel and the campaigns API's
    details."""

    channel: str | None = Field(default=None, max_length=32)
    channel_type: str | None = Field(
        default=None, max_length=32, description="the SDK reference's name for channel"
    )
    channel_config: dict[str, Any] | None = Field(default=None, alias="channelConfig")
    goals: dict[str, Any] | None = None
    target_audience: dict[str, Any] | None = Field(default=None, alias="targetAudience")
    strategy: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = Field(default=None, max_length=100)
    budget: float | None = Field(default=None, ge=0)
    start_date: datetime | None = Field(default=None, alias="startDate")
    end_date: datetime | None = Field(default=None, alias="endDate")
    workflow: dict[str, Any] | None = None
    ab_tests: list[dict[str, Any]] | None = Field(default=None, alias="abTests")


class CampaignIn(CampaignFields):
    """A campaign to create (campaigns API ``POST /campaigns``, the SDK reference
    ``CreateCampaignInput``)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    type: CampaignType = "message"
    touchpoints: list[TouchpointIn] | None = Field(default=None, max_length=100)


class CampaignChange(CampaignFields):
    """Fields of a campaign to change (``PUT /campaigns/:id``)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    type: CampaignType | None = None
    status: CampaignStatusName | None = None


class ExecuteIn(ApiModel):
    """``POST /campaigns/:id/execute`` (every field optional)."""

    test_mode: bool = Field(default=False, alias="testMode")
    target_percentage: int = Field(default=100, ge=1, le=100, alias="targetPercentage")
    priority: Literal["high", "normal", "low"] = "normal"
    scheduled_at: datetime | None = Field(default=None, alias="scheduledAt")


class CloneIn(ApiModel):
    """``POST /campaigns/:id/clone``."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    reset_statistics: bool = Field(default=True, alias="resetStatistics")


class LoginIn(ApiModel):
    """``POST /auth/login`` (bot campaigns API shape)."""

    user: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class RefreshIn(ApiModel):
    """``POST /auth/refresh``."""

    refresh_token: str = Field(min_length=1, max_length=4000)


class ValidateIn(ApiModel):
    """``POST /touchpoints/validate`` (SDK reference ``validate_touchpoint({touchpoint_id})``)."""

    touchpoint_id: str = Field(min_length=1, max_length=32)


class WebhookIn(ApiModel):
    """``POST /webhooks``: where to send which lifecycle events; a secret is made if not given."""

    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=20)
    secret: str | None = Field(default=None, min_length=8, max_length=200)


#: Keys of :class:`CampaignIn` kept in ``Campaign.details``, by their API name.
DETAIL_FIELDS = {
    "goals": "goals",
    "target_audience": "targetAudience",
    "strategy": "strategy",
    "messages": "messages",
    "budget": "budget",
    "start_date": "startDate",
    "end_date": "endDate",
    "workflow": "workflow",
    "ab_tests": "abTests",
}


def details_of(model: CampaignFields) -> dict[str, Any]:
    """The campaigns API's descriptive fields that were given, by their API names, JSON-ready."""
    given = model.model_dump(mode="json", exclude_unset=True)
    return {api: given[field] for field, api in DETAIL_FIELDS.items() if field in given}
