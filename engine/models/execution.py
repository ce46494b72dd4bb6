"""Executions of a campaign and their bookkeeping: chunks, deliveries, errors, rate timeline."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import BigIntId, StatusType, new_id, utcnow


class ExecutionStatus(StrEnum):
    """Lifecycle of one execution.

    ``scheduled`` → (scheduler claims) ``queued`` → (planned) ``running`` ⇄ ``paused`` →
    ``completed`` / ``failed`` / ``cancelled``.
    """

    scheduled = "scheduled"
    queued = "queued"
    running = "running"
    paused = "paused"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


#: Statuses an execution never leaves.
FINAL_EXECUTION_STATUSES = frozenset(
    {ExecutionStatus.completed, ExecutionStatus.failed, ExecutionStatus.cancelled}
)


class Priority(StrEnum):
    """Execution priority; each has its own queue and dispatch order."""

    high = "high"
    normal = "normal"
    low = "low"


#: Dispatch order: lower rank goes first.
PRIORITY_RANK = {Priority.high: 0, Priority.normal: 1, Priority.low: 2}


class ChunkStatus(StrEnum):
    """Lifecycle of a chunk: ``pending`` → ``queued`` → ``running`` → ``done`` (or back)."""

    pending = "pending"
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


#: Chunk statuses that still have work to do.
OPEN_CHUNK_STATUSES = (ChunkStatus.pending, ChunkStatus.queued, ChunkStatus.running)


class DeliveryStatus(StrEnum):
    """Outcome of one touchpoint for one contact."""

    sent = "sent"
    failed = "failed"
    skipped = "skipped"


#: SQL condition of an execution that has not finished (``lifecycle.ACTIVE_EXECUTION_STATUSES``).
ACTIVE_EXECUTION_SQL = "status IN ('scheduled', 'queued', 'running', 'paused')"
#: SQL condition of an execution started with an ``Idempotency-Key``.
KEYED_EXECUTION_SQL = "idempotency_key IS NOT NULL"


class Execution(SQLModel, table=True):
    """One run of a campaign; its counters answer progress queries."""

    __tablename__ = "executions"
    __table_args__ = (
        sa.Index("ix_executions_status_scheduled", "status", "scheduled_at"),
        # One active execution per campaign, whatever races: a second execute gets a
        # unique violation (answered 409 EXECUTION_ACTIVE), never a second send to everyone.
        sa.Index(
            "ux_executions_one_active",
            "campaign_id",
            unique=True,
            postgresql_where=sa.text(ACTIVE_EXECUTION_SQL),
            sqlite_where=sa.text(ACTIVE_EXECUTION_SQL),
        ),
        sa.Index(
            "ux_executions_idempotency_key",
            "organization_id",
            "idempotency_key",
            unique=True,
            postgresql_where=sa.text(KEYED_EXECUTION_SQL),
            sqlite_where=sa.text(KEYED_EXECUTION_SQL),
        ),
    )

    id: str = Field(default_factory=lambda: new_id("exe"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    campaign_id: str = Field(foreign_key="campaigns.id", index=True, max_length=32)
    status: ExecutionStatus = Field(
        default=ExecutionStatus.scheduled, sa_type=StatusType(ExecutionStatus)
    )
    priority: str = Field(default=Priority.normal, max_length=8)
    test_mode: bool = False
    target_percentage: int = Field(default=100, ge=1, le=100)
    scheduled_at: datetime = Field(default_factory=utcnow)
    claimed_at: datetime | None = None
    #: Times planning was handed to a worker; past the limit the execution fails.
    plan_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    started_at: datetime | None = None
    paused_at: datetime | None = None
    finished_at: datetime | None = None
    #: Deliveries expected: audience size times message touchpoints.
    total: int = 0
    processed: int = 0
    successful: int = 0
    failed: int = 0
    skipped: int = 0
    error: str | None = Field(default=None, max_length=2000)
    #: The ``Idempotency-Key`` of the request that started it: a retry gets the same answer.
    idempotency_key: str | None = Field(default=None, max_length=200)
    #: The execution this one retries: same recipients, minus whoever was already sent to.
    retry_of: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Chunk(SQLModel, table=True):
    """A contiguous contact-id range of one execution step: one transaction, one message."""

    __tablename__ = "chunks"
    __table_args__ = (
        sa.UniqueConstraint("execution_id", "step", "chunk_no"),
        sa.Index("ix_chunks_dispatch", "status", "priority_rank", "not_before"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    execution_id: str = Field(foreign_key="executions.id", index=True, max_length=32)
    step: int = Field(ge=0)
    touchpoint_id: str = Field(foreign_key="touchpoints.id", max_length=32)
    chunk_no: int = Field(ge=0)
    first_contact_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    last_contact_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    size: int
    status: ChunkStatus = Field(default=ChunkStatus.pending, sa_type=StatusType(ChunkStatus))
    priority_rank: int = 1
    not_before: datetime = Field(default_factory=utcnow)
    #: Incremented at each dispatch: the fencing token of the worker that runs it.
    attempts: int = 0
    #: Times a worker died on it or gave it back after an error; at the limit it fails.
    failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    queued_at: datetime | None = None
    heartbeat_at: datetime | None = None
    error: str | None = Field(default=None, max_length=2000)


class Delivery(SQLModel, table=True):
    """Outcome of one touchpoint for one contact; unique, so accounting is exactly-once."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("execution_id", "touchpoint_id", "contact_id"),
        # Status callbacks find a delivery by the provider's id. Partial: channels without ids
        # (null, log) write no index entry, which kept their delivery rate where it was.
        sa.Index(
            "ix_deliveries_provider_message_id",
            "provider_message_id",
            postgresql_where=sa.text("provider_message_id IS NOT NULL"),
            sqlite_where=sa.text("provider_message_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    execution_id: str = Field(max_length=32)
    touchpoint_id: str = Field(max_length=32)
    contact_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    status: DeliveryStatus = Field(sa_type=StatusType(DeliveryStatus))
    error_code: str | None = Field(default=None, max_length=64)
    attempts: int = 1
    #: The provider's id of the message (indexed: status callbacks are matched by it).
    provider_message_id: str | None = Field(default=None, max_length=200)
    #: The A/B variation sent (``control`` or a variation id); ``None`` without variations.
    variation: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class ExecutionErrorCount(SQLModel, table=True):
    """How many deliveries of an execution failed with each error code."""

    __tablename__ = "execution_errors"

    execution_id: str = Field(foreign_key="executions.id", primary_key=True, max_length=32)
    code: str = Field(primary_key=True, max_length=64)
    count: int = 0
    message: str = Field(default="", max_length=500)


class ExecutionRate(SQLModel, table=True):
    """Deliveries processed per wall-clock second: the timeline behind currentRate and ETA."""

    __tablename__ = "execution_rates"

    execution_id: str = Field(foreign_key="executions.id", primary_key=True, max_length=32)
    second: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    count: int = 0
