"""The Python SDK (engine.client) against a real uvicorn server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from engine.client import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    Client,
    ConflictError,
    NotFoundError,
    ServerError,
    ValidationError,
)
from engine.config import Settings
from engine.db import session_scope
from engine.runtime import Runtime
from engine.services.auth import Principal, issue_tokens
from engine.testing import wait_for
from workers.embedded import EmbeddedStack

if TYPE_CHECKING:
    from tests.api.live import LiveTenant

# Imported by pytest (not by this module) so that its asserts are rewritten too.
pytest_plugins = ["tests.api.live"]

CAMPAIGN_FIELDS = {"_id", "name", "status", "channel_type", "created_at", "updated_at"}
TOUCHPOINT_FIELDS = {"_id", "name", "type", "campaign_id", "created_at", "message", "delay"}


def _campaign(client: Client, name: str = "Summer Sale", touchpoints: int = 1) -> str:
    campaign_id = str(client.campaign.create({"name": name, "channel_type": "log"})["_id"])
    for i in range(touchpoints):
        client.campaign.create_touchpoint(
            {
                "name": f"step {i + 1}",
                "type": "message",
                "campaign_id": campaign_id,
                "message": {"text": "Hi {{ name }} " + f"({i + 1})"},
            }
        )
    return campaign_id


def test_the_documented_snippets_run_unchanged(
    sdk: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    client = sdk
    campaign_id = client.campaign.create({"name": "The SDK reference", "channel_type": "log"})[
        "_id"
    ]

    # list / list
    campaigns = client.campaign.list()["data"]
    for c in campaigns:
        print(c["_id"], c["name"], c["status"])

    # get / get
    campaign = client.campaign.get(campaign_id)
    print(campaign["_id"], campaign["name"], campaign["status"])

    # createTouchpoint / create_touchpoint
    touchpoint = client.campaign.create_touchpoint(
        {
            "name": "Welcome Message",
            "type": "message",
            "campaign_id": campaign_id,
            "message": {"text": "Hi! Welcome to our service."},
        }
    )
    touchpoint_id = touchpoint["_id"]

    # updateTouchpoint / update_touchpoint
    updated = client.campaign.update_touchpoint(
        touchpoint_id,
        {
            "name": "Updated Welcome Message",
            "message": {"text": "Hi! Great to have you here."},
        },
    )

    # getTouchpoint / get_touchpoint
    touchpoint = client.campaign.get_touchpoint(touchpoint_id)
    print(touchpoint["_id"], touchpoint["name"])

    # validateTouchpoint / validate_touchpoint
    result = client.campaign.validate_touchpoint(
        {
            "touchpoint_id": touchpoint_id,
        }
    )
    if not result["valid"]:
        print("Validation errors:", result["errors"])

    # deleteTouchpoint / delete_touchpoint
    client.campaign.delete_touchpoint(touchpoint_id)

    # delete / delete
    client.campaign.delete(campaign_id)

    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        f"{campaign_id} The SDK reference draft",
        f"{campaign_id} The SDK reference draft",
        f"{touchpoint_id} Updated Welcome Message",
    ]
    assert updated["message"] == {"text": "Hi! Great to have you here."}
    assert result == {"valid": True, "errors": []}
    with pytest.raises(NotFoundError):
        client.campaign.get_touchpoint(touchpoint_id)
    with pytest.raises(NotFoundError):
        client.campaign.get(campaign_id)


def test_the_documented_create_snippet_runs_unchanged(
    sdk: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    client = sdk

    # create / create
    campaign = client.campaign.create(
        {
            "name": "Q3 Re-engagement",
            "channel_type": "whatsapp",
        }
    )
    print(campaign["_id"])

    assert capsys.readouterr().out.strip() == campaign["_id"]
    assert client.campaign.get(campaign["_id"])["channel_type"] == "whatsapp"
    # A whatsapp draft is kept; executing it needs the organization's WhatsApp credentials.
    with pytest.raises(ValidationError) as err:
        client.campaign.execute(campaign["_id"])
    assert err.value.code == "MISSING_CREDENTIALS"


def test_records_have_the_documented_names(sdk: Client) -> None:
    campaign_id = _campaign(sdk, touchpoints=2)

    campaign = sdk.campaign.get(campaign_id)
    listed = sdk.campaign.list()["data"]
    touchpoints = sdk.campaign.list_touchpoints(campaign_id)["data"]

    assert set(campaign) >= CAMPAIGN_FIELDS and "id" not in campaign
    assert (campaign["_id"], campaign["channel_type"], campaign["status"]) == (
        campaign_id,
        "log",
        "draft",
    )
    assert campaign["created_at"].endswith("Z") and campaign["updated_at"].endswith("Z")
    assert campaign["target_audience"]["totalCount"] == 30
    assert [tp["name"] for tp in campaign["touchpoints"]] == ["step 1", "step 2"]
    assert [c["_id"] for c in listed] == [campaign_id] and set(listed[0]) >= CAMPAIGN_FIELDS
    assert all(set(tp) >= TOUCHPOINT_FIELDS for tp in touchpoints)
    assert {tp["campaign_id"] for tp in touchpoints} == {campaign_id}
    assert [tp["position"] for tp in touchpoints] == sorted(tp["position"] for tp in touchpoints)
    assert sdk.campaign.get_touchpoint(touchpoints[0]["_id"]) == touchpoints[0]


def test_list_fetches_every_page_or_one(sdk: Client) -> None:
    for i in range(5):
        sdk.campaign.create({"name": f"Campaign {i}", "description": "winter" if i < 2 else ""})

    everything = sdk.campaign.list(limit=2, sort="name")
    page = sdk.campaign.list(page=2, limit=2, sort="name")
    winter = sdk.campaign.list(search="WINTER")

    assert [c["name"] for c in everything["data"]] == [f"Campaign {i}" for i in range(5)]
    assert [c["name"] for c in page["data"]] == ["Campaign 2", "Campaign 3"]
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 5, "pages": 3}
    assert len(winter["data"]) == 2


def test_execute_runs_to_completion_and_progress_is_polled(
    sdk: Client, rt: Runtime, settings: Settings
) -> None:
    campaign_id = _campaign(sdk, touchpoints=2)
    assert sdk.campaign.validate_touchpoint(
        sdk.campaign.list_touchpoints(campaign_id)["data"][0]["_id"]
    ) == {"valid": True, "errors": []}

    started = sdk.campaign.execute(campaign_id, priority="high")
    assert started["status"] == "started" and started["executionId"]
    with EmbeddedStack(rt, threads=2):
        progress = wait_for(
            lambda: (p := sdk.campaign.progress(campaign_id))["status"] == "completed" and p,
            timeout=120,
        )

    counts = progress["progress"]
    assert (counts["percentage"], counts["failed"]) == (100.0, 0)
    assert counts["processed"] == counts["total"] == counts["successful"] == 60
    assert progress["errors"] == []
    assert sdk.campaign.get(campaign_id)["status"] == "completed"
    stats = sdk.campaign.statistics(campaign_id, period="24h", metrics=["overview"])
    assert list(stats) == ["overview"] and stats["overview"]["messagesSent"] == 60
    sent = Path(settings.log_channel_path).read_text().splitlines()
    texts = sorted(json.loads(line)["message"]["text"] for line in sent)
    assert len(texts) == 60 and texts[:2] == ["Hi User 0 (1)", "Hi User 0 (2)"]


def test_update_clone_pause_resume(sdk: Client) -> None:
    campaign_id = _campaign(sdk)
    updated = sdk.campaign.update(campaign_id, {"name": "Renamed", "goals": {"revenue": 1}})
    clone = sdk.campaign.clone(campaign_id)
    named = sdk.campaign.clone(campaign_id, "Second copy", reset_statistics=True)

    assert (updated["name"], updated["goals"], updated["_id"]) == (
        "Renamed",
        {"revenue": 1},
        campaign_id,
    )
    assert (clone["name"], clone["status"]) == ("Renamed (Copy)", "draft")
    assert named["name"] == "Second copy"
    assert len(sdk.campaign.list_touchpoints(clone["_id"])["data"]) == 1

    later = datetime(2999, 1, 1, tzinfo=UTC)
    assert sdk.campaign.execute(campaign_id, {"scheduled_at": later})["status"] == "scheduled"
    paused = sdk.campaign.pause(campaign_id)
    assert paused["status"] == "paused" and paused["pausedAt"]
    assert sdk.campaign.resume(campaign_id)["status"] == "active"
    assert sdk.campaign.progress(campaign_id)["status"] == "scheduled"
    with pytest.raises(ConflictError) as refused:
        sdk.campaign.delete(campaign_id)
    assert refused.value.code == "CANNOT_DELETE"


def _raises(error: type[ApiError], status: int | None, code: str, call: Any) -> ApiError:
    with pytest.raises(error) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (status, code), caught.value
    assert caught.value.message and isinstance(caught.value, ApiError)
    return caught.value


def test_typed_errors(sdk: Client, live: LiveTenant) -> None:
    campaign_id = _campaign(sdk)
    c = sdk.campaign

    _raises(NotFoundError, 404, "CAMPAIGN_NOT_FOUND", lambda: c.get("nope"))
    # An id is one path segment: it cannot reach another route (no route has it: NOT_FOUND).
    _raises(NotFoundError, 404, "NOT_FOUND", lambda: c.progress(f"{campaign_id}/../x?y=1"))
    _raises(ConflictError, 409, "CANNOT_PAUSE", lambda: c.pause(campaign_id))
    _raises(ConflictError, 409, "CANNOT_RESUME", lambda: c.resume(campaign_id))
    invalid = _raises(ValidationError, 422, "VALIDATION_FAILED", lambda: c.list(limit=0))
    assert invalid.details and invalid.details[0]["field"] == "query.limit"
    _raises(ValidationError, 422, "VALIDATION_FAILED", lambda: c.create({"name": 5}))
    _raises(ValidationError, 422, "VALIDATION_FAILED", lambda: c.execute(campaign_id, bogus=1))
    _raises(
        ValidationError,
        400,
        "UNKNOWN_CHANNEL",
        lambda: c.create({"name": "x", "channel_type": "fax"}),
    )
    _raises(
        ValidationError,
        400,
        "MISSING_CAMPAIGN_ID",
        lambda: c.create_touchpoint({"name": "orphan", "message": "hi"}),
    )
    with Client(live.base_url, api_key=live.api_key + "x") as bad:
        _raises(AuthenticationError, 401, "INVALID_API_KEY", bad.campaign.list)
    with Client(live.base_url) as anonymous:
        _raises(AuthenticationError, 401, "UNAUTHORIZED", anonymous.campaign.list)


def test_invalid_touchpoint_reports_its_errors(sdk: Client) -> None:
    campaign_id = sdk.campaign.create({"name": "No channel"})["_id"]
    touchpoint = sdk.campaign.create_touchpoint(
        {"name": "hi", "type": "message", "campaign_id": campaign_id, "message": "Hi"}
    )

    result = sdk.campaign.validate_touchpoint({"touchpoint_id": touchpoint["_id"]})

    assert result["valid"] is False
    assert [e["code"] for e in result["errors"]] == ["NO_CHANNEL"]


def test_another_organizations_campaign_is_not_found(
    sdk: Client, new_tenant: Callable[[str], LiveTenant]
) -> None:
    campaign_id = _campaign(sdk)
    other = new_tenant("globex")

    with Client(other.base_url, api_key=other.api_key) as globex:
        _raises(NotFoundError, 404, "CAMPAIGN_NOT_FOUND", lambda: globex.campaign.get(campaign_id))
        assert globex.campaign.list() == {"data": []}


def _recording(base_url: str) -> tuple[httpx.Client, list[str]]:
    """An httpx client for the SDK that records the path of every request it sends."""
    paths: list[str] = []

    def record(request: httpx.Request) -> None:
        paths.append(request.url.path)

    return httpx.Client(base_url=base_url, event_hooks={"request": [record]}), paths


def test_login_then_refresh_on_demand(live: LiveTenant) -> None:
    with Client.login(live.base_url, live.username, live.password) as client:
        assert client.token and client.token != live.api_key
        assert client.campaign.list() == {"data": []}
        tokens = client.refresh()
        assert client.token == tokens["token"] and tokens["refresh_token"]
        assert client.campaign.list() == {"data": []}

    _raises(
        AuthenticationError,
        401,
        "INVALID_CREDENTIALS",
        lambda: Client.login(live.base_url, live.username, "wrong password"),
    )


def test_a_token_about_to_expire_is_renewed_first(
    live: LiveTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engine.client.http.REFRESH_MARGIN_S", 10_000.0)  # "expires in 900 s"
    http, paths = _recording(live.base_url)

    with Client.login(live.base_url, live.username, live.password, http=http) as client:
        assert client.campaign.list() == {"data": []}

    assert paths == ["/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/campaigns"]


def test_the_sdk_keeps_each_rotated_refresh_token(
    live: LiveTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refresh before every call: each refresh token is used once, so every renewal must send
    # the one the previous renewal answered (a reused one would end the login: TOKEN_REUSED).
    monkeypatch.setattr("engine.client.http.REFRESH_MARGIN_S", 10_000.0)
    http, paths = _recording(live.base_url)

    with Client.login(live.base_url, live.username, live.password, http=http) as client:
        for _ in range(3):
            assert client.campaign.list() == {"data": []}
        assert client.refresh()["refresh_token"]

    assert paths.count("/api/v1/auth/refresh") == 4


def test_an_expired_token_is_renewed_and_the_call_repeated(
    live: LiveTenant, settings: Settings, rt: Runtime
) -> None:
    principal = Principal(live.organization_id, live.user_id)
    with session_scope(rt.engine) as session:
        stale_settings = settings.model_copy(update={"access_token_ttl_s": -60})
        expired = issue_tokens(session, stale_settings, principal)
        valid = issue_tokens(session, settings, principal)
    http, paths = _recording(live.base_url)

    with Client(
        live.base_url, token=expired.token, refresh_token=valid.refresh_token, http=http
    ) as renewing:
        assert renewing.campaign.list() == {"data": []}
        assert renewing.token not in (None, expired.token)
    assert paths == ["/api/v1/campaigns", "/api/v1/auth/refresh", "/api/v1/campaigns"]
    with Client(live.base_url, token=expired.token) as stale:
        _raises(AuthenticationError, 401, "TOKEN_EXPIRED", stale.campaign.list)
    with Client(live.base_url, token=expired.token, refresh_token="garbage") as refused:
        _raises(AuthenticationError, 401, "INVALID_TOKEN", refused.campaign.list)


def test_unreachable_server_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but never listening: connections are refused

        with Client(f"http://127.0.0.1:{port}", api_key="ce_x_y", timeout=5) as client:
            error = _raises(ApiConnectionError, None, "CONNECTION_FAILED", client.campaign.list)

    assert isinstance(error, ConnectionError)


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (500, {"success": False, "error": {"code": "INTERNAL_ERROR", "message": "m"}}, None),
        (502, "<html>Bad Gateway</html>", "HTTP_502"),
    ],
)
def test_server_errors_without_a_server(status: int, body: Any, code: str | None) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    http = httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(answer))
    with Client("http://api.test", api_key="k", http=http) as client:
        _raises(ServerError, status, code or "INTERNAL_ERROR", client.campaign.list)
