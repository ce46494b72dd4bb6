"""Configuring an internal target through the API: 400 ``OUTBOUND_TARGET_REFUSED`` by default.

The API here runs on the default outbound policy (``OUTBOUND_ALLOWED_NETWORKS`` empty), unlike
the other API tests, which allow loopback for their sinks. The checks read no stored data of
their own, so SQLite is store enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.runtime import Runtime
from tests.api.conftest import make_tenant
from tests.conftest import make_settings

REFUSED = "OUTBOUND_TARGET_REFUSED"
METADATA = "http://169.254.169.254/latest/meta-data/iam"

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def guarded(db_url: str, tmp_path: Path, rt: Runtime) -> Iterator[TestClient]:
    """A tenant's client of an API on the default outbound policy."""
    settings = make_settings(db_url, tmp_path, outbound_allowed_networks=[])
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers.update(make_tenant(client, rt, "acme").headers())
        yield client


def _refused(response: Any) -> bool:
    return bool(response.status_code == 400 and response.json()["error"]["code"] == REFUSED)


INTERNAL_ACCOUNTS: list[tuple[str, dict[str, Any]]] = [
    ("webhook", {"url": METADATA}),
    ("webhook", {"url": "http://127.0.0.1:6379/"}),
    ("telegram", {"bot_token": "123:abc", "base_url": "http://localhost:5432"}),
    ("whatsapp", {"access_token": "t", "phone_number_id": "1", "base_url": "http://[::1]/"}),
    ("email", {"host": "10.0.0.5", "from_email": "news@example.com"}),
    ("email", {"host": "localhost", "security": "none", "from_email": "news@example.com"}),
]


def test_a_channel_account_on_an_internal_address_is_refused(guarded: TestClient) -> None:
    for channel, config in INTERNAL_ACCOUNTS:
        response = guarded.post("/api/v1/channels", json={"channel": channel, "config": config})
        assert _refused(response), (channel, config, response.text)
    assert guarded.get("/api/v1/channels").json()["data"]["channels"] == []


def test_an_account_cannot_be_moved_to_an_internal_address(guarded: TestClient) -> None:
    created = guarded.post(
        "/api/v1/channels",
        json={"channel": "webhook", "config": {"url": "https://hooks.example.com/in"}},
    )
    assert created.status_code == 201, created.text
    account_id = created.json()["data"]["id"]
    moved = guarded.put(f"/api/v1/channels/{account_id}", json={"config": {"url": METADATA}})
    assert _refused(moved), moved.text


def test_a_campaign_channel_config_on_an_internal_address_is_refused(guarded: TestClient) -> None:
    body = {"name": "c", "channel": "webhook", "touchpoints": [{"message": "hi"}]}
    refused = guarded.post("/api/v1/campaigns", json={**body, "channel_config": {"url": METADATA}})
    assert _refused(refused), refused.text
    created = guarded.post(
        "/api/v1/campaigns", json={**body, "channel_config": {"url": "https://example.com/h"}}
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["data"]["id"]
    moved = guarded.put(
        f"/api/v1/campaigns/{campaign_id}",
        json={"channel_config": {"url": "http://[::ffff:127.0.0.1]:8000/"}},
    )
    assert _refused(moved), moved.text


def test_a_lifecycle_webhook_on_an_internal_address_is_refused(guarded: TestClient) -> None:
    for url in (METADATA, "http://127.1:6379/", "http://db.localhost/"):
        response = guarded.post(
            "/api/v1/webhooks", json={"url": url, "events": ["campaign.created"]}
        )
        assert _refused(response), (url, response.text)
    assert guarded.get("/api/v1/webhooks").json()["data"] == []
