"""SQLModel table models, one module per aggregate. Importing this registers every table."""

from engine.models.auth import ApiKey, User
from engine.models.campaign import Campaign, CampaignStatus, Touchpoint, TouchpointType
from engine.models.contact import Contact
from engine.models.execution import (
    FINAL_EXECUTION_STATUSES,
    OPEN_CHUNK_STATUSES,
    PRIORITY_RANK,
    Chunk,
    ChunkStatus,
    Delivery,
    DeliveryStatus,
    Execution,
    ExecutionErrorCount,
    ExecutionRate,
    ExecutionStatus,
    Priority,
)
from engine.models.org import Organization
from engine.models.webhook import (
    WEBHOOK_EVENTS,
    OutboxEvent,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookSubscription,
)

__all__ = [
    "FINAL_EXECUTION_STATUSES",
    "OPEN_CHUNK_STATUSES",
    "PRIORITY_RANK",
    "WEBHOOK_EVENTS",
    "ApiKey",
    "Campaign",
    "CampaignStatus",
    "Chunk",
    "ChunkStatus",
    "Contact",
    "Delivery",
    "DeliveryStatus",
    "Execution",
    "ExecutionErrorCount",
    "ExecutionRate",
    "ExecutionStatus",
    "Organization",
    "OutboxEvent",
    "Priority",
    "Touchpoint",
    "TouchpointType",
    "User",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "WebhookSubscription",
]
