"""``POST /api/v1/lists/{id}/import`` and ``GET /api/v1/lists/{id}/export``: CSV over HTTP."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audience.lists import get_or_create_list
from engine.db import session_scope
from engine.runtime import Runtime
from tests.api.conftest import Tenant, make_tenant
from tests.conftest import make_settings

CSV = {"Content-Type": "text/csv"}
FILE = (
    "email,phone,name,tags,plan\n"
    "ann@example.com,+15550111,Ann,vip,pro\n"
    "oops,+15550222,Bob,,free\n"
    ",+15550333,Phone Only,,\n"
)


def new_list(rt: Runtime, organization_id: str, name: str = "newsletter") -> int:
    with session_scope(rt.engine) as session:
        list_id = get_or_create_list(session, organization_id, name).id
    assert list_id is not None
    return list_id


@pytest.fixture
def list_id(rt: Runtime, tenant: Tenant) -> int:
    """The tenant's list ``newsletter``."""
    return new_list(rt, tenant.organization_id)


def test_import_answers_counts_and_row_errors(client: TestClient, list_id: int) -> None:
    response = client.post(f"/api/v1/lists/{list_id}/import", content=FILE, headers=CSV)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert {k: v for k, v in body["data"].items() if k != "errors"} == {
        "created": 2, "updated": 0, "unchanged": 0, "errorCount": 1, "rows": 3
    }  # fmt: skip
    [error] = body["data"]["errors"]
    assert (error["line"], error["email"], error["code"]) == (3, "oops", "INVALID_EMAIL")
    assert "@" in error["message"]
    again = client.post(f"/api/v1/lists/{list_id}/import", content=FILE, headers=CSV).json()
    assert (again["data"]["created"], again["data"]["unchanged"]) == (0, 2)


def test_export_downloads_the_list_as_csv_that_imports_back(
    client: TestClient, list_id: int
) -> None:
    client.post(f"/api/v1/lists/{list_id}/import", content=FILE, headers=CSV)

    response = client.get(f"/api/v1/lists/{list_id}/export")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="newsletter-{list_id}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["email"], r["phone"], r["tags"], r["plan"]) for r in rows] == [
        ("ann@example.com", "+15550111", "vip", "pro"),  # a signed number is not marked
        ("", "+15550333", "", ""),
    ]
    back = client.post(f"/api/v1/lists/{list_id}/import", content=response.content, headers=CSV)
    assert back.json()["data"] | {"errors": []} == {
        "created": 0, "updated": 0, "unchanged": 2, "errorCount": 0, "errors": [], "rows": 2
    }  # fmt: skip


def test_export_neutralises_formulas_unless_raw_is_asked(client: TestClient, list_id: int) -> None:
    hostile = 'email,name,note\nann@example.com,@Ann,"=HYPERLINK(""http://evil.example"",""x"")"\n'
    client.post(f"/api/v1/lists/{list_id}/import", content=hostile, headers=CSV)

    safe = list(csv.DictReader(io.StringIO(client.get(f"/api/v1/lists/{list_id}/export").text)))
    raw = client.get(f"/api/v1/lists/{list_id}/export", params={"raw": "true"})

    assert (safe[0]["name"], safe[0]["note"]) == (
        "'@Ann",
        '\'=HYPERLINK("http://evil.example","x")',
    )
    [as_stored] = list(csv.DictReader(io.StringIO(raw.text)))
    assert (as_stored["name"], as_stored["note"]) == (
        "@Ann",
        '=HYPERLINK("http://evil.example","x")',
    )
    for text in (client.get(f"/api/v1/lists/{list_id}/export").text, raw.text):
        back = client.post(f"/api/v1/lists/{list_id}/import", content=text, headers=CSV).json()
        assert (back["data"]["unchanged"], back["data"]["errorCount"]) == (1, 0)


def test_a_body_streamed_in_chunks_is_imported(client: TestClient, list_id: int) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"email,name\n"
        for i in range(3000):
            yield f"u{i}@example.com,User {i}\n".encode()

    response = client.post(f"/api/v1/lists/{list_id}/import", content=chunks(), headers=CSV)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["created"] == 3000


def test_without_a_token_nothing_is_read(client: TestClient, list_id: int) -> None:
    client.headers.pop("Authorization")

    imported = client.post(f"/api/v1/lists/{list_id}/import", content=FILE, headers=CSV)
    exported = client.get(f"/api/v1/lists/{list_id}/export")

    assert imported.status_code == exported.status_code == 401
    assert imported.json()["error"]["code"] == "UNAUTHORIZED"


def test_another_organizations_list_is_not_found(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    theirs = new_list(rt, make_tenant(client, rt, "globex").organization_id)

    imported = client.post(f"/api/v1/lists/{theirs}/import", content=FILE, headers=CSV)
    exported = client.get(f"/api/v1/lists/{theirs}/export")

    assert imported.status_code == exported.status_code == 404
    assert imported.json()["error"]["code"] == exported.json()["error"]["code"] == "LIST_NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "EMPTY_BODY"),
        (b"ann@example.com,Ann\n", "MISSING_HEADER"),
        (b"name,plan\nAnn,pro\n", "MISSING_EMAIL_OR_PHONE_COLUMN"),
        ("email,name\nann@example.com,Zoë\n".encode("latin-1"), "INVALID_ENCODING"),
    ],
)
def test_a_bad_file_is_a_400_and_imports_nothing(
    client: TestClient, list_id: int, body: bytes, code: str
) -> None:
    response = client.post(f"/api/v1/lists/{list_id}/import", content=body, headers=CSV)

    assert response.status_code == 400
    error = response.json()["error"]
    assert response.json()["success"] is False and error["code"] == code and error["message"]
    exported = client.get(f"/api/v1/lists/{list_id}/export").text
    assert exported.count("\n") == 1  # the header only


def test_a_body_that_is_not_csv_is_refused(client: TestClient, list_id: int) -> None:
    response = client.post(f"/api/v1/lists/{list_id}/import", json={"email": "a@b.com"})

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_imports_may_be_larger_than_other_bodies_up_to_their_own_limit(
    db_url: str, tmp_path: Path, rt: Runtime
) -> None:
    settings = make_settings(db_url, tmp_path, max_body_bytes=2048, max_import_bytes=64_000)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        tenant = make_tenant(client, rt, "acme")
        client.headers.update(tenant.headers())
        list_id = new_list(rt, tenant.organization_id)
        rows = "".join(f"user{i}@example.com,User {i}\n" for i in range(1000))  # ~30 kB

        fits = client.post(
            f"/api/v1/lists/{list_id}/import", content="email,name\n" + rows, headers=CSV
        )
        too_big = client.post(
            f"/api/v1/lists/{list_id}/import", content="email,name\n" + rows * 3, headers=CSV
        )
        other = client.post("/api/v1/campaigns", json={"name": "x" * 3000})

    assert fits.status_code == 200 and fits.json()["data"]["created"] == 1000
    assert too_big.status_code == other.status_code == 413
    assert too_big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "64000 bytes" in too_big.json()["error"]["message"]
