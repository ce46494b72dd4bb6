"""Engagement events in the engine: links rewritten for tracking, callback parsing, and
statistics per segment and per A/B variation (test-mode executions left out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.audience.contacts import create_contact
from engine.audience.segments import create_segment
from engine.campaigns.campaign import TouchpointSpec, create_campaign, get_or_create_organization
from engine.campaigns.statistics import campaign_statistics
from engine.channels.statuses import StatusUpdate, parse_time
from engine.channels.whatsapp import parse_statuses as whatsapp_statuses
from engine.db import session_scope
from engine.errors import ValidationFailed
from engine.integrations.events import (
    Conversion,
    generic_statuses,
    record_click,
    record_conversion,
    record_statuses,
)
from engine.integrations.links import LinkSigner, LinkTokens
from engine.models import Delivery
from engine.runtime import Runtime
from engine.testing import wait_until_finished
from tests.factories import execute
from workers.embedded import EmbeddedStack

SIGNER = LinkSigner(LinkTokens("a-secret-key"), "https://go.example.com/", 1, [])


def test_links_are_rewritten_in_html_hrefs_and_text_only() -> None:
    def track(url: str) -> str:
        return f"T[{url}]"

    body = {
        "subject": "See https://not-rewritten.example.com",
        "html": (
            "<a href=\"https://x.example.com/?a=1&amp;b=2\">x</a> <a href='http://y.example.com'>y"
            '</a> <a href="mailto:me@example.com">m</a> <img src="https://img.example.com/p.png">'
            '<a href="https://go.example.com/u/keep">own</a>'
        ),
        "text": "Go to https://x.example.com/path. Or (https://y.example.com/q?x=1)!",
    }
    out = SIGNER.rewrite(body, track)
    assert out["subject"] == body["subject"]
    assert 'href="T[https://x.example.com/?a=1&amp;b=2]"' in out["html"]
    assert "href='T[http://y.example.com]'" in out["html"]
    assert 'href="mailto:me@example.com"' in out["html"]
    assert 'src="https://img.example.com/p.png"' in out["html"]
    assert 'href="https://go.example.com/u/keep"' in out["html"]
    assert (
        out["text"] == "Go to T[https://x.example.com/path]. Or (T[https://y.example.com/q?x=1])!"
    )
    assert SIGNER.rewrite("plain https://a.example.com", track) == "plain T[https://a.example.com]"
    assert SIGNER.rewrite({"template": {"name": "x"}}, track) == {"template": {"name": "x"}}


def test_callback_bodies_are_parsed_and_checked() -> None:
    payload = {
        "entry": [
            {"changes": [{"value": {"messages": [{"id": "incoming"}]}}]},
            {
                "changes": [
                    {
                        "value": {
                            "statuses": [
                                {"id": "wamid.1", "status": "read", "timestamp": "1700000000"},
                                {"id": 5, "status": "read"},
                            ]
                        }
                    }
                ]
            },
        ]
    }
    [update] = whatsapp_statuses(payload)
    assert update.provider_message_id == "wamid.1" and update.status == "read"
    assert update.occurred_at is not None and update.occurred_at.year == 2023
    with pytest.raises(ValidationFailed):
        whatsapp_statuses([1, 2])
    assert len(generic_statuses({"message_id": "<a@b>", "status": "bounced"})) == 1
    for bad in ([], {"status": "delivered"}, {"message_id": "m", "status": "exploded"}, [3]):
        with pytest.raises(ValidationFailed):
            generic_statuses(bad)
    assert parse_time("2024-06-01T10:00:00Z").isoformat() == "2024-06-01T10:00:00+00:00"  # type: ignore[union-attr]
    assert parse_time(0).year == 1970  # type: ignore[union-attr]
    assert parse_time("garbage", strict=False) is None
    with pytest.raises(ValidationFailed):
        parse_time("garbage")


MESSAGE = {
    "text": "A: hi {{ name }}",
    "variations": [{"id": "b", "content": "B: hello {{ name }}", "weight": 50}],
}


def _org(rt: Runtime) -> tuple[str, list[int], str]:
    """An organization with 10 contacts (4 in the US) and a segment of the US ones."""
    with session_scope(rt.engine) as session:
        org_id = get_or_create_organization(session, "acme").id
        ids = [
            create_contact(
                session,
                org_id,
                {"email": f"p{i}@example.com", "fields": {"location": "US" if i < 4 else "FR"}},
            ).id
            for i in range(10)
        ]
        item = {"field_name": "location", "op": "==", "value": "US"}
        segment = create_segment(session, org_id, "US", {"relation": "and", "items": [item]}).id
    return org_id, ids, segment


def _run(rt: Runtime, campaign_id: str, **options: Any) -> str:
    execution_id = execute(rt, campaign_id, **options)
    with EmbeddedStack(rt, threads=2):
        wait_until_finished(rt, execution_id)
    return execution_id


def test_statistics_count_conversions_per_segment_and_variation(rt: Runtime) -> None:
    org_id, ids, segment = _org(rt)
    with session_scope(rt.engine) as session:
        campaign_id = create_campaign(
            session,
            org_id,
            "ab",
            "log",
            [TouchpointSpec(name="ab", message=MESSAGE)],
            details={"targetAudience": {"segments": [segment]}},
        ).id
    execution_id = _run(rt, campaign_id)
    us = ids[:4]
    with session_scope(rt.engine) as session:
        variations = dict(session.execute(sa.select(Delivery.contact_id, Delivery.variation)).all())
        touchpoint_id = session.scalars(sa.select(Delivery.touchpoint_id)).first()
        # Two US contacts convert (one twice: counted once, revenue summed).
        for contact_id, value in ((us[0], 10.0), (us[0], 5.0), (us[1], 20.0)):
            record_conversion(session, org_id, Conversion(campaign_id, contact_id, value))
        record_click(session, execution_id, str(touchpoint_id), us[2], "https://a.example.com")
    # What happens in a test-mode execution is left out.
    test_execution = _run(rt, campaign_id, test_mode=True)
    with session_scope(rt.engine) as session:
        record_click(session, test_execution, str(touchpoint_id), us[3], "https://a.example.com")

    with session_scope(rt.engine) as session:
        stats = campaign_statistics(session, campaign_id)
    assert stats.overview and stats.performance and stats.segments and stats.variations
    assert stats.overview.messages_sent == 4
    assert stats.overview.converted == 2 and stats.overview.revenue == 35
    assert stats.overview.clicked == 1
    assert stats.performance.conversion_rate == 50.0
    assert stats.performance.click_rate == 25.0  # no receipts: over the contacts sent to
    [seg] = stats.segments
    assert seg.performance.sent == 4 and seg.performance.conversion_rate == 50.0
    by_arm: dict[str, dict[str, int]] = {}
    for contact_id in us:
        arm = by_arm.setdefault(variations[contact_id], {"sent": 0, "converted": 0})
        arm["sent"] += 1
        arm["converted"] += contact_id in (us[0], us[1])
    assert {row.variation_id for row in stats.variations} == set(by_arm)
    for row in stats.variations:
        expected = by_arm[row.variation_id]
        assert row.sent == expected["sent"]
        assert row.conversions == expected["converted"]
        assert row.conversion_rate == round(100 * expected["converted"] / expected["sent"], 1)


def test_statuses_for_unknown_or_foreign_messages_are_not_recorded(rt: Runtime) -> None:
    now = datetime.now(UTC)
    with session_scope(rt.engine) as session:
        org_id = get_or_create_organization(session, "acme").id
        report = record_statuses(
            session,
            org_id,
            "whatsapp",
            [
                StatusUpdate("wamid.recent", "delivered", now - timedelta(minutes=1)),
                StatusUpdate("wamid.old", "delivered", now - timedelta(hours=1)),
                StatusUpdate("y", "sent"),
            ],
        )
    assert (report.pending, report.unmatched, report.ignored, report.recorded) == (1, 1, 1, 0)


def test_an_unknown_id_without_a_reported_time_is_never_pending(rt: Runtime) -> None:
    """Each retry arrives "now": without the provider's time it would be retried forever."""
    status = {"id": "wamid.z", "status": "read", "timestamp": "yesterday-ish"}
    webhook = {"entry": [{"changes": [{"value": {"statuses": [status]}}]}]}
    updates = [
        StatusUpdate("wamid.x", "delivered"),
        *generic_statuses({"message_id": "m.1", "status": "failed"}),
        *whatsapp_statuses(webhook),  # a timestamp that can't be read
    ]
    with session_scope(rt.engine) as session:
        org_id = get_or_create_organization(session, "acme").id
        report = record_statuses(session, org_id, "whatsapp", updates)
    assert (report.pending, report.unmatched, report.recorded) == (0, 3, 0)
