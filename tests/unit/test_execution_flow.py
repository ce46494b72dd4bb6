"""A campaign runs end to end through the scheduler and dramatiq workers.

Parametrized over every store (SQLite, PostgreSQL) and broker (in-process, Redis).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from engine.campaigns.campaign import TouchpointSpec
from engine.config import Settings
from engine.db import session_scope
from engine.execution.progress import get_progress, get_statistics
from engine.models import Delivery
from engine.runtime import Runtime
from engine.testing import wait_until_finished
from tests.conftest import make_settings
from tests.factories import execute, make_campaign
from workers.embedded import EmbeddedStack


def _runtime(db_url: str, broker_url: str, tmp_path: Path) -> Runtime:
    settings: Settings = make_settings(db_url, tmp_path, broker_url=broker_url)
    return Runtime.from_settings(settings)


def test_two_step_campaign_reaches_every_contact_once_per_step(
    db_url: str, broker_url: str, tmp_path: Path
) -> None:
    rt = _runtime(db_url, broker_url, tmp_path)
    _, campaign_id = make_campaign(rt, contacts=450)
    execution_id = execute(rt, campaign_id)

    with EmbeddedStack(rt, threads=4):
        execution = wait_until_finished(rt, execution_id)

    assert execution.status == "completed"
    assert (execution.total, execution.processed, execution.successful) == (900, 900, 900)
    lines = [
        json.loads(line) for line in Path(rt.settings.log_channel_path).read_text().splitlines()
    ]
    keys = Counter(line["idempotency_key"] for line in lines)
    assert len(keys) == 900 and max(keys.values()) == 1
    first = next(
        line for line in lines if line["contact_id"] == 1 and "Hi" in line["message"]["text"]
    )
    assert first["message"] == {"text": "Hi User0"}
    with session_scope(rt.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 900
    rt.close()


def test_second_touchpoint_waits_its_delay_after_the_first(db_url: str, tmp_path: Path) -> None:
    rt = _runtime(db_url, "memory://", tmp_path)
    _, campaign_id = make_campaign(rt, contacts=120)
    execution_id = execute(rt, campaign_id)

    with EmbeddedStack(rt, threads=4):
        wait_until_finished(rt, execution_id)

    sent_at: dict[int, list[datetime]] = {}
    for line in Path(rt.settings.log_channel_path).read_text().splitlines():
        record = json.loads(line)
        sent_at.setdefault(record["contact_id"], []).append(datetime.fromisoformat(record["at"]))
    gaps = [(times[1] - times[0]).total_seconds() for times in sent_at.values()]
    assert len(gaps) == 120
    assert min(gaps) >= 0.3  # the touchpoint's delay_s
    rt.close()


def test_progress_and_statistics_report_the_finished_run(rt: Runtime) -> None:
    _, campaign_id = make_campaign(rt, contacts=250)
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=4):
        wait_until_finished(rt, execution_id)

    with session_scope(rt.engine) as session:
        progress = get_progress(session, execution_id)
        stats = get_statistics(session, execution_id)

    assert progress.status == "completed"
    counts = (progress.processed, progress.total, progress.successful, progress.failed)
    assert (progress.percentage, counts, progress.skipped) == (100.0, (500, 500, 500, 0), 0)
    assert progress.errors == []
    assert progress.estimated_completion == progress.finished_at is not None
    assert [(t.name, t.sent) for t in stats.touchpoints] == [("hello", 250), ("again", 250)]
    assert stats.average_rate > 0


def test_target_percentage_samples_the_audience_deterministically(rt: Runtime) -> None:
    _, campaign_id = make_campaign(rt, contacts=1000)
    execution_id = execute(rt, campaign_id, target_percentage=30)
    with EmbeddedStack(rt, threads=4):
        execution = wait_until_finished(rt, execution_id)

    contacts = execution.total // 2
    assert 240 <= contacts <= 360  # ~30 % of 1000
    assert execution.successful == execution.total


def test_high_priority_chunks_are_dispatched_before_low(rt: Runtime) -> None:
    from engine.execution.dispatch import claim_chunks, claim_due_executions
    from engine.execution.planning import plan_execution

    _, slow_campaign = make_campaign(rt, contacts=300, org="slow")
    _, fast_campaign = make_campaign(rt, contacts=300, org="fast")
    low = execute(rt, slow_campaign, priority="low")
    high = execute(rt, fast_campaign, priority="high")
    with session_scope(rt.engine) as session:
        for execution_id in claim_due_executions(session):
            plan_execution(session, execution_id, chunk_size=100)
    with session_scope(rt.engine) as session:
        claimed = claim_chunks(session, limit=4)

    assert [c.priority for c in claimed] == ["high", "high", "high", "low"]
    assert {low, high}


def test_a_template_that_fails_for_a_contact_fails_only_that_delivery(rt: Runtime) -> None:
    steps = [TouchpointSpec(name="odd", message="{% if id % 2 %}{{ missing.field }}{% endif %}hi")]
    _, campaign_id = make_campaign(rt, contacts=40, steps=steps)
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=2):
        execution = wait_until_finished(rt, execution_id)
    with session_scope(rt.engine) as session:
        errors = get_progress(session, execution_id).errors

    assert execution.status == "completed"
    assert (execution.successful, execution.failed) == (20, 20)
    assert [(e.code, e.count) for e in errors] == [("TEMPLATE_ERROR", 20)]
