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
    # PostgreSQL stays down longer than the drill's HEARTBEAT_STALE_S (10 s): every heartbeat
    # looks stale when it returns, and no live worker's chunk may be taken for dead.
    report = _run(contacts=6000, kills=2, redis_outage_s=3, pg_outage_s=12, timeout_s=240)

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


def test_progress_watch_waits_through_a_database_restart(tmp_path: Path) -> None:
    """`campaign progress --watch` waits ("reconnecting…") instead of exiting with a traceback."""
    import os
    import subprocess
    import tempfile
    import time

    import sqlalchemy as sa

    from engine.db import make_engine, migrate, session_scope
    from engine.models import Execution
    from tests.factories import execute, make_campaign

    drill = _drill_module()
    home = Path(tempfile.mkdtemp(prefix="watch-"))
    home.chmod(0o755)  # the postgres user must reach its data folder inside
    postgres = drill.PrivatePostgres(home / "pg")
    postgres.start()
    try:
        migrate(postgres.url)
        from engine.runtime import Runtime
        from tests.conftest import make_settings

        rt = Runtime.from_settings(make_settings(postgres.url, tmp_path))
        _, campaign_id = make_campaign(rt, contacts=5)
        execution_id = execute(rt, campaign_id)
        rt.close()
        env = {**os.environ, "DATABASE_URL": postgres.url, "COLUMNS": "200"}
        watch = subprocess.Popen(
            [sys.executable, "-m", "engine", "progress", execution_id, "--watch"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)
        postgres.stop()
        time.sleep(3.0)
        assert watch.poll() is None, watch.communicate()  # still watching, not crashed
        postgres.start()
        engine = make_engine(postgres.url, poolclass=sa.pool.NullPool)
        with session_scope(engine) as session:
            session.execute(sa.update(Execution).values(status="cancelled"))
        engine.dispose()
        out, err = watch.communicate(timeout=60)
    finally:
        postgres.stop("fast")
        shutil.rmtree(home, ignore_errors=True)

    assert watch.returncode == 0, err
    assert "cancelled" in out  # it saw the end through the restart
    assert "Traceback" not in err
