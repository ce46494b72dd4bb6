"""The execution lifecycle as one state machine: statuses, the transitions allowed, stop reasons.

Every status write of an execution checks :func:`check_execution_transition` (row by row) or
takes its ``WHERE`` from :func:`moving_from` (in one SQL ``UPDATE``), and the campaign's status
always follows its current execution's through :data:`CAMPAIGN_STATUS_OF`. Nothing else decides
whether a status may change::

    scheduled ─claim→ queued ─plan→ running ─last chunk→ completed | failed
        ▲ broker down │
        │  ▲             │             │ ▲
        │  └──resume──┐  │             ▼ │resume
        └──pause──→ paused ←──pause────┘
    scheduled | queued | running | paused ─cancel→ cancelled
    queued ─planning failed / empty audience→ failed

A chunk is ``pending`` → ``queued`` (dispatched) → ``running`` (a worker owns it) → ``done``;
a worker that stops gives it back to ``pending`` (pause, an outage, a worker death) or leaves
it ``cancelled``; a chunk that fails ``CHUNK_MAX_ATTEMPTS`` times for its own reasons is
``failed``.
"""

from __future__ import annotations

from enum import StrEnum

from engine.errors import InvalidTransition
from engine.models.campaign import CampaignStatus
from engine.models.execution import ChunkStatus, ExecutionStatus

E = ExecutionStatus

#: For each execution status, the statuses it may move to.
EXECUTION_TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    E.scheduled: frozenset({E.queued, E.paused, E.cancelled}),
    # queued → scheduled: the broker was unreachable, the planning was never handed over.
    E.queued: frozenset({E.running, E.failed, E.paused, E.cancelled, E.scheduled}),
    E.running: frozenset({E.completed, E.failed, E.paused, E.cancelled}),
    E.paused: frozenset({E.running, E.scheduled, E.cancelled}),
    E.completed: frozenset(),
    E.failed: frozenset(),
    E.cancelled: frozenset(),
}

#: Statuses of an execution that is not finished: at most one per campaign (a unique index).
ACTIVE_EXECUTION_STATUSES = frozenset(s for s, nxt in EXECUTION_TRANSITIONS.items() if nxt)

#: The campaign's status while its newest execution is in each status.
CAMPAIGN_STATUS_OF: dict[ExecutionStatus, CampaignStatus] = {
    E.scheduled: CampaignStatus.scheduled,
    E.queued: CampaignStatus.scheduled,
    E.running: CampaignStatus.active,
    E.paused: CampaignStatus.paused,
    E.completed: CampaignStatus.completed,
    E.failed: CampaignStatus.failed,
    E.cancelled: CampaignStatus.cancelled,
}

#: The verbs that move an execution there, for error messages.
_VERB = {
    E.paused: "paused",
    E.running: "resumed",
    E.scheduled: "resumed",
    E.cancelled: "cancelled",
    E.queued: "claimed",
    E.completed: "completed",
    E.failed: "failed",
}


def moving_from(source: ExecutionStatus, target: ExecutionStatus) -> ExecutionStatus:
    """``source``, for the ``WHERE`` of an SQL ``UPDATE`` that moves executions to ``target``.

    Raises:
        ValueError: the table does not allow the move (a bug in the caller, not bad input).
    """
    if target not in EXECUTION_TRANSITIONS[source]:
        raise ValueError(f"no execution moves from {source} to {target}")
    return source


def can_move(current: str, target: ExecutionStatus) -> bool:
    """Whether an execution in ``current`` may move to ``target``."""
    return target in EXECUTION_TRANSITIONS.get(ExecutionStatus(current), frozenset())


def check_execution_transition(
    execution_id: str, current: str, target: ExecutionStatus, code: str
) -> None:
    """Raise unless an execution in ``current`` may move to ``target``.

    Raises:
        InvalidTransition: with ``code`` (``CANNOT_PAUSE``, ``CANNOT_RESUME`` …).
    """
    if not can_move(current, target):
        raise InvalidTransition(
            f"execution {execution_id!r} is {current}; it cannot be {_VERB[target]}", code=code
        )


class StopReason(StrEnum):
    """Why a worker stops a chunk before its end."""

    #: The execution was paused: the chunk goes back to ``pending``, resumed later.
    paused = "paused"
    #: The execution was cancelled: the chunk is ``cancelled``, nobody else is sent.
    cancelled = "cancelled"
    #: A service (limiter, database, broker) is unreachable: the chunk goes back to
    #: ``pending`` after a backoff, without counting as the chunk's failure.
    outage = "outage"
    #: The chunk is no longer this worker's (given back as stalled, taken by another).
    fenced = "fenced"
    #: The worker was interrupted (dramatiq's time limit, a shutdown): the chunk goes back
    #: to ``pending`` at once.
    interrupted = "interrupted"


def stop_reason_of(status: str) -> StopReason | None:
    """Why a chunk of an execution in ``status`` must stop, or ``None`` to go on."""
    if status == ExecutionStatus.running:
        return None
    return StopReason.paused if status == ExecutionStatus.paused else StopReason.cancelled


def chunk_status_after(stopped: StopReason | None) -> ChunkStatus:
    """The status a chunk takes when its worker finishes (``None``) or stops (why)."""
    if stopped is None:
        return ChunkStatus.done
    return ChunkStatus.cancelled if stopped == StopReason.cancelled else ChunkStatus.pending
