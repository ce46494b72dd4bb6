"""End to end: the SDK against a live server and real workers, with signed lifecycle webhooks."""

from __future__ import annotations

import hashlib
import hmac

from engine.client import Client
from engine.runtime import Runtime
from engine.testing import WebhookSink, wait_for
from workers.embedded import EmbeddedStack

pytest_plugins = ["tests.api.live"]


def test_sdk_campaign_runs_to_completion_and_the_receiver_gets_signed_events_in_order(
    sdk: Client, rt: Runtime
) -> None:
    with WebhookSink() as sink:
        hook = sdk.webhooks.create(
            sink.url, ["campaign.created", "campaign.started", "campaign.completed"]
        )
        campaign = sdk.campaign.create({"name": "Welcome series", "channel_type": "log"})
        for name, text, delay in [
            ("welcome", "Hi {{ first_name }}!", 0),
            ("follow-up", "Still there?", 0.2),
        ]:
            sdk.campaign.create_touchpoint(
                {
                    "name": name,
                    "type": "message",
                    "campaign_id": campaign["_id"],
                    "message": {"text": text},
                    "delay": delay,
                }
            )
        assert sdk.campaign.validate_touchpoint(
            {"touchpoint_id": sdk.campaign.list_touchpoints(campaign["_id"])["data"][0]["_id"]}
        ) == {"valid": True, "errors": []}

        started = sdk.campaign.execute(campaign["_id"], priority="high")
        with EmbeddedStack(rt, threads=4):
            progress = wait_for(
                lambda: (
                    (p := sdk.campaign.progress(campaign["_id"]))["status"] == "completed" and p
                ),
                timeout=120,
            )
            wait_for(lambda: len(sink.requests) >= 3, timeout=30)

    assert (
        progress["progress"]["processed"] == progress["progress"]["total"] == 60
    )  # 30 contacts x 2
    assert progress["progress"]["successful"] == 60 and progress["errors"] == []
    assert [r["body"]["event"] for r in sink.requests] == [
        "campaign.created", "campaign.started", "campaign.completed",
    ]  # fmt: skip
    for request in sink.requests:
        expected = hmac.new(hook["secret"].encode(), request["raw"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Signature"] == f"sha256={expected}"
    assert sink.requests[2]["body"]["data"]["executionId"] == started["executionId"]
    log = sdk.webhooks.deliveries(hook["id"])
    assert [d["event"] for d in log] == [
        "campaign.completed",
        "campaign.started",
        "campaign.created",
    ]
    assert {d["status"] for d in log} == {"delivered"}
