"""The broker adapter: URLs, queues per priority, and actors declared on an explicit broker."""

from __future__ import annotations

import pytest
from dramatiq.brokers.stub import StubBroker

from workers.actors import declare_actors
from workers.broker import CHUNK_QUEUES, PLAN_QUEUE, DramatiqEnqueuer, build_broker


def test_each_priority_has_its_own_queue() -> None:
    broker = build_broker("memory://")
    assert isinstance(broker, StubBroker)
    declare_actors(broker)
    enqueuer = DramatiqEnqueuer(broker)

    enqueuer.enqueue_chunk(7, 2, "high")
    enqueuer.enqueue_chunk(8, 1, "low")
    enqueuer.enqueue_plan("exe_1")

    high = broker.queues[CHUNK_QUEUES["high"]].get_nowait()
    assert high is not None
    assert b'"deliver_chunk"' in high and b"[7,2]" in high
    assert broker.queues[CHUNK_QUEUES["low"]].qsize() == 1
    assert broker.queues[CHUNK_QUEUES["normal"]].qsize() == 0
    assert broker.queues[PLAN_QUEUE].qsize() == 1
    assert set(broker.actors) == {"plan_execution", "deliver_chunk", "send_webhook"}


def test_an_unknown_broker_url_is_refused() -> None:
    with pytest.raises(ValueError, match="BROKER_URL"):
        build_broker("kafka://localhost")
