"""Request bodies of the HTTP API (campaigns API names); answers are declared in ``responses``.

The models say what ``/openapi.json`` promises: a body the document allows is never refused as
malformed, and one it forbids is refused. Types are strict (``0`` is not ``false``, ``"5"`` is not
``5``). Where the engine checks a rule itself with a more telling code (an unknown channel, an
email), the rule is written in the document only (``json_schema_extra``) and the engine's check
stays the one that answers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from engine.audience.audience_spec import MAX_PARTS
from engine.audience.conditions import MAX_CONDITION_ITEMS, OPERATORS
from engine.channels import CHANNEL_NAMES
from engine.models.webhook import WEBHOOK_EVENTS

CampaignType = Literal["message", "invitation", "data_collection", "engagement", "custom"]
CampaignStatusName = Literal[
    "draft", "scheduled", "active", "paused", "completed", "cancelled", "failed"
]


#: A channel's name. The enum is the document's; the engine checks it (400 ``UNKNOWN_CHANNEL``).
ChannelName = Annotated[str, Field(max_length=32, json_schema_extra={"enum": list(CHANNEL_NAMES)})]


#: What the engine reads as a phone number (``normalise_phone``): separators `` -().``, an
#: optional leading ``+``, then 4 to 20 digits.
PHONE_PATTERN = r"^\s*[-(). ]*(\+[-(). ]*)?([0-9][-(). ]*){4,20}\s*$"


#: Document-only schemas of addresses; the engine checks them (400 ``INVALID_ADDRESS`` …).
def _any_case(word: str) -> str:
    """``word`` matched in any case, in a pattern every JSON Schema validator reads."""
    return "".join(f"[{c.upper()}{c}]" for c in word)


#: Domains no mail is delivered to (RFC 6761 special-use names): email-validator refuses them.
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
EMAIL_SCHEMA: dict[str, Any] = {
    "format": "email",
    "not": {"pattern": rf"\.({'|'.join(map(_any_case, SPECIAL_USE_DOMAINS))})\.?$"},
}
PHONE_SCHEMA: dict[str, Any] = {"pattern": PHONE_PATTERN}
ADDRESS_SCHEMA: dict[str, Any] = {"anyOf": [EMAIL_SCHEMA, PHONE_SCHEMA]}


#: A campaign's channel: ``""`` (or null) leaves it without one, as the engine has always read it.
CampaignChannel = Annotated[
    str, Field(max_length=32, json_schema_extra={"enum": ["", *CHANNEL_NAMES]})
]
_NAMES: dict[str, Any] = {
    "type": ["array", "null"],
    "maxItems": MAX_PARTS,
    "items": {"type": "string", "minLength": 1, "maxLength": 200},
}
#: The parts of a ``targetAudience``, each optional (null: not given); the engine checks their
#: content (400 ``INVALID_AUDIENCE``).
AUDIENCE_PARTS: dict[str, Any] = {
    "segments": {**_NAMES, "description": "segment ids"},
    "tags": {**_NAMES, "description": "tag names"},
    # An empty value of any type (false, 0, "") reads as "not given", as it always has.
    "lists": {"description": f"list ids (integers), at most {MAX_PARTS}"},
    "filters": {"description": f"an object of at most {MAX_PARTS} fields and their values"},
    "condition": {"type": ["object", "null"], "description": "a contact lists API condition"},
    "totalCount": {"description": "computed by the engine; ignored"},
}


def required_in_document(*names: str) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` marking ``names`` required and not null in the document only.

    The engine checks them itself with a clearer code than 422 (``MISSING_CAMPAIGN_ID`` …), so
    the model keeps them optional; the document still tells a client what it must send.
    """

    def extra(schema: dict[str, Any]) -> None:
        schema["required"] = sorted({*schema.get("required", ()), *names})
        for name in names:
            field = schema["properties"][name]
            branches = [b for b in field.pop("anyOf", [field]) if b.get("type") != "null"]
            field.update(branches[0] if len(branches) == 1 else {"anyOf": branches})
            if field.get("type") == "string":
                field.setdefault("minLength", 1)

    return extra


def _text_only(value: Any) -> Any:
    """A timestamp arrives as ISO 8601 text: a number is refused, not read as Unix seconds."""
    if isinstance(value, int | float):
        raise ValueError("a date-time is ISO 8601 text, e.g. 2026-01-31T09:00:00Z")
    return value


#: An ISO 8601 date-time (the strict models read it from text, and only from text).
Timestamp = Annotated[datetime, Field(strict=False), BeforeValidator(_text_only)]
#: ``true`` or ``false``, nothing else.
Flag = StrictBool


