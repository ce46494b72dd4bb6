"""Lists, segments and the suppression list over HTTP: what a user sees, on both stores."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import col

from engine.audience.contacts import create_contact
from engine.audience.subscriptions import unsubscribe
from engine.db import session_scope
from engine.models import Contact
from engine.runtime import Runtime
from tests.api.conftest import Tenant, make_tenant

#: The tenant's demo contacts are user0@example.com … user29@example.com, phones +15550000000 ….
#: "user1" is in the emails of user1 and user10 … user19: eleven people.
USER1_CONDITION = {
    "relation": "and",
    "items": [{"field_name": "Email", "op": "contain", "value": "user1"}],
}


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is True, body
    return body["data"]


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    assert body["error"]["message"]
    return dict(body["error"])


def _add_members(rt: Runtime, organization_id: str, list_id: int, emails: list[str]) -> None:
    with session_scope(rt.engine) as session:
        for email in emails:
            create_contact(session, organization_id, {"list_id": list_id, "email": email})


def _contact_id(rt: Runtime, organization_id: str, email: str) -> int:
    with session_scope(rt.engine) as session:
        found = session.scalar(
            sa.select(col(Contact.id)).where(
                col(Contact.organization_id) == organization_id, col(Contact.email) == email
            )
        )
    assert found is not None
    return int(found)


def _segment(client: TestClient, name: str = "user1s", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "condition": USER1_CONDITION, **fields}
    return dict(_ok(client.post("/api/v1/segments", json=body), 201))


def _size(client: TestClient, segment_id: str) -> int:
    return int(_ok(client.get(f"/api/v1/segments/{segment_id}"))["size"])


# --- lists -----------------------------------------------------------------------------------


def test_create_list_get_and_list_all_with_member_counts(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    created = _ok(client.post("/api/v1/lists", json={"name": "  Newsletter "}), 201)
    assert created["name"] == "Newsletter" and created["memberCount"] == 0
    assert isinstance(created["id"], int) and created["createdAt"].endswith("Z")
    other = _ok(client.post("/api/v1/lists", json={"name": "Customers"}), 201)
    _add_members(rt, tenant.organization_id, created["id"], ["a@example.com", "b@example.com"])
    _add_members(rt, tenant.organization_id, other["id"], ["a@example.com"])

    listed = _ok(client.get("/api/v1/lists"))
    assert [(x["name"], x["memberCount"]) for x in listed] == [("Customers", 1), ("Newsletter", 2)]
    one = _ok(client.get(f"/api/v1/lists/{created['id']}"))
    assert one == {**created, "memberCount": 2}


def test_duplicate_list_name_is_a_conflict(client: TestClient, tenant: Tenant) -> None:
    _ok(client.post("/api/v1/lists", json={"name": "VIP"}), 201)

    _error(client.post("/api/v1/lists", json={"name": "VIP"}), 409, "LIST_EXISTS")
    _error(client.post("/api/v1/lists", json={"name": "   "}), 400, "INVALID_NAME")
    _error(
        client.post("/api/v1/lists", json={"name": "x", "color": "red"}), 422, "VALIDATION_FAILED"
    )
    assert [x["name"] for x in _ok(client.get("/api/v1/lists"))] == ["VIP"]


def test_delete_list_removes_its_contacts(client: TestClient, tenant: Tenant, rt: Runtime) -> None:
    created = _ok(client.post("/api/v1/lists", json={"name": "Old"}), 201)
    emails = ["x@example.com", "y@example.com", "z@example.com"]
    _add_members(rt, tenant.organization_id, created["id"], emails)

    deleted = _ok(client.delete(f"/api/v1/lists/{created['id']}"))

    assert deleted["deletedContacts"] == 3 and deleted["message"]
    _error(client.get(f"/api/v1/lists/{created['id']}"), 404, "LIST_NOT_FOUND")
    _error(client.delete(f"/api/v1/lists/{created['id']}"), 404, "LIST_NOT_FOUND")
    assert _ok(client.get("/api/v1/lists")) == []
    everyone = {"targetAudience": {"filters": {"email": True}}}
    assert _campaign_total(client, everyone) == 30  # the demo contacts, none of the list's


def test_another_organizations_list_is_not_found(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    globex = make_tenant(client, rt, "globex")
    theirs = _ok(
        client.post("/api/v1/lists", json={"name": "Theirs"}, headers=globex.headers()), 201
    )

    _error(client.get(f"/api/v1/lists/{theirs['id']}"), 404, "LIST_NOT_FOUND")
    _error(client.delete(f"/api/v1/lists/{theirs['id']}"), 404, "LIST_NOT_FOUND")
    assert _ok(client.get("/api/v1/lists")) == []
    # The same name is free in another organization.
    _ok(client.post("/api/v1/lists", json={"name": "Theirs"}), 201)
    _ok(client.get(f"/api/v1/lists/{theirs['id']}", headers=globex.headers()))


def test_list_ids_outside_the_integer_range_are_refused(client: TestClient, tenant: Tenant) -> None:
    _error(client.get("/api/v1/lists/abc"), 422, "VALIDATION_FAILED")
    _error(client.get(f"/api/v1/lists/{2**64}"), 422, "VALIDATION_FAILED")
    _error(client.get("/api/v1/lists/0"), 422, "VALIDATION_FAILED")


# --- segments --------------------------------------------------------------------------------


def test_segment_size_counts_subscribed_unsuppressed_matching_people(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    created = _segment(client, description="emails with user1")
    assert created["name"] == "user1s" and created["description"] == "emails with user1"
    assert created["condition"] == USER1_CONDITION and created["size"] == 11
    assert created["id"] and created["createdAt"].endswith("Z") and created["updatedAt"]
    assert _ok(client.get(f"/api/v1/segments/{created['id']}")) == created

    with session_scope(rt.engine) as session:
        unsubscribe(
            session,
            tenant.organization_id,
            _contact_id(rt, tenant.organization_id, "user1@example.com"),
        )
    assert _size(client, created["id"]) == 10

    _ok(client.post("/api/v1/suppressions", json={"addresses": ["User12@Example.com"]}), 201)
    assert _size(client, created["id"]) == 9
    _ok(client.post("/api/v1/suppressions", json={"addresses": ["+15550000013"]}), 201)
    assert _size(client, created["id"]) == 8

    _ok(client.delete("/api/v1/suppressions/user12%40example.com"))
    assert _size(client, created["id"]) == 9


@pytest.mark.parametrize(
    "condition",
    [
        {"relation": "and", "items": [{"field_name": "Email", "op": "like", "value": "x"}]},
        {
            "relation": "or",
            "items": [{"field_name": "Email", "op": "==", "value": f"u{i}"} for i in range(11)],
        },
        {"relation": "and", "items": [{"field_name": "shoeSize", "op": "==", "value": "42"}]},
        {"relation": "xor", "items": [{"field_name": "Email", "op": "exist"}]},
        {"relation": "and", "items": []},
    ],
    ids=["unknown-op", "eleven-items", "unknown-field", "bad-relation", "no-items"],
)
def test_invalid_condition_is_refused_and_nothing_is_stored(
    client: TestClient, tenant: Tenant, condition: dict[str, Any]
) -> None:
    response = client.post("/api/v1/segments", json={"name": "bad", "condition": condition})

    _error(response, 400, "INVALID_CONDITION")
    listed = _ok(client.get("/api/v1/segments"))
    assert listed["segments"] == [] and listed["pagination"]["total"] == 0


def test_invalid_condition_on_update_keeps_the_segment(client: TestClient, tenant: Tenant) -> None:
    created = _segment(client)
    bad = {"relation": "and", "items": [{"field_name": "Email", "op": "like", "value": "x"}]}

    _error(
        client.put(f"/api/v1/segments/{created['id']}", json={"name": "new", "condition": bad}),
        400,
        "INVALID_CONDITION",
    )
    assert _ok(client.get(f"/api/v1/segments/{created['id']}")) == created


def test_duplicate_segment_name_is_a_conflict(client: TestClient, tenant: Tenant) -> None:
    first = _segment(client, "dup")
    second = _segment(client, "other")

    _error(client.post("/api/v1/segments", json={"name": "dup", "condition": USER1_CONDITION}),
           409, "SEGMENT_EXISTS")  # fmt: skip
    _error(client.put(f"/api/v1/segments/{second['id']}", json={"name": "dup"}),
           409, "SEGMENT_EXISTS")  # fmt: skip
    names = [s["name"] for s in _ok(client.get("/api/v1/segments"))["segments"]]
    assert names == ["dup", "other"] and first["id"] != second["id"]


def test_update_segment_is_partial(client: TestClient, tenant: Tenant) -> None:
    created = _segment(client, description="before")
    user2 = {
        "relation": "or",
        "items": [{"field_name": "Email", "op": "contain", "value": "user2"}],
    }

    renamed = _ok(client.put(f"/api/v1/segments/{created['id']}", json={"name": "renamed"}))
    assert renamed["name"] == "renamed" and renamed["description"] == "before"
    assert renamed["condition"] == USER1_CONDITION and renamed["size"] == 11
    assert renamed["createdAt"] == created["createdAt"]

    changed = _ok(client.put(f"/api/v1/segments/{created['id']}", json={"condition": user2}))
    # user2, user20 … user29
    assert changed["name"] == "renamed" and changed["condition"] == user2 and changed["size"] == 11
    described = _ok(client.put(f"/api/v1/segments/{created['id']}", json={"description": ""}))
    assert described["description"] == "" and described["condition"] == user2
    assert _ok(client.get(f"/api/v1/segments/{created['id']}")) == described


def test_delete_segment_then_it_is_not_found(client: TestClient, tenant: Tenant) -> None:
    created = _segment(client)

    assert _ok(client.delete(f"/api/v1/segments/{created['id']}"))["message"]

    _error(client.get(f"/api/v1/segments/{created['id']}"), 404, "SEGMENT_NOT_FOUND")
    _error(client.delete(f"/api/v1/segments/{created['id']}"), 404, "SEGMENT_NOT_FOUND")
    _error(client.put(f"/api/v1/segments/{created['id']}", json={"name": "x"}),
           404, "SEGMENT_NOT_FOUND")  # fmt: skip
    assert _ok(client.get("/api/v1/segments"))["pagination"]["total"] == 0


def test_segments_are_paginated_by_name_and_private(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    for i in range(5):
        _segment(client, f"s{i}")
    globex = make_tenant(client, rt, "globex")

    page = _ok(client.get("/api/v1/segments", params={"page": 2, "limit": 2}))

    assert [s["name"] for s in page["segments"]] == ["s2", "s3"]
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 5, "pages": 3}
    theirs = _ok(client.get("/api/v1/segments", headers=globex.headers()))
    assert theirs["segments"] == [] and theirs["pagination"]["pages"] == 0
    one = page["segments"][0]["id"]
    _error(
        client.get(f"/api/v1/segments/{one}", headers=globex.headers()), 404, "SEGMENT_NOT_FOUND"
    )


# --- suppressions ----------------------------------------------------------------------------


def test_suppress_emails_lower_cased_and_phones(client: TestClient, tenant: Tenant) -> None:
    body = {
        "addresses": ["Alice@Example.COM", "+15551234567", "alice@example.com"],
        "reason": "bounce",
    }

    stored = _ok(client.post("/api/v1/suppressions", json=body), 201)

    assert [(s["address"], s["reason"]) for s in stored] == [
        ("alice@example.com", "bounce"),
        ("+15551234567", "bounce"),
    ]
    assert all(s["createdAt"].endswith("Z") for s in stored)
    again = _ok(client.post("/api/v1/suppressions", json={"addresses": ["ALICE@example.com"]}), 201)
    assert [(s["address"], s["reason"]) for s in again] == [("alice@example.com", "bounce")]
    listed = _ok(client.get("/api/v1/suppressions"))
    assert {s["address"] for s in listed["suppressions"]} == {"alice@example.com", "+15551234567"}
    assert listed["pagination"] == {"page": 1, "limit": 20, "total": 2, "pages": 1}


def test_an_invalid_address_refuses_the_whole_call(client: TestClient, tenant: Tenant) -> None:
    body = {"addresses": ["ok@example.com", "not an address"]}

    _error(client.post("/api/v1/suppressions", json=body), 400, "INVALID_ADDRESS")
    _error(
        client.post("/api/v1/suppressions", json={"addresses": ["bob@"]}), 400, "INVALID_ADDRESS"
    )
    _error(client.post("/api/v1/suppressions", json={"addresses": []}), 422, "VALIDATION_FAILED")
    assert _ok(client.get("/api/v1/suppressions"))["pagination"]["total"] == 0


def test_suppressions_are_paginated_newest_first(client: TestClient, tenant: Tenant) -> None:
    for i in range(25):
        _ok(client.post("/api/v1/suppressions", json={"addresses": [f"p{i}@example.com"]}), 201)

    page = _ok(client.get("/api/v1/suppressions", params={"page": 3, "limit": 10}))

    assert [s["address"] for s in page["suppressions"]] == [
        f"p{i}@example.com" for i in (4, 3, 2, 1, 0)
    ]
    assert page["pagination"] == {"page": 3, "limit": 10, "total": 25, "pages": 3}


def test_delete_suppression_by_url_encoded_address(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    addresses = ["Carol@Example.com", "+15557654321"]
    _ok(client.post("/api/v1/suppressions", json={"addresses": addresses}), 201)
    globex = make_tenant(client, rt, "globex")
    _error(client.delete("/api/v1/suppressions/carol%40example.com", headers=globex.headers()),
           404, "SUPPRESSION_NOT_FOUND")  # fmt: skip

    assert _ok(client.delete("/api/v1/suppressions/CAROL%40example.com"))["message"]
    assert _ok(client.delete("/api/v1/suppressions/%2B15557654321"))["message"]

    _error(client.delete("/api/v1/suppressions/carol%40example.com"), 404, "SUPPRESSION_NOT_FOUND")
    _error(client.delete("/api/v1/suppressions/nobody%40example.com"), 404, "SUPPRESSION_NOT_FOUND")
    _error(client.delete("/api/v1/suppressions/what"), 400, "INVALID_ADDRESS")
    assert _ok(client.get("/api/v1/suppressions"))["suppressions"] == []


# --- authentication --------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/v1/lists", None),
    ("POST", "/api/v1/lists", {"name": "x"}),
    ("GET", "/api/v1/lists/1", None),
    ("DELETE", "/api/v1/lists/1", None),
    ("GET", "/api/v1/segments", None),
    ("POST", "/api/v1/segments", {"name": "x", "condition": USER1_CONDITION}),
    ("GET", "/api/v1/segments/seg_x", None),
    ("PUT", "/api/v1/segments/seg_x", {"name": "y"}),
    ("DELETE", "/api/v1/segments/seg_x", None),
    ("GET", "/api/v1/suppressions", None),
    ("POST", "/api/v1/suppressions", {"addresses": ["a@example.com"]}),
    ("DELETE", "/api/v1/suppressions/a%40example.com", None),
]


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
def test_every_route_needs_a_token(
    client: TestClient, tenant: Tenant, method: str, url: str, body: dict[str, Any] | None
) -> None:
    del client.headers["Authorization"]

    _error(client.request(method, url, json=body), 401, "UNAUTHORIZED")
    bad = {"Authorization": "Bearer not-a-token"}
    assert client.request(method, url, json=body, headers=bad).status_code == 401

    client.headers.update(tenant.headers())
    assert _ok(client.get("/api/v1/lists")) == []
    assert _ok(client.get("/api/v1/segments"))["pagination"]["total"] == 0
    assert _ok(client.get("/api/v1/suppressions"))["pagination"]["total"] == 0


# --- campaigns' audiences --------------------------------------------------------------------


def _campaign_total(client: TestClient, fields: dict[str, Any]) -> int:
    body = {"name": "Audience", "channel": "log", "touchpoints": [{"message": "hi"}], **fields}
    campaign_id = _ok(client.post("/api/v1/campaigns", json=body), 201)["id"]
    return int(_ok(client.get(f"/api/v1/campaigns/{campaign_id}"))["targetAudience"]["totalCount"])


def test_a_campaign_targeting_a_segment_counts_its_size(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    segment = _segment(client)
    _ok(client.post("/api/v1/suppressions", json={"addresses": ["user15@example.com"]}), 201)
    size = _size(client, segment["id"])
    assert size == 10

    assert _campaign_total(client, {"targetAudience": {"segments": [segment["id"]]}}) == size
    assert _campaign_total(client, {"targetAudience": {"segments": ["seg_missing"]}}) == 0
