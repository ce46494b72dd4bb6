"""Thin dramatiq actors: take ids, call one engine service, map errors.

Actors are declared on an explicit broker by :func:`declare_actors` — nothing binds to a
global broker at import time. Each process builds its :class:`~engine.runtime.Runtime` once,
lazily, after dramatiq forked it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import dramatiq
import structlog

from engine.config import get_settings
from engine.db import session_scope
from engine.execution.delivery import deliver_chunk
from engine.execution.planning import plan_execution
from engine.integrations import webhooks
from engine.logging import get_logger
from engine.runtime import Runtime
from scheduler.loop import dispatch_chunks
from workers.broker import (
    CHUNK_ACTOR,
    CHUNK_QUEUES,
    PLAN_ACTOR,
    PLAN_QUEUE,
    WEBHOOK_ACTOR,
    WEBHOOK_QUEUE,
    DramatiqEnqueuer,
)

log = get_logger()
_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """Return this process's runtime, building it on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime.from_settings(get_settings())
        return _runtime


def close_runtime() -> None:
    """Close and forget this process's runtime, if it built one."""
    global _runtime
    with _runtime_lock:
        rt, _runtime = _runtime, None
    if rt is not None:
        rt.close()


def use_runtime(rt: Runtime | None) -> None:
    """Make actors of this process use ``rt`` (embedded mode and tests share theirs)."""
    global _runtime
    with _runtime_lock:
        _runtime = rt


def plan_execution_actor(execution_id: str, enqueuer: DramatiqEnqueuer) -> None:
    """Plan an execution: resolve its audience and write its first chunks; then hand the due
    chunks to workers through ``enqueuer`` at once instead of at the scheduler's next tick
    (best effort: the tick does it anyway)."""
    rt = runtime()
    with structlog.contextvars.bound_contextvars(execution_id=execution_id):
        with session_scope(rt.engine) as session:
            planned = plan_execution(
                session, execution_id, rt.settings.chunk_size, rt.settings.rate_limits
            )
        if planned:
            try:
                dispatch_chunks(rt, enqueuer)
            except Exception as exc:
                log.warning("execution.dispatch_deferred", error=f"{type(exc).__name__}: {exc}")


def deliver_chunk_actor(chunk_id: int, attempt: int) -> None:
    """Deliver a chunk. ``attempt`` is the dispatch that sent this message (for the logs).

    Errors never escape: the service hands the chunk back to the scheduler, which retries it.
    """
    with structlog.contextvars.bound_contextvars(chunk_id=chunk_id, dispatch=attempt):
        deliver_chunk(runtime(), chunk_id)


def send_webhook_actor(delivery_id: int) -> None:
    """POST one lifecycle webhook; failures are rescheduled in SQL with backoff."""
    rt = runtime()
    with structlog.contextvars.bound_contextvars(webhook_delivery_id=delivery_id):
        webhooks.deliver(
            lambda: session_scope(rt.engine), rt.http, delivery_id, rt.settings.verification_keys
        )


def _planning_on(broker: dramatiq.Broker) -> Callable[[str], None]:
    """The planning actor's function, dispatching the planned chunks over ``broker``."""
    enqueuer = DramatiqEnqueuer(broker)

    def plan(execution_id: str) -> None:
        plan_execution_actor(execution_id, enqueuer)

    plan.__name__ = plan_execution_actor.__name__
    return plan


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor]:
    """Declare the engine's actors on ``broker`` and return them by name."""
    return {
        PLAN_ACTOR: dramatiq.actor(
            queue_name=PLAN_QUEUE,
            actor_name=PLAN_ACTOR,
            broker=broker,
            max_retries=5,
            min_backoff=500,
        )(_planning_on(broker)),
        CHUNK_ACTOR: dramatiq.actor(
            queue_name=CHUNK_QUEUES["normal"],
            actor_name=CHUNK_ACTOR,
            broker=broker,
            # Retries are the scheduler's job: a failed chunk goes back to pending in SQL.
            max_retries=0,
            time_limit=3_600_000,
        )(deliver_chunk_actor),
        WEBHOOK_ACTOR: dramatiq.actor(
            queue_name=WEBHOOK_QUEUE,
            actor_name=WEBHOOK_ACTOR,
            broker=broker,
            # Retries with backoff are recorded per delivery in SQL (the delivery log).
            max_retries=0,
        )(send_webhook_actor),
    }
