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

__all__ = [
    "FINAL_EXECUTION_STATUSES",
    "OPEN_CHUNK_STATUSES",
    "PRIORITY_RANK",
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
    "Priority",
    "Touchpoint",
    "TouchpointType",
    "User",
]
