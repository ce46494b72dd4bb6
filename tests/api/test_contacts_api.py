"""``/api/v1/contacts``: contacts in the 004 style, their consent, and what campaigns target."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.runtime import Runtime
from tests.api.conftest import Tenant, make_tenant


def _error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    assert body["error"]["message"]


def _new_list(client: TestClient, name: str = "newsletter") -> int:
    response = client.post("/api/v1/lists", json={"name": name})
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


def _add(client: TestClient, **contact: Any) -> dict[str, Any]:
    response = client.post("/api/v1/contacts", json=contact)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def test_create_get_update_delete(client: TestClient, tenant: Tenant) -> None:
    list_id = _new_list(client)
    created = _add(
        client,
        listId=list_id,
        email="  Maria@Example.COM ",
        phone="+55 (11) 9999-0000",
        name="Maria",
        fields={"city": "Recife", "age": 31},
        tags=["vip", "br"],
    )
    assert created["email"] == "maria@example.com" and created["phone"] == "+551199990000"
    assert created["listId"] == list_id and created["subscribed"] is True
    assert created["tags"] == ["vip", "br"] and created["fields"] == {"city": "Recife", "age": 31}

    url = f"/api/v1/contacts/{created['id']}"
    assert client.get(url).json()["data"] == created
    changed = client.put(url, json={"fields": {"age": None, "plan": "pro"}, "tags": ["br"]})
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert data["fields"] == {"city": "Recife", "plan": "pro"}  # merged; null removed a key
    assert data["tags"] == ["br"] and data["name"] == "Maria"

    assert client.delete(url).json()["data"]["message"] == "Contact deleted successfully"
    _error(client.get(url), 404, "CONTACT_NOT_FOUND")


def test_bad_contacts_are_refused_with_a_code(client: TestClient, tenant: Tenant) -> None:
    list_id = _new_list(client)
    _add(client, listId=list_id, email="ana@example.com")
    _error(client.post("/api/v1/contacts", json={"name": "nobody"}), 400, "INVALID_CONTACT")
    _error(client.post("/api/v1/contacts", json={"email": "not-an-email"}), 400, "INVALID_ADDRESS")
    _error(client.post("/api/v1/contacts", json={"phone": "call me"}), 400, "INVALID_ADDRESS")
    _error(
        client.post("/api/v1/contacts", json={"listId": list_id, "email": "ANA@example.com"}),
        409,
        "CONTACT_EXISTS",
    )
    _error(
        client.post("/api/v1/contacts", json={"listId": 987654, "email": "x@example.com"}),
        404,
        "LIST_NOT_FOUND",
    )
    _error(
        client.post("/api/v1/contacts", json={"email": "x@example.com", "fields": {"k" * 101: 1}}),
        400,
        "INVALID_CONTACT",
    )
    _error(
        client.post("/api/v1/contacts", json={"email": "x@example.com", "x": 1}),
        422,
        "VALIDATION_FAILED",
    )
    total = client.get("/api/v1/contacts", params={"listId": list_id}).json()["data"]
    assert total["pagination"]["total"] == 1  # nothing of the refused calls was stored


def test_list_filters_and_search_by_condition(client: TestClient, tenant: Tenant) -> None:
    list_id = _new_list(client)
    for i in range(12):
        _add(
            client,
            listId=list_id,
            email=f"p{i}@example.com",
            name=f"Person {i}",
            tags=["even"] if i % 2 == 0 else [],
        )

    page = client.get("/api/v1/contacts", params={"listId": list_id, "limit": 5, "page": 3}).json()
    assert page["data"]["pagination"] == {"page": 3, "limit": 5, "total": 12, "pages": 3}
    assert [c["email"] for c in page["data"]["contacts"]] == ["p10@example.com", "p11@example.com"]
    everyone = client.get("/api/v1/contacts", params={"limit": 100}).json()["data"]
    assert everyone["pagination"]["total"] == 30 + 12  # the tenant's demo contacts too
    found = client.get("/api/v1/contacts", params={"search": "person 1"}).json()["data"]
    assert {c["name"] for c in found["contacts"]} == {"Person 1", "Person 10", "Person 11"}

    condition = {
        "relation": "and",
        "items": [
            {"field_name": "tag", "op": "==", "value": "even"},
            {"field_name": "Email", "op": ">=", "value": "p6"},
        ],
    }
    hits = client.post("/api/v1/contacts/search", json={"condition": condition, "listId": list_id})
    assert hits.status_code == 200, hits.text
    assert [c["name"] for c in hits.json()["data"]["contacts"]] == ["Person 6", "Person 8"]

    too_many = {"relation": "and", "items": [condition["items"][0]] * 11}
    _error(
        client.post("/api/v1/contacts/search", json={"condition": too_many}),
        400,
        "INVALID_CONDITION",
    )
    unknown_op = {"relation": "and", "items": [{"field_name": "Name", "op": "~", "value": "x"}]}
    _error(
        client.post("/api/v1/contacts/search", json={"condition": unknown_op}),
        400,
        "INVALID_CONDITION",
    )


def test_unsubscribed_contacts_leave_every_audience(client: TestClient, tenant: Tenant) -> None:
    list_id = _new_list(client)
    people = [_add(client, listId=list_id, email=f"u{i}@example.com") for i in range(3)]
    campaign = client.post(
        "/api/v1/campaigns",
        json={"name": "Newsletter", "channel": "log", "targetAudience": {"lists": [list_id]}},
    ).json()["data"]["id"]

    def total_count() -> int:
        data = client.get(f"/api/v1/campaigns/{campaign}").json()["data"]
        return int(data["targetAudience"]["totalCount"])

    assert total_count() == 3
    url = f"/api/v1/contacts/{people[0]['id']}/unsubscribe"
    first = client.post(url).json()["data"]
    assert first["subscribed"] is False and first["unsubscribedAt"]
    assert client.post(url).json()["data"]["unsubscribedAt"] == first["unsubscribedAt"]
    assert total_count() == 2
    unsubscribed = client.get("/api/v1/contacts", params={"status": "unsubscribed"}).json()
    assert [c["id"] for c in unsubscribed["data"]["contacts"]] == [people[0]["id"]]

    back = client.post(f"/api/v1/contacts/{people[0]['id']}/resubscribe").json()["data"]
    assert back["subscribed"] is True and back["unsubscribedAt"] is None
    assert total_count() == 3


def test_target_audience_is_validated_and_reported(client: TestClient, tenant: Tenant) -> None:
    _error(
        client.post("/api/v1/campaigns", json={"name": "x", "targetAudience": {"lists": ["a"]}}),
        400,
        "INVALID_AUDIENCE",
    )
    created = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Ghost segment",
            "channel": "log",
            "targetAudience": {"segments": ["seg_nope"], "totalCount": 8500},
            "touchpoints": [{"name": "hi", "message": "Hi"}],
        },
    ).json()["data"]
    shown = client.get(f"/api/v1/campaigns/{created['id']}").json()["data"]
    assert shown["targetAudience"] == {"segments": ["seg_nope"], "totalCount": 0}
    touchpoint = shown["touchpoints"][0]["id"]
    report = client.post("/api/v1/touchpoints/validate", json={"touchpoint_id": touchpoint}).json()[
        "data"
    ]
    assert report["valid"] is False
    assert "SEGMENT_NOT_FOUND" in [e["code"] for e in report["errors"]]
    _error(client.post(f"/api/v1/campaigns/{created['id']}/execute"), 400, "SEGMENT_NOT_FOUND")


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_organizations_contacts_are_not_found(
    client: TestClient, tenant: Tenant, rt: Runtime, method: str
) -> None:
    mine = _add(client, email="mine@example.com")
    other = make_tenant(client, rt, "globex", contacts=0)
    kwargs: dict[str, Any] = {"json": {"name": "x"}} if method == "put" else {}
    response = client.request(
        method.upper(), f"/api/v1/contacts/{mine['id']}", headers=other.headers(), **kwargs
    )
    _error(response, 404, "CONTACT_NOT_FOUND")


def test_contacts_need_a_token(client: TestClient) -> None:
    _error(client.get("/api/v1/contacts"), 401, "UNAUTHORIZED")
    _error(client.post("/api/v1/contacts", json={"email": "a@example.com"}), 401, "UNAUTHORIZED")


def test_a_phone_only_contact_is_unique_in_its_list(client: TestClient, tenant: Tenant) -> None:
    list_id = _new_list(client)
    first = _add(client, listId=list_id, phone="+1 (555) 010-0000")
    assert first["phone"] == "+15550100000"
    _error(
        client.post("/api/v1/contacts", json={"listId": list_id, "phone": "+15550100000"}),
        409,
        "CONTACT_EXISTS",
    )
    other = _new_list(client, "other")
    assert _add(client, listId=other, phone="+15550100000")["listId"] == other
    # Changing its own phone's formatting is no clash with itself.
    changed = client.put(f"/api/v1/contacts/{first['id']}", json={"phone": "+1 555 010 0000"})
    assert changed.status_code == 200, changed.text
