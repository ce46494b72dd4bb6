"""Answers of the HTTP API as declared models: what ``/openapi.json`` says each route returns.

Services return domain objects (dataclasses, rows); these models are the wire format —
camelCase names, ISO 8601 times with ``Z`` — built from them by ``of``. Routes declare them as
``response_model=Envelope[...]`` so a generated client knows every field.

Why this module is long (about 450 lines): it is the one place the campaigns, contacts and
channels APIs' answers are written down, read as one document; each model is a few lines. The
contact lists API's own shapes live in ``contact_lists``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from engine.audience.contact_import import ImportResult
from engine.campaigns.catalog import CampaignFigures
from engine.execution.progress import ErrorCount, Progress
from engine.integrations.channel_accounts import SECRET_SETTINGS
from engine.integrations.events import StatusReport
from engine.integrations.webhooks import LoggedDelivery
from engine.models import (
    WEBHOOK_EVENTS,
    Campaign,
    ChannelAccount,
    Contact,
    ContactList,
    EngagementEvent,
    Execution,
    Segment,
    Suppression,
    Touchpoint,
    WebhookDeliveryStatus,
    WebhookSubscription,
)
from engine.models.base import iso
from engine.services.auth import Tokens

T = TypeVar("T")

#: Channel settings never shown back (they are credentials).
SECRET_KEYS = SECRET_SETTINGS | {"apiKey"}


#: A time as the API writes it: ISO 8601 in UTC with a ``Z``.
Time = Annotated[datetime | None, PlainSerializer(iso, return_type=str | None)]


class WireModel(BaseModel):
    """An answer's object: snake_case in Python, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Envelope(BaseModel, Generic[T]):
    """``{"success": true, "data": …}``: every success of the campaigns API."""

    success: Literal[True] = True
    data: T


def ok(data: Any) -> dict[str, Any]:
    """The success envelope around ``data`` (a declared answer model, or a list of them)."""
    return {"success": True, "data": data}


class Message(BaseModel):
    """A confirmation: ``{"message": "Campaign deleted successfully"}``."""

    message: str


class BotTokens(BaseModel):
    """The bot campaigns API's tokens: ``{"token", "refresh_token"}``."""

    token: str
    refresh_token: str


class TokensOut(BotTokens):
    """An access ``token``, the ``refresh_token`` that renews it, and ``expires_in`` seconds."""

    expires_in: int

    @classmethod
    def of(cls, tokens: Tokens) -> TokensOut:
        """From the issued tokens."""
        return cls(
            token=tokens.token, refresh_token=tokens.refresh_token, expires_in=tokens.expires_in
        )


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


class ChannelAccountOut(WireModel):
    """A provider account: its settings, and only the names of its secrets."""

    id: str
    channel: str
    name: str
    settings: dict[str, Any]
    secrets: list[str]
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, account: ChannelAccount) -> ChannelAccountOut:
        """From the stored account (its secrets never leave it)."""
        return cls(
            id=account.id,
            channel=account.channel,
            name=account.name,
            settings=account.settings,
            secrets=account.secret_names,
            created_at=account.created_at,
            updated_at=account.updated_at,
        )


class ChannelAccountList(BaseModel):
    """``{"channels": [...]}``."""

    channels: list[ChannelAccountOut]


class Pagination(BaseModel):
    """The campaigns API's ``pagination``."""

    page: int
    limit: int
    total: int
    pages: int

    @classmethod
    def of(cls, page: int, limit: int, total: int) -> Pagination:
        """Page ``page`` of ``limit`` items out of ``total``."""
        return cls(page=page, limit=limit, total=total, pages=-(-total // limit))


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


class Validation(BaseModel):
    """Whether a touchpoint can be sent as configured, and why not."""

    valid: bool
    errors: list[Any]


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
        return cls(
            id=segment.id,
            name=segment.name,
            description=segment.description,
            condition=segment.condition,
            created_at=segment.created_at,
            updated_at=segment.updated_at,
        )


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
        return cls(
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            error_count=result.error_count,
            errors=[
                RowErrorOut(line=e.line, email=e.email, code=e.code, message=e.message)
                for e in result.errors
            ],
            rows=result.rows,
        )


class ConversionOut(WireModel):
    """A recorded conversion, attributed to an execution when the contact was messaged."""

    id: int
    type: Literal["conversion"] = "conversion"
    contact_id: int
    campaign_id: str
    execution_id: str | None
    attributed: bool
    value: float | None
    occurred_at: Time

    @classmethod
    def of(cls, event: EngagementEvent) -> ConversionOut:
        """From the stored conversion event."""
        assert event.id is not None and event.contact_id is not None  # read from the store
        return cls(
            id=event.id,
            contact_id=event.contact_id,
            campaign_id=event.campaign_id,
            execution_id=event.execution_id,
            attributed=event.execution_id is not None,
            value=event.value,
            occurred_at=event.occurred_at,
        )


class StatusReportOut(BaseModel):
    """What became of a provider callback's statuses (``/api/v1/providers/…``)."""

    recorded: int
    duplicates: int
    ignored: int
    unmatched: int = Field(description="for messages the engine does not know")
    pending: int = Field(description="for messages not recorded yet: the answer is then 503")

    @classmethod
    def of(cls, report: StatusReport) -> StatusReportOut:
        """From the callback's report."""
        return cls.model_validate(report, from_attributes=True)


class SuppressionOut(WireModel):
    """An address the organization never messages."""

    address: str
    reason: str
    created_at: Time

    @classmethod
    def of(cls, suppression: Suppression) -> SuppressionOut:
        """From the stored suppression."""
        return cls(
            address=suppression.address,
            reason=suppression.reason,
            created_at=suppression.created_at,
        )


class SuppressionPage(BaseModel):
    """A page of the suppression list."""

    suppressions: list[SuppressionOut]
    pagination: Pagination


class WebhookOut(WireModel):
    """A lifecycle webhook subscription (its secret is shown once, at creation)."""

    id: str
    url: str
    events: list[str]
    active: bool
    created_at: Time

    @classmethod
    def of(cls, subscription: WebhookSubscription) -> WebhookOut:
        """From the stored subscription (without its secret)."""
        return cls(
            id=subscription.id,
            url=subscription.url,
            events=subscription.events,
            active=subscription.active,
            created_at=subscription.created_at,
        )


class WebhookDeliveryOut(WireModel):
    """One lifecycle event's delivery to a subscription: its status, attempts, last answer."""

    id: int
    event_id: str
    event: str
    status: str
    attempts: int
    status_code: int | None
    error: str | None
    next_attempt_at: Time
    delivered_at: Time
    created_at: Time

    @classmethod
    def of(cls, logged: LoggedDelivery) -> WebhookDeliveryOut:
        """From the logged delivery (the next attempt only while one is pending)."""
        d = logged.delivery
        assert d.id is not None  # read from the store
        pending = d.status == WebhookDeliveryStatus.pending
        return cls(
            id=d.id,
            event_id=f"evt_{d.event_id}",
            event=logged.event,
            status=d.status,
            attempts=d.attempts,
            status_code=d.last_status_code,
            error=d.last_error,
            next_attempt_at=d.next_attempt_at if pending else None,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
        )


class WebhookCreated(WebhookOut):
    """A new subscription: its signing secret (shown this once) and the events there are."""

    secret: str
    available_events: list[str] = list(WEBHOOK_EVENTS)

    @classmethod
    def created(cls, subscription: WebhookSubscription, secret: str) -> WebhookCreated:
        """The new subscription and its signing secret."""
        return cls(**WebhookOut.of(subscription).model_dump(), secret=secret)
