"""Credentials a campaign keeps in its own ``channel_config`` and lifecycle webhook secrets:
stored encrypted, never shown, still used to send, copied by clone without being decrypted."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.db import session_scope
from engine.runtime import Runtime
from engine.testing import WebhookSink, wait_until_finished
from tests.api.conftest import Tenant
from workers.embedded import EmbeddedStack

SECRET = "campaign-own-signing-secret-4711"


def _signed(request: dict[str, Any], secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request["raw"], hashlib.sha256).hexdigest()
    return bool(request["headers"].get("X-Signature") == expected)


def _stored(rt: Runtime, sql: str) -> str:
    with session_scope(rt.engine) as session:
        return " ".join(str(row) for row in session.execute(sa.text(sql)))


def _run(client: TestClient, rt: Runtime, campaign_id: str) -> None:
    execution = client.post(f"/api/v1/campaigns/{campaign_id}/execute")
    assert execution.status_code == 200, execution.text
    with EmbeddedStack(rt, threads=2):
        final = wait_until_finished(rt, execution.json()["data"]["executionId"])
    assert final.status == "completed" and final.successful == 30


def test_a_campaigns_own_credentials_are_encrypted_hidden_cloned_and_sent(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    with WebhookSink() as sink:
        created = client.post(
            "/api/v1/campaigns",
            json={
                "name": "Own secret",
                "channel": "webhook",
                "channelConfig": {"url": sink.url, "secret": SECRET},
                "touchpoints": [{"name": "hi", "message": {"text": "Hi {{ name }}"}}],
            },
        )
        assert created.status_code == 201, created.text
        campaign_id = created.json()["data"]["id"]
        shown = client.get(f"/api/v1/campaigns/{campaign_id}")
        assert shown.json()["data"]["channelConfig"] == {"url": sink.url}
        assert SECRET not in shown.text and SECRET not in client.get("/api/v1/campaigns").text

        # What GET showed can be PUT back: the stored secret stays (same endpoint).
        put = client.put(
            f"/api/v1/campaigns/{campaign_id}", json={"channelConfig": {"url": sink.url}}
        )
        assert put.status_code == 200 and SECRET not in put.text
        clone = client.post(f"/api/v1/campaigns/{campaign_id}/clone", json={"name": "Copy"})
        assert clone.status_code == 201, clone.text
        clone_id = clone.json()["data"]["id"]
        assert SECRET not in client.get(f"/api/v1/campaigns/{clone_id}").text
        assert SECRET not in _stored(rt, "SELECT channel_config, secrets FROM campaigns")

        _run(client, rt, clone_id)
        _run(client, rt, campaign_id)

    assert len(sink.requests) == 60
    assert all(_signed(r, SECRET) for r in sink.requests)


def test_a_new_endpoint_does_not_take_the_stored_secret_along(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    with WebhookSink() as old, WebhookSink() as new:
        body = {
            "name": "Moving",
            "channel": "webhook",
            "channelConfig": {"url": old.url, "secret": SECRET},
            "touchpoints": [{"name": "hi", "message": {"text": "Hi {{ name }}"}}],
        }
        campaign_id = client.post("/api/v1/campaigns", json=body).json()["data"]["id"]
        moved = client.put(
            f"/api/v1/campaigns/{campaign_id}", json={"channelConfig": {"url": new.url}}
        )
        assert moved.status_code == 200, moved.text
        _run(client, rt, campaign_id)
    assert old.requests == [] and len(new.requests) == 30
    assert all("X-Signature" not in r["headers"] for r in new.requests)


def test_webhook_subscription_secrets_are_stored_encrypted_and_shown_once(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    given = "subscription-secret-0815"
    created = client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["campaign.created"], "secret": given},
    )
    assert created.status_code == 201, created.text
    hook = created.json()["data"]
    assert hook["secret"] == given  # shown this once
    generated = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/b", "events": ["campaign.created"]}
    ).json()["data"]["secret"]

    stored = _stored(rt, "SELECT secret FROM webhook_subscriptions")
    assert given not in stored and generated not in stored
    assert given not in client.get(f"/api/v1/webhooks/{hook['id']}").text
    assert given not in client.get("/api/v1/webhooks").text
