"""SQLModel table models, one module per aggregate. Importing this registers every table."""

from engine.models.audience import ChannelBlock, ExecutionRecipient, Segment, Suppression
from engine.models.auth import ApiKey, User
from engine.models.bot import ActionStatus, Bot, CampaignAction, Trigger
from engine.models.campaign import Campaign, CampaignStatus, Touchpoint, TouchpointType
from engine.models.channel_account import ChannelAccount
from engine.models.contact import (
    ApiUser,
    Contact,
    ContactField,
    ContactList,
    ContactTag,
    FieldType,
    Tag,
)
from engine.models.event import EngagementEvent, EngagementType
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
from engine.models.link import MessageLinks
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
    "ActionStatus",
    "ApiKey",
    "ApiUser",
    "Bot",
    "Campaign",
    "CampaignAction",
    "CampaignStatus",
    "ChannelAccount",
    "ChannelBlock",
    "Chunk",
    "ChunkStatus",
    "Contact",
    "ContactField",
    "ContactList",
    "ContactTag",
    "Delivery",
    "DeliveryStatus",
    "EngagementEvent",
    "EngagementType",
    "Execution",
    "ExecutionErrorCount",
    "ExecutionRate",
    "ExecutionRecipient",
    "ExecutionStatus",
    "FieldType",
    "MessageLinks",
    "Organization",
    "OutboxEvent",
    "Priority",
    "Segment",
    "Suppression",
    "Tag",
    "Touchpoint",
    "TouchpointType",
    "Trigger",
    "User",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "WebhookSubscription",
]
