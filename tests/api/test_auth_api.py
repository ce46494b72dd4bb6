"""Login, refresh, API keys: every route needs credentials, and wrong ones are 401."""

from __future__ import annotations

import hashlib

import argon2
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.config import Settings
from engine.db import make_engine, session_scope
from engine.runtime import Runtime
from engine.services.auth import bootstrap
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


def _stored(rt: Runtime) -> tuple[str, str]:
    """The one user's password hash and the one API key's stored hash."""
    with rt.engine.connect() as conn:
        password = conn.execute(sa.text("select password_hash from users")).scalar_one()
        key = conn.execute(sa.text("select key_hash from api_keys")).scalar_one()
    return password, key


def test_passwords_are_argon2id_hashes_and_keys_sha256_digests(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    password, key = _stored(rt)
    assert password.startswith("$argon2id$") and tenant.password not in password
    digest = hashlib.sha256(tenant.api_key.encode()).hexdigest()
    assert key == f"sha256${digest}" and tenant.api_key not in key


def test_a_key_stored_by_an_earlier_version_as_argon2_works_and_is_upgraded(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    earlier = argon2.PasswordHasher().hash(tenant.api_key)
    with rt.engine.begin() as conn:
        conn.execute(sa.text("update api_keys set key_hash = :h"), {"h": earlier})

    assert client.get("/api/v1/campaigns").status_code == 200
    assert _stored(rt)[1].startswith("sha256$")
    assert client.get("/api/v1/campaigns").status_code == 200
    wrong = {"Authorization": f"Bearer {tenant.api_key[:-2]}xx"}
    assert client.get("/api/v1/campaigns", headers=wrong).status_code == 401


def test_a_login_rehashes_a_password_hashed_at_another_cost(
    client: TestClient, tenant: Tenant, rt: Runtime
) -> None:
    cheap = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with rt.engine.begin() as conn:
        conn.execute(
            sa.text("update users set password_hash = :h"), {"h": cheap.hash(tenant.password)}
        )
    body = {"user": tenant.username, "password": tenant.password}

    assert client.post("/api/v1/auth/login", json=body).status_code == 200
    settings = rt.settings
    params = argon2.extract_parameters(_stored(rt)[0])
    assert (params.time_cost, params.memory_cost, params.parallelism) == (
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )
    assert client.post("/api/v1/auth/login", json=body).status_code == 200


def test_the_api_hashes_passwords_at_its_own_settings_cost(settings: Settings) -> None:
    # Another cost was applied to this process last (a runtime built on other settings): the
    # API app applies its own, so what `campaign api` stores is what the operator configured.
    Runtime.from_settings(settings.model_copy(update={"password_hash_time_cost": 3})).close()
    wanted = settings.model_copy(
        update={"password_hash_time_cost": 2, "password_hash_memory_kib": 20480}
    )
    with TestClient(create_app(wanted), raise_server_exceptions=False) as client:
        engine = make_engine(wanted.database_url)
        with session_scope(engine) as session:
            bootstrap(session, "initech", "peter", "correct horse battery")
        body = {"user": "peter", "password": "correct horse battery"}
        assert client.post("/api/v1/auth/login", json=body).status_code == 200
        with engine.connect() as conn:
            stored = conn.execute(sa.text("select password_hash from users")).scalar_one()
        engine.dispose()
    params = argon2.extract_parameters(stored)
    assert (params.time_cost, params.memory_cost) == (2, 20480)
