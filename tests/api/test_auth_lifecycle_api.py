"""Logins end when they should: rotated refresh tokens, revoked keys, disabled users, rotated
secret keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from engine.api.app import create_app
from engine.config import Settings
from tests.api.conftest import Tenant, make_tenant


def _login(client: TestClient, tenant: Tenant, path: str = "/api/v1/auth/login") -> Any:
    answer = client.post(path, json={"user": tenant.username, "password": tenant.password})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"] if path.startswith("/api/") else answer.json()


def _refresh(client: TestClient, refresh_token: str, path: str = "/api/v1/auth/refresh") -> Any:
    return client.post(path, json={"refresh_token": refresh_token})


def _code(answer: Any) -> str:
    return str(answer.json()["error"]["code"])


def _campaigns(client: TestClient, token: str) -> Any:
    return client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {token}"})


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.mark.parametrize("api", ["/api/v1/auth", "/builder"])
def test_a_used_refresh_token_presented_again_revokes_the_whole_login(
    client: TestClient, tenant: Tenant, api: str
) -> None:
    first = _login(client, tenant, f"{api}/login")
    second = _refresh(client, first["refresh_token"], f"{api}/refresh").json()
    second = second.get("data", second)
    assert second["refresh_token"] != first["refresh_token"]
    assert _campaigns(client, second["token"]).status_code == 200

    with capture_logs() as logs:
        replay = _refresh(client, first["refresh_token"], f"{api}/refresh")
    assert replay.status_code == 401 and _code(replay) == "TOKEN_REUSED"
    reused = [e for e in logs if e["event"] == "auth.refresh_token_reused"]
    assert [e["log_level"] for e in reused] == ["warning"] and reused[0]["family_id"]
    # The newest tokens of that login stop too: the thief's and the owner's alike.
    newest = _refresh(client, second["refresh_token"], f"{api}/refresh")
    assert newest.status_code == 401 and _code(newest) == "TOKEN_REVOKED"
    assert _code(_campaigns(client, second["token"])) == "TOKEN_REVOKED"
    # Another login of the same user is untouched.
    assert _campaigns(client, _login(client, tenant)["token"]).status_code == 200


def test_refreshing_keeps_the_login_expiry_and_every_token_has_a_jti(
    client: TestClient, tenant: Tenant
) -> None:
    first = _login(client, tenant)
    second = _refresh(client, first["refresh_token"]).json()["data"]
    assert _claims(second["refresh_token"])["exp"] == _claims(first["refresh_token"])["exp"]
    jtis = {_claims(t[k])["jti"] for t in (first, second) for k in ("token", "refresh_token")}
    assert len(jtis) == 4


def test_a_disabled_user_is_shut_out_at_once(client: TestClient, tenant: Tenant, rt: Any) -> None:
    tokens = _login(client, tenant)
    users = client.get("/api/v1/users").json()["data"]
    assert [(u["username"], u["disabledAt"]) for u in users] == [(tenant.username, None)]
    other = make_tenant(client, rt, "globex", contacts=0)
    foreign = client.post(
        f"/api/v1/users/{users[0]['id']}/disable", headers=other.headers()
    )  # another organization's admin
    assert foreign.status_code == 404 and _code(foreign) == "USER_NOT_FOUND"
    bearer = {"Authorization": f"Bearer {tokens['token']}"}
    itself = client.post(f"/api/v1/users/{users[0]['id']}/disable", headers=bearer)
    assert itself.status_code == 409 and _code(itself) == "CURRENT_CREDENTIAL"

    disabled = client.post(f"/api/v1/users/{users[0]['id']}/disable")

    assert disabled.status_code == 200 and disabled.json()["data"]["disabledAt"].endswith("Z")
    assert _code(_campaigns(client, tokens["token"])) == "USER_DISABLED"
    assert _code(_refresh(client, tokens["refresh_token"])) == "USER_DISABLED"
    again = client.post(
        "/api/v1/auth/login", json={"user": tenant.username, "password": tenant.password}
    )
    assert again.status_code == 401 and _code(again) == "USER_DISABLED"
    wrong = client.post("/api/v1/auth/login", json={"user": tenant.username, "password": "x"})
    assert _code(wrong) == "INVALID_CREDENTIALS"  # the state shows only to the password holder


def test_a_revoked_api_key_answers_401_at_once(client: TestClient, tenant: Tenant, rt: Any) -> None:
    assert client.get("/api/v1/campaigns").status_code == 200  # verified and remembered
    keys = client.get("/api/v1/api-keys").json()["data"]
    assert len(keys) == 1 and keys[0]["revokedAt"] is None and keys[0]["lastUsedAt"]
    assert tenant.api_key not in str(keys) and tenant.api_key.split("_")[1] == keys[0]["prefix"]
    other = make_tenant(client, rt, "globex", contacts=0)
    foreign = client.post(f"/api/v1/api-keys/{keys[0]['id']}/revoke", headers=other.headers())
    assert foreign.status_code == 404 and _code(foreign) == "API_KEY_NOT_FOUND"
    itself = client.post(f"/api/v1/api-keys/{keys[0]['id']}/revoke")
    assert itself.status_code == 409 and _code(itself) == "CURRENT_CREDENTIAL"
    token = {"Authorization": f"Bearer {_login(client, tenant)['token']}"}

    revoked = client.post(f"/api/v1/api-keys/{keys[0]['id']}/revoke", headers=token)

    assert revoked.status_code == 200 and revoked.json()["data"]["revokedAt"]
    after = client.get("/api/v1/campaigns")
    assert after.status_code == 401 and _code(after) == "INVALID_API_KEY"
    trigger = client.get("/builder/triggers/1", params={"apikey": tenant.api_key})
    assert trigger.status_code == 401
    assert client.get("/api/v1/campaigns", headers=other.headers()).status_code == 200


@pytest.fixture
def rotated(settings: Settings) -> Iterator[TestClient]:
    """The same store served after a key rotation: a new key, the old one as a fallback."""
    new = settings.model_copy(
        update={"secret_key": "new-" + "x" * 40, "secret_key_fallbacks": [settings.secret_key]}
    )
    with TestClient(create_app(new), raise_server_exceptions=False) as test_client:
        yield test_client


def test_tokens_signed_with_a_fallback_key_still_work(
    client: TestClient, tenant: Tenant, rotated: TestClient, settings: Settings
) -> None:
    tokens = _login(client, tenant)

    assert _campaigns(rotated, tokens["token"]).status_code == 200
    renewed = _refresh(rotated, tokens["refresh_token"]).json()["data"]
    new_key = rotated.app.state.settings.secret_key  # type: ignore[attr-defined]
    assert jwt.decode(renewed["token"], new_key, algorithms=["HS256"])["sub"]
    # Without the fallback, the old key's tokens are refused.
    rotated.app.state.settings.secret_key_fallbacks = []  # type: ignore[attr-defined]
    assert _code(_campaigns(rotated, tokens["token"])) == "INVALID_TOKEN"
    assert _campaigns(rotated, renewed["token"]).status_code == 200
