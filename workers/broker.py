"""Builds the dramatiq broker named by ``BROKER_URL`` and enqueues the engine's messages."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

#: Queue of ``plan_execution`` messages.
PLAN_QUEUE = "campaign.plan"
#: Queue of ``send_webhook`` messages (lifecycle events).
WEBHOOK_QUEUE = "campaign.webhooks"
#: Queue of ``deliver_chunk`` messages, one per priority.
CHUNK_QUEUES = {p: f"campaign.chunks.{p}" for p in ("high", "normal", "low")}
#: Actor names: what a message names, and what ``workers.actors`` declares.
PLAN_ACTOR, CHUNK_ACTOR, WEBHOOK_ACTOR = "plan_execution", "deliver_chunk", "send_webhook"


def build_broker(url: str) -> dramatiq.Broker:
    """Return a broker for ``url``: ``memory://`` (in-process), ``redis://…`` or ``amqp://…``.

    Raises:
        ValueError: the URL's scheme is not one of these.
    """
    if url.startswith("memory://"):
        broker: dramatiq.Broker = StubBroker()
        broker.emit_after("process_boot")
    elif url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    else:
        raise ValueError(f"BROKER_URL must start with memory://, redis:// or amqp:// (got {url!r})")
    for queue in (PLAN_QUEUE, WEBHOOK_QUEUE, *CHUNK_QUEUES.values()):
        broker.declare_queue(queue)
    return broker


class DramatiqEnqueuer:
    """The scheduler's way to hand work to workers, over a dramatiq broker."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def enqueue_plan(self, execution_id: str) -> None:
        """Enqueue ``plan_execution(execution_id)``."""
        self._send(PLAN_QUEUE, PLAN_ACTOR, (execution_id,))

    def enqueue_chunk(self, chunk_id: int, attempt: int, priority: str) -> None:
        """Enqueue ``deliver_chunk(chunk_id, attempt)`` on the queue of ``priority``."""
        self._send(
            CHUNK_QUEUES.get(priority, CHUNK_QUEUES["normal"]), CHUNK_ACTOR, (chunk_id, attempt)
        )

    def enqueue_webhook(self, delivery_id: int) -> None:
        """Enqueue ``send_webhook(delivery_id)``."""
        self._send(WEBHOOK_QUEUE, WEBHOOK_ACTOR, (delivery_id,))

    def _send(self, queue: str, actor: str, args: tuple[object, ...]) -> None:
        self.broker.enqueue(
            dramatiq.Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={})
        )
