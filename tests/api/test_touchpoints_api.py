"""Touchpoints as a sub-resource (SDK reference over HTTP): CRUD, ordering, validation, editing
rules."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Tenant


def _campaign(client: TestClient, **fields: object) -> str:
    body = {"name": "tp test", "channel": "log", **fields}
    return str(client.post("/api/v1/campaigns", json=body).json()["data"]["id"])


def test_touchpoints_are_created_in_order_changed_and_removed(
    client: TestClient, tenant: Tenant
) -> None:
    campaign_id = _campaign(client)
    first = client.post(
        f"/api/v1/campaigns/{campaign_id}/touchpoints",
        json={
            "name": "Welcome Message",
            "type": "message",
            "message": {"text": "Hi! Welcome to our service."},
        },
    ).json()["data"]
    second = client.post(
        "/api/v1/touchpoints",
        json={"name": "Nudge", "campaign_id": campaign_id, "message": "Hey", "delay": 3600},
    ).json()["data"]
    assert (first["position"], second["position"], second["delay"]) == (0, 1, 3600)

    updated = client.put(
        f"/api/v1/touchpoints/{first['id']}",
        json={
            "name": "Updated Welcome Message",
            "message": {"text": "Hi! Great to have you here."},
        },
    ).json()["data"]
    assert updated["name"] == "Updated Welcome Message"
    assert updated["message"] == {"text": "Hi! Great to have you here."}
    listed = client.get(f"/api/v1/campaigns/{campaign_id}/touchpoints").json()["data"]
    assert [t["name"] for t in listed] == ["Updated Welcome Message", "Nudge"]

    assert client.delete(f"/api/v1/touchpoints/{second['id']}").json()["success"] is True
    missing = client.get(f"/api/v1/touchpoints/{second['id']}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "TOUCHPOINT_NOT_FOUND"


def test_validate_reports_every_problem(client: TestClient, tenant: Tenant) -> None:
    good = _campaign(client)
    ok_tp = client.post(
        f"/api/v1/campaigns/{good}/touchpoints", json={"message": "Hi {{ name }}"}
    ).json()["data"]
    assert client.post("/api/v1/touchpoints/validate", json={"touchpoint_id": ok_tp["id"]}).json()[
        "data"
    ] == {
        "valid": True,
        "errors": [],
    }

    # Compiles, but fails on a real contact: caught here, not at send time.
    broken = client.post(
        f"/api/v1/campaigns/{good}/touchpoints", json={"message": "{{ plan.tier.name }}"}
    ).json()["data"]
    result = client.post(f"/api/v1/touchpoints/{broken['id']}/validate").json()["data"]
    assert result["valid"] is False and [e["code"] for e in result["errors"]] == ["TEMPLATE_ERROR"]

    weights = {
        "text": "A",
        "variations": [{"content": "B", "weight": 0}, {"content": "C", "weight": 0}],
    }
    # Weights that cannot split an audience are refused when stored, before anything is sent.
    ab = client.post(f"/api/v1/campaigns/{good}/touchpoints", json={"message": weights})
    assert ab.status_code == 400 and ab.json()["error"]["code"] == "INVALID_VARIATIONS"

    no_channel = _campaign(client, channel=None)
    tp = client.post(
        f"/api/v1/campaigns/{no_channel}/touchpoints", json={"type": "wait", "delay": 5}
    ).json()["data"]
    result = client.post(f"/api/v1/touchpoints/{tp['id']}/validate").json()["data"]
    assert [e["code"] for e in result["errors"]] == ["NO_CHANNEL"]


def test_bad_touchpoints_are_refused(client: TestClient, tenant: Tenant) -> None:
    campaign_id = _campaign(client)
    for body, status, code in [
        ({"message": "Hi {{ name "}, 400, "TEMPLATE_ERROR"),
        ({"type": "message"}, 400, "MISSING_MESSAGE"),
        ({"type": "sms", "message": "x"}, 422, "VALIDATION_FAILED"),
        ({"message": "x", "delay": -1}, 422, "VALIDATION_FAILED"),
    ]:
        response = client.post(f"/api/v1/campaigns/{campaign_id}/touchpoints", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    assert client.get(f"/api/v1/campaigns/{campaign_id}/touchpoints").json()["data"] == []
    missing = client.post("/api/v1/touchpoints", json={"message": "x"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "MISSING_CAMPAIGN_ID"


def test_touchpoints_of_a_running_campaign_cannot_change(
    client: TestClient, tenant: Tenant
) -> None:
    campaign_id = _campaign(client)
    tp = client.post(f"/api/v1/campaigns/{campaign_id}/touchpoints", json={"message": "x"}).json()[
        "data"
    ]
    client.post(
        f"/api/v1/campaigns/{campaign_id}/execute", json={"scheduledAt": "2999-01-01T00:00:00Z"}
    )
    for response in (
        client.put(f"/api/v1/touchpoints/{tp['id']}", json={"name": "new"}),
        client.delete(f"/api/v1/touchpoints/{tp['id']}"),
        client.post(f"/api/v1/campaigns/{campaign_id}/touchpoints", json={"message": "y"}),
    ):
        assert (
            response.status_code == 409 and response.json()["error"]["code"] == "CAMPAIGN_RUNNING"
        )
