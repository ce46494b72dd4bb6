"""Structured logs: one event name per line, with the campaign and execution they concern."""

from __future__ import annotations

from structlog.testing import capture_logs

from engine.campaigns.campaign import TouchpointSpec
from engine.runtime import Runtime
from engine.testing import WebhookSink, wait_until_finished
from tests.factories import execute, make_campaign
from workers.embedded import EmbeddedStack


def test_lifecycle_and_failures_are_logged_with_their_ids(rt: Runtime) -> None:
    with WebhookSink(lambda body, n: (400, {}) if body["contact_id"] == 3 else (200, {})) as sink:
        steps = [TouchpointSpec(name="only", message="hi")]
        _, campaign_id = make_campaign(
            rt, contacts=20, channel="webhook", steps=steps, channel_config={"url": sink.url}
        )
        execution_id = execute(rt, campaign_id)
        with capture_logs() as logs, EmbeddedStack(rt, threads=2):
            wait_until_finished(rt, execution_id)

    by_event = {}
    for entry in logs:
        by_event.setdefault(entry["event"], []).append(entry)
    for event in ("execution.planned", "chunk.delivered", "delivery.failed", "execution.completed"):
        assert event in by_event, f"no {event} line"
        for entry in by_event[event]:
            assert entry["execution_id"] == execution_id
            assert entry["campaign_id"] == campaign_id
    failed = by_event["delivery.failed"]
    assert [(e["contact_id"], e["code"]) for e in failed] == [(3, "HTTP_400")]
