"""Pause stops new sends within one chunk's time; resume re-sends nobody; cancel drops the rest."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from engine.campaigns.campaign import TouchpointSpec
from engine.db import session_scope
from engine.errors import InvalidTransition
from engine.execution.runs import cancel_execution, pause_execution, resume_execution
from engine.runtime import Runtime
from engine.testing import execution_state, wait_for, wait_until_finished
from tests.factories import execute, make_campaign
from workers.embedded import EmbeddedStack

ONE_STEP = [TouchpointSpec(name="only", message="hello {{ name }}")]


def _slow_campaign(rt: Runtime, contacts: int = 600) -> str:
    # 200 messages/s: the run lasts ~3 s, long enough to pause in the middle.
    _, campaign_id = make_campaign(
        rt, contacts=contacts, steps=ONE_STEP, channel_config={"rate_per_s": 200}
    )
    return execute(rt, campaign_id)


def _sent_keys(rt: Runtime) -> Counter[str]:
    path = Path(rt.settings.log_channel_path)
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(json.loads(line)["idempotency_key"] for line in lines)


def test_pause_stops_sending_and_resume_sends_everyone_exactly_once(rt: Runtime) -> None:
    execution_id = _slow_campaign(rt)
    with EmbeddedStack(rt, threads=4):
        wait_for(lambda: execution_state(rt, execution_id).processed >= 100, timeout=30)
        with session_scope(rt.engine) as session:
            pause_execution(session, execution_id)
        # Within one chunk's time (heartbeat checks every 2 s) the sends stop.
        time.sleep(3.0)
        frozen = sum(_sent_keys(rt).values())
        time.sleep(1.0)
        assert sum(_sent_keys(rt).values()) == frozen < 600
        assert execution_state(rt, execution_id).status == "paused"

        with session_scope(rt.engine) as session:
            resume_execution(session, execution_id)
        execution = wait_until_finished(rt, execution_id)

    assert execution.status == "completed"
    assert execution.processed == execution.successful == 600
    keys = _sent_keys(rt)
    assert len(keys) == 600 and max(keys.values()) == 1


def test_cancel_stops_the_run_for_good(rt: Runtime) -> None:
    execution_id = _slow_campaign(rt)
    with EmbeddedStack(rt, threads=4):
        wait_for(lambda: execution_state(rt, execution_id).processed >= 50, timeout=30)
        with session_scope(rt.engine) as session:
            cancel_execution(session, execution_id)
        time.sleep(3.0)
        execution = execution_state(rt, execution_id)

    assert execution.status == "cancelled"
    assert execution.processed < 600
    assert sum(_sent_keys(rt).values()) < 600


def test_pausing_twice_is_a_clear_error(rt: Runtime) -> None:
    execution_id = _slow_campaign(rt, contacts=10)
    with session_scope(rt.engine) as session:
        pause_execution(session, execution_id)
    with pytest.raises(InvalidTransition) as err, session_scope(rt.engine) as session:
        pause_execution(session, execution_id)
    assert err.value.code == "CANNOT_PAUSE"
    with pytest.raises(InvalidTransition), session_scope(rt.engine) as session:
        resume_execution(session, execution_id)
        resume_execution(session, execution_id)
