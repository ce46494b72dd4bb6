"""The contact lists API (contact management) as written: batch add/update, tag_flag, get, update,
delete."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engine.campaigns.campaign import get_or_create_organization
from engine.db import session_scope
from engine.runtime import Runtime
from engine.services.auth import create_api_user

DOCUMENTED_BATCH = {  # the documented request example, verbatim
    "members": [
        {
            "email": "xjmfc@126.com",
            "phone": "13681312919",
            "name": "Zhusuosuo",
            "fields": {"Birthday": "03/30", "Age": "12", "customField": "My test"},
            "tags": ["testTag"],
        }
    ],
    "tag_flag": 0,
    "update_existing": True,
}


pytest_plugins = ["tests.api.live"]


def _basic(user: str, key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


@pytest.fixture
def lists_client(live_url: str, rt: Runtime) -> Iterator[httpx.Client]:
    """An HTTP client of a live server (uvicorn on loopback), authenticated with Basic
    api_user:api_key for list "newsletter" of "acme": the documented requests go over the wire."""
    with session_scope(rt.engine) as session:
        org = get_or_create_organization(session, "acme")
        _, key = create_api_user(session, org.id, "newsletter", "api_user")
    with httpx.Client(base_url=live_url, headers=_basic("api_user", key), timeout=30) as client:
        yield client


def _add(client: httpx.Client, members: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    body = {"members": members, "update_existing": True, **options}
    response = client.post("/v1/marketing/lists/members", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _tags(client: httpx.Client, member_id: str) -> list[str]:
    return list(
        client.get(f"/v1/marketing/lists/members/{member_id}").json()["result"]["tag_names"]
    )


def test_documented_batch_example_creates_the_member(lists_client: httpx.Client) -> None:
    response = lists_client.post("/v1/marketing/lists/members", json=DOCUMENTED_BATCH)

    assert response.status_code == 200
    body = response.json()
    counters = {"created_count", "updated_count", "error_count"}
    assert set(body) == counters | {"created_members", "updated_members", "error_members"}
    assert (body["created_count"], body["updated_count"], body["error_count"]) == (1, 0, 0)
    member_id = body["created_members"][0]["member_id"]
    assert body["created_members"][0]["email"] == "xjmfc@126.com"
    result = lists_client.get(f"/v1/marketing/lists/members/{member_id}").json()["result"]
    assert set(result) == {
        "member_id", "list_id", "email", "phone", "name", "fields", "tag_ids", "tag_names",
        "create_time", "update_time", "unsubscribe_time",
    }  # fmt: skip
    assert result["fields"] == {"Birthday": "03/30", "Age": "12", "customField": "My test"}
    assert result["tag_names"] == ["testTag"] and len(result["tag_ids"]) == 1
    assert result["create_time"].endswith("+0800") and result["unsubscribe_time"] is None
    again = lists_client.post("/v1/marketing/lists/members", json=DOCUMENTED_BATCH).json()
    assert (again["created_count"], again["updated_count"]) == (0, 1)  # matched on email


@pytest.mark.parametrize(
    ("flag", "given", "expected"),
    [  # the documented tag_flag table, row by row ("null" = not passed)
        (0, [], []),
        (0, None, ["1", "2", "3"]),
        (0, ["3", "4", "5"], ["3", "4", "5"]),
        (1, [], ["1", "2", "3"]),
        (1, None, ["1", "2", "3"]),
        (1, ["3", "4", "5"], ["1", "2", "3", "4", "5"]),
        (2, [], ["1", "2", "3"]),
        (2, None, ["1", "2", "3"]),
        (2, ["3", "4", "5"], ["1", "2", "3"]),
    ],
)
def test_tag_flag_table(
    lists_client: httpx.Client, flag: int, given: list[str] | None, expected: list[str]
) -> None:
    created = _add(lists_client, [{"email": "a@example.com", "tags": ["1", "2", "3"]}], tag_flag=0)
    member_id = created["created_members"][0]["member_id"]
    member: dict[str, Any] = {"email": "a@example.com"}
    if given is not None:
        member["tags"] = given
    _add(lists_client, [member], tag_flag=flag)
    assert _tags(lists_client, member_id) == expected


def test_tag_flag_table_last_row_skip_on_empty_tags(lists_client: httpx.Client) -> None:
    created = _add(lists_client, [{"email": "b@example.com", "tags": []}], tag_flag=0)
    member_id = created["created_members"][0]["member_id"]
    _add(lists_client, [{"email": "b@example.com", "tags": ["3", "4", "5"]}], tag_flag=2)
    assert _tags(lists_client, member_id) == []


def test_invalid_members_are_reported_and_the_rest_applies(lists_client: httpx.Client) -> None:
    body = _add(
        lists_client, [{"email": "good@example.com"}, {"email": "not-an-email"}, {"phone": "1"}]
    )
    assert (body["created_count"], body["error_count"]) == (1, 2)
    assert (
        body["error_members"][0]["email"] == "not-an-email" and body["error_members"][0]["message"]
    )
    kept = _add(lists_client, [{"email": "good@example.com", "name": "x"}], update_existing=False)
    assert (kept["updated_count"], kept["error_count"]) == (0, 1)


def test_1001_members_are_refused_and_nothing_is_written(lists_client: httpx.Client) -> None:
    members = [{"email": f"m{i}@example.com"} for i in range(1001)]
    response = lists_client.post(
        "/v1/marketing/lists/members", json={"members": members, "update_existing": True}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 30001 and "1000" in response.json()["message"]
    listed = lists_client.post("/v1/marketing/lists/list_members", json={}).json()
    assert listed["total"] == 0
    assert _add(lists_client, members[:1000])["created_count"] == 1000


def test_update_delete_and_not_found(lists_client: httpx.Client) -> None:
    member_id = _add(lists_client, [{"email": "c@example.com"}])["created_members"][0]["member_id"]
    change = {"phone": "13681312919", "name": "朱锁锁", "fields": {"Age": "13"}, "tags": ["vip"]}
    assert lists_client.put(f"/v1/marketing/lists/members/{member_id}", json=change).json() == {
        "count": 1
    }
    result = lists_client.get(f"/v1/marketing/lists/members/{member_id}").json()["result"]
    assert (result["name"], result["fields"]["Age"], result["tag_names"]) == (
        "朱锁锁",
        "13",
        ["vip"],
    )
    assert lists_client.delete(f"/v1/marketing/lists/members/{member_id}").json() == {"count": 1}
    for response in (
        lists_client.get(f"/v1/marketing/lists/members/{member_id}"),
        lists_client.delete(f"/v1/marketing/lists/members/{member_id}"),
        lists_client.put("/v1/marketing/lists/members/999999", json={"name": "x"}),
        lists_client.delete("/v1/marketing/lists/members/③"),  # a digit that is not a number
    ):
        assert response.status_code == 404
        assert response.json() == {"code": 30036, "message": "resource not found"}


def test_list_and_delete_by_condition_as_documented(lists_client: httpx.Client) -> None:
    _add(lists_client, [
        {"email": "one@qq.com", "phone": "18800001111"},
        {"email": "two@qq.com", "phone": "13000000000"},
        {"email": "three@hotmail.com", "phone": "13000000001"},
        {"email": "four@gmail.com", "phone": "13000000002"},
    ])  # fmt: skip
    documented_query = {
        "condition": {
            "relation": "and",
            "items": [{"field_name": "Email", "op": "contain", "value": "qq.com"}],
        }
    }
    page = lists_client.post(
        "/v1/marketing/lists/listMembers?offset=0&limit=10", json=documented_query
    ).json()
    assert (page["total"], page["count"]) == (2, 2)
    assert {m["email"] for m in page["result"]} == {"one@qq.com", "two@qq.com"}
    first = lists_client.post(
        "/v1/marketing/lists/list_members?offset=1&limit=1", json=documented_query
    ).json()
    assert (first["total"], first["count"]) == (2, 1)

    documented_delete = {
        "condition": {
            "relation": "or",
            "items": [
                {"field_name": "Email", "op": "contain", "value": "hotmail.com"},
                {"field_name": "Phone", "op": "contain", "value": "188"},
            ],
        }
    }
    deleted = lists_client.request(
        "DELETE", "/v1/marketing/lists/members/delete", json=documented_delete
    ).json()
    assert deleted == {"count": 2}
    remaining = lists_client.post("/v1/marketing/lists/list_members", json={}).json()
    assert {m["email"] for m in remaining["result"]} == {"two@qq.com", "four@gmail.com"}


@pytest.mark.parametrize(
    "body",
    [
        {
            "condition": {
                "relation": "and",
                "items": [{"field_name": "Email", "op": "contain", "value": "x"}] * 11,
            }
        },
        {
            "condition": {
                "relation": "and",
                "items": [{"field_name": "Email", "op": "like", "value": "x"}],
            }
        },
        {"condition": {"relation": "xor", "items": []}},
        {
            "condition": {
                "relation": "and",
                "items": [{"field_name": "Shoe size", "op": "==", "value": "4"}],
            }
        },
    ],
)
def test_bad_conditions_are_clear_errors(lists_client: httpx.Client, body: dict[str, Any]) -> None:
    _add(lists_client, [{"email": "keep@example.com"}])
    for method, path in [
        ("POST", "/v1/marketing/lists/list_members"),
        ("DELETE", "/v1/marketing/lists/members/delete"),
    ]:
        response = lists_client.request(method, path, json=body)
        assert response.status_code in (400, 422)
        assert response.json()["code"] == 30001 and response.json()["message"]
    assert lists_client.post("/v1/marketing/lists/list_members", json={}).json()["total"] == 1


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "offset=-1"])
def test_bad_paging_is_a_clear_error(lists_client: httpx.Client, query: str) -> None:
    response = lists_client.post(f"/v1/marketing/lists/list_members?{query}", json={})
    assert response.status_code == 422 and response.json()["code"] == 30001


def test_wrong_credentials_answer_30000(lists_client: httpx.Client) -> None:
    for headers in (
        {"Authorization": ""},
        _basic("api_user", "wrong"),
        _basic("nobody", "x"),
        {"Authorization": "Basic !!!"},
    ):
        response = lists_client.post("/v1/marketing/lists/list_members", json={}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"code": 30000, "message": "Authentication failed"}


def test_an_oversized_body_answers_in_the_lists_api_shape(lists_client: httpx.Client) -> None:
    body = b'{"members": [' + b" " * 2_000_000 + b"]}"
    response = lists_client.post(
        "/v1/marketing/lists/members",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "code": 30001,
        "message": "request body is larger than 1000000 bytes",
        "reason": "PAYLOAD_TOO_LARGE",
    }
