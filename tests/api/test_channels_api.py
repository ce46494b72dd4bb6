"""``/api/v1/channels``: provider credentials per organization, encrypted, used by campaigns."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.db import session_scope
from engine.integrations.channel_accounts import channel_config
from engine.models import Campaign
from engine.runtime import Runtime
from engine.testing import WebhookSink, wait_until_finished
from tests.api.conftest import Tenant, make_tenant
from workers.embedded import EmbeddedStack


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    return dict(body["error"])


def _campaign(client: TestClient, **config: Any) -> str:
    response = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Hooked",
            "channel": "webhook",
            "channelConfig": config,
            "touchpoints": [{"name": "hi", "message": {"text": "Hi {{ name }}"}}],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def test_secrets_are_stored_encrypted_and_never_shown(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    config = {"url": "http://127.0.0.1:9/hook", "secret": "hunter2-very-secret"}
    created = client.post("/api/v1/channels", json={"channel": "webhook", "config": config})
    assert created.status_code == 201, created.text
    account = created.json()["data"]
    assert account["name"] == "default" and account["secrets"] == ["secret"]
    assert account["settings"] == {"url": "http://127.0.0.1:9/hook"}
    listed = client.get("/api/v1/channels").json()["data"]["channels"]
    assert listed == [account]
    assert "hunter2" not in client.get(f"/api/v1/channels/{account['id']}").text
    with session_scope(rt.engine) as session:
        stored = session.execute(sa.text("SELECT secrets FROM channel_accounts")).scalar_one()
    assert "hunter2" not in stored

    rotated = client.put(
        f"/api/v1/channels/{account['id']}",
        json={"config": {"secret": None, "url": "http://x.test/"}},
    ).json()["data"]
    assert rotated["secrets"] == [] and rotated["settings"] == {"url": "http://x.test/"}


def test_a_campaign_sends_with_its_organizations_account(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    with WebhookSink() as sink:
        config = {"url": sink.url, "secret": "s3cret"}
        client.post("/api/v1/channels", json={"channel": "webhook", "config": config})
        campaign_id = _campaign(client)  # no url, no secret: the account provides both
        execution = client.post(f"/api/v1/campaigns/{campaign_id}/execute")
        assert execution.status_code == 200, execution.text
        with EmbeddedStack(rt, threads=2):
            finished = wait_until_finished(rt, execution.json()["data"]["executionId"])

    assert finished.status == "completed" and finished.successful == 30
    for request in sink.requests:
        expected = hmac.new(b"s3cret", request["raw"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Signature"] == f"sha256={expected}"


def test_missing_or_unknown_credentials_stop_execution_before_sending(
    client: TestClient, tenant: Tenant
) -> None:
    body = {"name": "Bad", "channel": "webhook", "channelConfig": {"url": "ftp://x"}}
    # No account on the channel: a config the campaign gives must work on its own, now.
    _error(client.post("/api/v1/campaigns", json=body), 400, "INVALID_CHANNEL_CONFIG")
    draft = _campaign(client)  # nothing given: a draft may get its credentials later
    error = _error(client.post(f"/api/v1/campaigns/{draft}/execute"), 400, "MISSING_CREDENTIALS")
    assert "url" in error["message"]

    account = client.post(
        "/api/v1/channels", json={"channel": "webhook", "config": {"url": "http://127.0.0.1:9/"}}
    ).json()["data"]
    bare = _campaign(client)  # the account completes it
    named = _campaign(client, account="us")
    client.delete(f"/api/v1/channels/{account['id']}")
    _error(client.post(f"/api/v1/campaigns/{bare}/execute"), 400, "MISSING_CREDENTIALS")
    _error(client.post(f"/api/v1/campaigns/{named}/execute"), 400, "ACCOUNT_NOT_FOUND")
    touchpoint = client.get(f"/api/v1/campaigns/{bare}").json()["data"]["touchpoints"][0]["id"]
    report = client.post(f"/api/v1/touchpoints/{touchpoint}/validate").json()["data"]
    assert [e["code"] for e in report["errors"]] == ["MISSING_CREDENTIALS"]


def test_bad_accounts_are_refused(client: TestClient, tenant: Tenant, rt: Runtime) -> None:
    _error(
        client.post("/api/v1/channels", json={"channel": "webhook", "config": {"url": "ftp://x"}}),
        400,
        "INVALID_CHANNEL_CONFIG",
    )
    _error(
        client.post("/api/v1/channels", json={"channel": "pigeon", "config": {}}),
        400,
        "UNKNOWN_CHANNEL",
    )
    good = {"channel": "webhook", "config": {"url": "http://127.0.0.1:9/"}}
    first = client.post("/api/v1/channels", json=good).json()["data"]
    _error(client.post("/api/v1/channels", json=good), 409, "ACCOUNT_EXISTS")
    other = make_tenant(client, rt, "globex", contacts=0)
    _error(
        client.get(f"/api/v1/channels/{first['id']}", headers=other.headers()),
        404,
        "ACCOUNT_NOT_FOUND",
    )
    assert client.delete(f"/api/v1/channels/{first['id']}").status_code == 200
    _error(client.get(f"/api/v1/channels/{first['id']}"), 404, "ACCOUNT_NOT_FOUND")


def test_a_campaign_cannot_send_an_accounts_secrets_to_its_own_server(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    with WebhookSink() as real, WebhookSink() as evil:
        # Stored before the account existed: the campaign's own config was complete then.
        early = _campaign(client, url=evil.url)
        config = {"url": real.url, "secret": "s3cret"}
        client.post("/api/v1/channels", json={"channel": "webhook", "config": config})

        refused = client.post(
            "/api/v1/campaigns",
            json={"name": "Evil", "channel": "webhook", "channelConfig": {"url": evil.url}},
        )
        assert "url" in _error(refused, 400, "ENDPOINT_OVERRIDE")["message"]
        plain = _campaign(client, rate_per_s=50)  # other settings may still be overridden
        changed = client.put(
            f"/api/v1/campaigns/{plain}", json={"channelConfig": {"url": evil.url}}
        )
        _error(changed, 400, "ENDPOINT_OVERRIDE")
        _error(client.post(f"/api/v1/campaigns/{early}/execute"), 400, "ENDPOINT_OVERRIDE")
        with session_scope(rt.engine) as session:
            campaign = session.get(Campaign, early)
            assert campaign is not None
            sent_with = channel_config(session, rt.settings.secret_key, campaign)
        assert sent_with["url"] == real.url  # never merged, even past the checks

        execution = client.post(f"/api/v1/campaigns/{plain}/execute")
        assert execution.status_code == 200, execution.text
        with EmbeddedStack(rt, threads=2):
            wait_until_finished(rt, execution.json()["data"]["executionId"])
    assert evil.requests == [] and len(real.requests) == 30


def test_moving_an_accounts_endpoint_needs_its_secrets_again(
    client: TestClient, tenant: Tenant
) -> None:
    config = {"url": "http://127.0.0.1:9/hook", "secret": "s3cret"}
    account = client.post("/api/v1/channels", json={"channel": "webhook", "config": config})
    url = f"/api/v1/channels/{account.json()['data']['id']}"

    moved = client.put(url, json={"config": {"url": "https://evil.test/"}})
    assert "secret" in _error(moved, 400, "SECRETS_REQUIRED")["message"]
    assert client.get(url).json()["data"]["settings"]["url"] == "http://127.0.0.1:9/hook"
    # Other settings change freely; the endpoint moves with its secrets re-entered.
    assert client.put(url, json={"config": {"rate_per_s": 5}}).status_code == 200
    again = client.put(url, json={"config": {"url": "https://new.test/", "secret": "n3w"}})
    assert again.status_code == 200, again.text
    assert again.json()["data"]["settings"]["url"] == "https://new.test/"
