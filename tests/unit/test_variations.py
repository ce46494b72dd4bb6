"""A/B variations: deterministic weighted split, each contact's version sent and counted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from engine.campaigns.campaign import TouchpointSpec
from engine.campaigns.statistics import campaign_statistics
from engine.campaigns.variations import CONTROL, pick_variation
from engine.db import session_scope
from engine.runtime import Runtime
from engine.testing import wait_until_finished
from tests.factories import execute, make_campaign
from workers.embedded import EmbeddedStack

MESSAGE = {
    "text": "A: hi {{ name }}",
    "variations": [
        {"id": "b", "content": "B: hello {{ name }}", "weight": 30},
        {"id": "c", "content": "C: hey {{ name }}", "weight": 20},
    ],
}


def test_the_split_follows_the_weights_and_is_stable() -> None:
    picks = [pick_variation(MESSAGE, "exe_1", "tp_1", contact)[0] for contact in range(20_000)]
    shares = {arm: n / len(picks) for arm, n in Counter(picks).items()}
    assert shares.keys() == {CONTROL, "b", "c"}  # the control keeps 100 - 30 - 20
    assert shares[CONTROL] == pytest.approx(0.5, abs=0.02)
    assert shares["b"] == pytest.approx(0.3, abs=0.02)
    assert shares["c"] == pytest.approx(0.2, abs=0.02)
    again = [pick_variation(MESSAGE, "exe_1", "tp_1", contact)[0] for contact in range(20_000)]
    assert again == picks
    other_run = [pick_variation(MESSAGE, "exe_2", "tp_1", c)[0] for c in range(20_000)]
    assert other_run != picks  # a new execution draws anew


def test_a_variation_overrides_content_and_its_own_keys() -> None:
    message = {
        "subject": "Sale",
        "text": "base",
        "variations": [{"id": "v", "weight": 100, "content": "other", "subject": "SALE!"}],
    }
    arm, body = pick_variation(message, "exe", "tp", 1)
    assert (arm, body) == ("v", {"subject": "SALE!", "text": "other"})
    assert pick_variation("plain {{ name }}", "exe", "tp", 1) == (None, "plain {{ name }}")


def test_each_contact_receives_its_version_and_statistics_count_them(rt: Runtime) -> None:
    _, campaign_id = make_campaign(
        rt, contacts=600, steps=[TouchpointSpec(name="ab", message=MESSAGE)]
    )
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=4):
        wait_until_finished(rt, execution_id)

    lines = [json.loads(x) for x in Path(rt.settings.log_channel_path).read_text().splitlines()]
    assert len(lines) == 600
    sent = Counter()
    for line in lines:
        arm, _ = pick_variation(MESSAGE, execution_id, line["touchpoint_id"], line["contact_id"])
        prefix = {CONTROL: "A:", "b": "B:", "c": "C:"}[arm]
        assert line["message"]["text"].startswith(prefix)
        assert "variations" not in line["message"]
        sent[arm] += 1
    with session_scope(rt.engine) as session:
        stats = campaign_statistics(session, campaign_id, metrics="variations").variations or []
    assert {s.variation_id: s.sent for s in stats} == dict(sent)
    assert sum(s.share for s in stats) == pytest.approx(100, abs=0.2)
