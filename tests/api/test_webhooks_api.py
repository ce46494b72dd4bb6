"""Lifecycle webhooks: written with the change, delivered in order, signed, retried, logged."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi.testclient import TestClient

from engine.runtime import Runtime
from engine.testing import WebhookSink, wait_for, wait_until_finished
from tests.api.conftest import Tenant, make_tenant
from workers.embedded import EmbeddedStack

ALL_EVENTS = ["campaign.created", "campaign.started", "campaign.completed", "campaign.failed",
              "campaign.paused", "campaign.resumed"]  # fmt: skip


def _subscribe(client: TestClient, url: str, events: list[str] = ALL_EVENTS) -> dict[str, Any]:
    response = client.post("/api/v1/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def _campaign(client: TestClient) -> str:
    body = {"name": "Hooks", "channel": "log", "touchpoints": [{"message": "hi {{ name }}"}]}
    return str(client.post("/api/v1/campaigns", json=body).json()["data"]["id"])


def _signed(request: dict[str, Any], secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request["raw"], hashlib.sha256).hexdigest()
    return bool(request["headers"].get("X-Signature") == expected)


def test_a_run_sends_created_started_completed_in_order_and_signed(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    with WebhookSink() as sink:
        hook = _subscribe(client, sink.url)
        campaign_id = _campaign(client)
        execution_id = client.post(f"/api/v1/campaigns/{campaign_id}/execute").json()["data"][
            "executionId"
        ]
        with EmbeddedStack(rt, threads=2):
            wait_until_finished(rt, execution_id)
            wait_for(lambda: len(sink.requests) >= 3, timeout=30)

    events = [r["body"]["event"] for r in sink.requests]
    assert events == ["campaign.created", "campaign.started", "campaign.completed"]
    assert all(_signed(r, hook["secret"]) for r in sink.requests)
    completed = sink.requests[2]["body"]["data"]
    assert completed["campaignId"] == campaign_id and completed["executionId"] == execution_id
    assert completed["progress"]["successful"] == 30 and completed["status"] == "completed"
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()["data"]
    assert [(d["event"], d["status"], d["attempts"], d["statusCode"]) for d in reversed(log)] == [
        ("campaign.created", "delivered", 1, 200),
        ("campaign.started", "delivered", 1, 200),
        ("campaign.completed", "delivered", 1, 200),
    ]


def test_failed_deliveries_are_retried_with_backoff_and_order_is_kept(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    seen: dict[str, int] = {}

    def flaky(body: dict[str, Any], n: int) -> tuple[int, dict[str, str]]:
        seen[body["id"]] = seen.get(body["id"], 0) + 1
        return (500, {}) if seen[body["id"]] == 1 else (200, {})

    with WebhookSink(flaky) as sink:
        hook = _subscribe(
            client, sink.url, ["campaign.created", "campaign.paused", "campaign.resumed"]
        )
        campaign_id = _campaign(client)
        client.post(
            f"/api/v1/campaigns/{campaign_id}/execute", json={"scheduledAt": "2999-01-01T00:00:00Z"}
        )
        client.post(f"/api/v1/campaigns/{campaign_id}/pause")
        client.post(f"/api/v1/campaigns/{campaign_id}/resume")
        with EmbeddedStack(rt, threads=2):
            wait_for(lambda: len(sink.requests) >= 6, timeout=60)

    events = [r["body"]["event"] for r in sink.requests]
    # Each event fails once, then succeeds before the next event is tried.
    assert events == ["campaign.created"] * 2 + ["campaign.paused"] * 2 + ["campaign.resumed"] * 2
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()["data"]
    assert {(d["status"], d["attempts"], d["statusCode"]) for d in log} == {("delivered", 2, 200)}


def test_only_subscribed_events_of_the_own_organization_are_sent(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    other = make_tenant(client, rt, "globex")
    later = {"scheduledAt": "2999-01-01T00:00:00Z"}
    with WebhookSink() as sink:
        _subscribe(client, sink.url, ["campaign.paused"])
        theirs = client.post(
            "/api/v1/campaigns",
            json={"name": "theirs", "channel": "log", "touchpoints": [{"message": "x"}]},
            headers=other.headers(),
        ).json()["data"]["id"]
        client.post(f"/api/v1/campaigns/{theirs}/execute", json=later, headers=other.headers())
        client.post(f"/api/v1/campaigns/{theirs}/pause", headers=other.headers())  # not ours
        ours = _campaign(client)  # created: not subscribed
        client.post(f"/api/v1/campaigns/{ours}/execute", json=later)
        client.post(f"/api/v1/campaigns/{ours}/pause")
        with EmbeddedStack(rt, threads=2):
            wait_for(lambda: len(sink.requests) >= 1, timeout=30)

    assert [(r["body"]["event"], r["body"]["data"]["campaignId"]) for r in sink.requests] == [
        ("campaign.paused", ours)
    ]


def test_bad_subscriptions_are_clear_errors(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    for body, status, code in [
        ({"url": "ftp://x", "events": ["campaign.created"]}, 400, "INVALID_URL"),
        ({"url": "http://x", "events": ["campaign.exploded"]}, 400, "INVALID_EVENTS"),
        ({"url": "http://x", "events": []}, 422, "VALIDATION_FAILED"),
        (
            {"url": "http://x", "events": ["campaign.created"], "secret": "short"},
            422,
            "VALIDATION_FAILED",
        ),
    ]:
        response = client.post("/api/v1/webhooks", json=body)
        assert response.status_code == status and response.json()["error"]["code"] == code
    hook = _subscribe(client, "http://127.0.0.1:9/hook")
    assert "secret" not in client.get(f"/api/v1/webhooks/{hook['id']}").json()["data"]
    other = make_tenant(client, rt, "globex")
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=other.headers()).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{hook['id']}").json()["success"] is True
    assert client.get("/api/v1/webhooks").json()["data"][0]["active"] is False
