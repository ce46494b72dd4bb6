"""The fault drill (``bench/fault_drill.py``) at CI's scale: kills and outages lose nobody.

Each drill runs its own PostgreSQL and Redis (restarted mid-run without disturbing the other
tests) and, for the AMQP variant, a RabbitMQ virtual host of its own. The full-scale figures
(80,000 deliveries, 3 kills, two 8 s outages) are in docs/lifecycle.md.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import require_server

pytestmark = pytest.mark.integration


def _drill_module() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "fault_drill.py"
    spec = importlib.util.spec_from_file_location("fault_drill", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _require_tools(*names: str) -> None:
    def found() -> None:
        missing = [name for name in names if shutil.which(name) is None]
        if missing:
            raise FileNotFoundError(", ".join(missing))

    require_server("fault drill tools", found)


def _run(**plan: Any) -> dict[str, Any]:
    drill = _drill_module()
    report: dict[str, Any] = drill.run(drill.Drill(**plan), log=lambda line: None)
    return report


def test_kills_and_restarts_of_redis_and_postgresql_lose_nobody() -> None:
    _require_tools("redis-server")
    report = _run(contacts=6000, kills=2, redis_outage_s=3, pg_outage_s=3, timeout_s=240)

    assert report["checks"] == {
        "completed": True,
        "processed_is_total": True,
        "everyone_reached": True,
        "accepted_keys_recorded_as_sent": True,
        "resends_within_batches_in_flight": True,
    }, report
    assert [e["event"] for e in report["events"]].count("worker.killed") == 2


def test_with_rabbitmq_as_broker_a_redis_outage_abandons_nobody(amqp_url: str) -> None:
    _require_tools("redis-server", "rabbitmqctl")
    report = _run(
        contacts=5000,
        broker="amqp",
        amqp_url=amqp_url,
        kills=0,
        redis_outage_s=4,
        pg_outage_s=0,
        timeout_s=240,
    )

    assert report["ok"], report
    assert report["distinct_keys"] == report["total"] == 5000
    assert "redis.down" in [e["event"] for e in report["events"]]
