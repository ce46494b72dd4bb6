"""Password guessing stops: failed logins and Basic auth checks are limited per user and per
client address (429 with Retry-After, before argon2 runs), and unknown names cost as much as
known ones."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import argon2
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.config import Settings
from engine.db import session_scope
from engine.runtime import Runtime
from engine.services.auth import bootstrap, create_api_user
from tests.conftest import make_settings

PASSWORD = "correct horse battery"
LIMITS = {"auth_failures_per_user": 3, "auth_failures_per_address": 5, "auth_failure_window_s": 60}

Serve = Callable[[], AbstractContextManager[TestClient]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def limited(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Settings:
    """Small attempt limits, counted in memory or in a real Redis."""
    redis = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    return make_settings(db_url, tmp_path, redis_url=redis, **LIMITS)


@pytest.fixture
def serve(limited: Settings) -> Iterator[Serve]:
    """Start API processes on the limited settings (each its own app, as separate processes)."""

    @contextmanager
    def start() -> Iterator[TestClient]:
        with TestClient(create_app(limited), raise_server_exceptions=False) as client:
            yield client

    runtime = Runtime.from_settings(limited)
    with session_scope(runtime.engine) as session:
        bootstrap(session, "acme", "ana", PASSWORD)
        bootstrap(session, "globex", "bob", PASSWORD)
    runtime.close()
    yield start


@pytest.fixture
def argon2_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts argon2 verifications (the library's, not ours): one entry per check."""
    calls: list[str] = []
    verify = argon2.PasswordHasher.verify

    def counting(self: argon2.PasswordHasher, hash_: str, password: str | bytes) -> bool:
        calls.append(hash_)
        return verify(self, hash_, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting)
    return calls


def _login(client: TestClient, user: str, password: str, path: str = "/api/v1/auth/login") -> Any:
    return client.post(path, json={"user": user, "password": password})


def test_failed_logins_of_a_user_are_refused_with_429_before_argon2(
    serve: Serve, argon2_checks: list[str]
) -> None:
    with serve() as client:
        assert [_login(client, "ana", "wrong").status_code for _ in range(3)] == [401] * 3
        assert len(argon2_checks) == 3

        refused = _login(client, "ana", PASSWORD)  # even the right password, for a while

        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert len(argon2_checks) == 3  # refused before the password was checked
        builder = _login(client, "ana", PASSWORD, "/builder/login")
        assert builder.status_code == 429 and builder.headers["Retry-After"]
        # Another user is not locked out by ana's failures.
        assert _login(client, "bob", PASSWORD).status_code == 200


def test_a_client_address_trying_many_users_is_refused(serve: Serve) -> None:
    with serve() as client:
        answers = [_login(client, f"nobody-{n}", "guess").status_code for n in range(5)]
        assert answers == [401] * 5
        refused = _login(client, "bob", PASSWORD)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == (
            "TOO_MANY_ATTEMPTS"
        )


def test_a_success_forgets_the_users_failures(serve: Serve) -> None:
    with serve() as client:
        for _ in range(2):
            assert _login(client, "ana", "wrong").status_code == 401
        assert _login(client, "ana", PASSWORD).status_code == 200
        assert [_login(client, "ana", "wrong").status_code for _ in range(2)] == [401, 401]


@pytest.mark.parametrize("guesser", ["one user", "many users"])
def test_parallel_guesses_are_counted_before_argon2_runs(
    guesser: str, limited: Settings, serve: Serve, argon2_checks: list[str]
) -> None:
    # 20 wrong logins sent at once against a limit of 5 (per user, or per address when every
    # request names another user): at most 5 reach argon2, the rest are refused with 429.
    five = {"auth_failures_per_user": 5, "auth_failures_per_address": 5}
    app = create_app(limited.model_copy(update=five))
    start = threading.Barrier(20)

    def guess(n: int) -> int:
        start.wait()
        user = "ana" if guesser == "one user" else f"nobody-{n}"
        return int(_login(client, user, f"guess-{n}").status_code)

    with (
        TestClient(app, raise_server_exceptions=False) as client,
        ThreadPoolExecutor(max_workers=20) as pool,
    ):
        answers = list(pool.map(guess, range(20)))

    assert sorted(set(answers)) == [401, 429]
    assert answers.count(401) <= 5 and answers.count(429) >= 15
    assert len(argon2_checks) == answers.count(401)


def test_correct_logins_never_use_up_the_limits(serve: Serve) -> None:
    # Limits are 3 per user and 5 per address: 20 successes in a row are never refused.
    with serve() as client:
        answers = [_login(client, "ana", PASSWORD).status_code for _ in range(20)]
        assert answers == [200] * 20
        assert [_login(client, "ana", "wrong").status_code for _ in range(3)] == [401] * 3


def test_the_counters_are_shared_by_every_api_process(serve: Serve, limited: Settings) -> None:
    with serve() as first, serve() as second:
        for _ in range(3):
            assert _login(first, "ana", "wrong").status_code == 401
        answer = _login(second, "ana", PASSWORD).status_code
    # One Redis: the second process knows the first's failures; in memory each counts alone.
    assert answer == (429 if limited.redis_url else 200)


def test_unknown_users_cost_one_argon2_check_like_known_ones(
    serve: Serve, argon2_checks: list[str]
) -> None:
    with serve() as client:
        assert _login(client, "ana", "wrong").status_code == 401
        assert _login(client, "nobody", "wrong").status_code == 401
    assert len(argon2_checks) == 2 and argon2_checks[1].startswith("$argon2id$")


def _basic(user: str, key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


def test_basic_auth_is_attempt_limited_but_the_right_key_always_passes(
    serve: Serve, limited: Settings
) -> None:
    runtime = Runtime.from_settings(limited)
    with session_scope(runtime.engine) as session:
        org, _, _ = bootstrap(session, "initech", "peter", PASSWORD)
        _, key = create_api_user(session, org.id, "news", "lists-user")
    runtime.close()
    members = "/v1/marketing/lists/list_members"
    with serve() as client:
        assert client.post(members, json={}, headers=_basic("lists-user", key)).status_code == 200
        unknown = client.post(members, json={}, headers=_basic("nobody", key))
        assert unknown.status_code == 401
        for _ in range(3):
            wrong = client.post(members, json={}, headers=_basic("lists-user", "wrong"))
            assert wrong.status_code == 401

        refused = client.post(members, json={}, headers=_basic("lists-user", "guess"))

        assert refused.status_code == 429 and refused.headers["Retry-After"]
        assert refused.json()["reason"] == "TOO_MANY_ATTEMPTS"
        # Someone guessing at the client's api_user does not lock the client out.
        ok = client.post(members, json={}, headers=_basic("lists-user", key))
        assert ok.status_code == 200


def test_an_unreachable_redis_lets_logins_through(settings: Settings, rt: Runtime) -> None:
    with session_scope(rt.engine) as session:
        bootstrap(session, "acme", "ana", PASSWORD)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0", **LIMITS})
        with TestClient(create_app(down), raise_server_exceptions=False) as client:
            for _ in range(4):
                assert _login(client, "ana", "wrong").status_code == 401
            assert _login(client, "ana", PASSWORD).status_code == 200
