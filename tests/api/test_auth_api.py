"""Login, refresh, API keys: every route needs credentials, and wrong ones are 401."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.config import Settings
from tests.api.conftest import Tenant


def test_login_refresh_and_use_the_token(client: TestClient, tenant: Tenant) -> None:
    client.headers.pop("Authorization")
    login = client.post(
        "/api/v1/auth/login", json={"user": tenant.username, "password": tenant.password}
    )
    assert login.status_code == 200
    tokens = login.json()["data"]
    assert set(tokens) >= {"token", "refresh_token"}

    bearer = {"Authorization": f"Bearer {tokens['token']}"}
    assert client.get("/api/v1/campaigns", headers=bearer).status_code == 200
    refreshed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    ).json()["data"]
    assert (
        client.get(
            "/api/v1/campaigns", headers={"Authorization": f"Bearer {refreshed['token']}"}
        ).status_code
        == 200
    )
    # A refresh token is not an access token.
    wrong_kind = client.get(
        "/api/v1/campaigns", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert wrong_kind.status_code == 401


def test_wrong_or_missing_credentials_are_401(
    client: TestClient, tenant: Tenant, settings: Settings
) -> None:
    client.headers.pop("Authorization")
    bad_login = client.post(
        "/api/v1/auth/login", json={"user": tenant.username, "password": "nope"}
    )
    assert bad_login.status_code == 401
    assert bad_login.json()["error"]["code"] == "INVALID_CREDENTIALS"
    for headers in (
        {},
        {"Authorization": "Bearer garbage"},
        {"Authorization": f"Bearer {tenant.api_key}x"},
    ):
        response = client.get("/api/v1/campaigns", headers=headers)
        assert response.status_code == 401
        assert response.json()["success"] is False
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": "x"}).status_code == 401


def test_passwords_and_keys_are_stored_hashed(client: TestClient, tenant: Tenant, rt) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    with rt.engine.connect() as conn:
        stored = " ".join(
            str(v)
            for row in conn.execute(
                sa.text("select password_hash from users union all select key_hash from api_keys")
            )
            for v in row
        )
    assert tenant.password not in stored and tenant.api_key not in stored
    assert stored.count("$argon2id$") == 2