def json_integer(value: Any) -> Any:
    """A JSON integer: ``5`` or ``5.0`` (JSON does not tell them apart), never ``"5"`` or ``true``.

    Raises:
        ValueError: anything else (a 422 naming the field).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("an integer is expected")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("an integer is expected")
        return int(value)
    return value


#: An integer as JSON has it (see :func:`json_integer`).
Integer = Annotated[int, BeforeValidator(json_integer)]
#: The largest id the API takes: the largest integer every JSON client reads exactly (2^53 - 1;
#: the store's ids are 64-bit, and far below it).
MAX_ID = 2**53 - 1
#: An object's numeric id.
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(json_integer)]


class ApiModel(BaseModel):
    """Unknown fields are refused (a typo must not pass silently); camelCase or snake_case;
    values of exactly the declared JSON type."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class ConditionItemIn(ApiModel):
    """One test of a contact: ``field_name`` (Email, Phone, Name, tag or a custom field)."""

    model_config = ConfigDict(
        json_schema_extra={
            # Every operator but exist compares with a value.
            "anyOf": [
                {"properties": {"op": {"const": "exist"}}},
                {"required": ["value"], "properties": {"value": {"type": "string"}}},
            ]
        }
    )
    field_name: str = Field(min_length=1, max_length=200)
    op: str = Field(
        min_length=1,
        max_length=32,
        description=", ".join(OPERATORS),
        json_schema_extra={"enum": list(OPERATORS)},
    )
    value: str | None = Field(default=None, max_length=1000, description="not needed by exist")


class ConditionIn(ApiModel):
    """A contact lists API condition: ``relation`` (and / or) over up to 10 ``items``.

    The engine checks it (operators, item count, the fields' types): a bad one is a 400
    ``INVALID_CONDITION``.
    """

    relation: str = Field(
        min_length=1,
        max_length=8,
        description="and or or",
        json_schema_extra={"enum": ["and", "or"]},
    )
    items: list[ConditionItemIn] = Field(
        max_length=100, json_schema_extra={"maxItems": MAX_CONDITION_ITEMS}
    )


class TouchpointIn(ApiModel):
    """A touchpoint to create (SDK reference ``CreateTouchpointInput``)."""

    name: str = Field(default="", max_length=200)
    type: Literal["message", "wait"] = "message"
    message: str | dict[str, Any] | None = None
    delay: float = Field(
        default=0, ge=0, le=365 * 24 * 3600, description="seconds after the previous touchpoint"
    )
    campaign_id: str | None = Field(default=None, description="for POST /api/v1/touchpoints")


class TouchpointCreate(TouchpointIn):
    """``POST /api/v1/touchpoints``: a touchpoint and the campaign it joins."""

    model_config = ConfigDict(json_schema_extra=required_in_document("campaign_id"))


class TouchpointChange(ApiModel):
    """Fields of a touchpoint to change."""

    name: str | None = Field(default=None, max_length=200)
    type: Literal["message", "wait"] | None = None
    message: str | dict[str, Any] | None = None
    delay: float | None = Field(default=None, ge=0, le=365 * 24 * 3600)


class CampaignFields(ApiModel):
    """Optional campaign fields shared by create and update: channel and the campaigns API's
    details."""

    channel: CampaignChannel | None = None
    channel_type: CampaignChannel | None = Field(
        default=None, description="the SDK reference's name for channel"
    )
    channel_config: dict[str, Any] | None = Field(default=None, alias="channelConfig")
    goals: dict[str, Any] | None = None
    target_audience: dict[str, Any] | None = Field(
        default=None,
        alias="targetAudience",
        description="who the campaign reaches: every part given must hold (docs/contacts.md)",
        json_schema_extra={"properties": AUDIENCE_PARTS, "additionalProperties": False},
    )
    strategy: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = Field(default=None, max_length=100)
    budget: float | None = Field(default=None, ge=0)
    start_date: Timestamp | None = Field(default=None, alias="startDate")
    end_date: Timestamp | None = Field(default=None, alias="endDate")
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

    test_mode: Flag = Field(default=False, alias="testMode")
    target_percentage: Integer = Field(default=100, ge=1, le=100, alias="targetPercentage")
    priority: Literal["high", "normal", "low"] = "normal"
    scheduled_at: Timestamp | None = Field(default=None, alias="scheduledAt")


class CloneIn(ApiModel):
    """``POST /campaigns/:id/clone``."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    reset_statistics: Flag = Field(default=True, alias="resetStatistics")


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

    url: str = Field(
        min_length=1,
        max_length=2000,
        description=(
            "an http(s) URL on a public address: a host that is or resolves to a loopback, "
            "private, link-local, CGNAT, multicast or reserved address is refused (400 "
            "OUTBOUND_TARGET_REFUSED) unless the operator allows its network "
            "(OUTBOUND_ALLOWED_NETWORKS); redirects are not followed"
        ),
        json_schema_extra={"pattern": r"^https?://[^\s/?#\[\]@]+([/?#]\S*)?$"},
    )
    events: list[Annotated[str, Field(json_schema_extra={"enum": list(WEBHOOK_EVENTS)})]] = Field(
        min_length=1, max_length=20
    )
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
