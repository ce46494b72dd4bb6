"""``campaign admin`` revokes what it created: API keys and users, as an operator runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Settings
from engine.db import make_engine, session_scope
from engine.errors import AuthenticationFailed
from engine.services.attempts import AttemptLimiter
from engine.services.auth import authenticate_api_key, login
from tests.unit.test_cli import campaign

PASSWORD = "correct horse battery"


def test_revoke_key_and_disable_user(tmp_path: Path) -> None:
    created = campaign(tmp_path, "admin", "bootstrap", "--organization", "acme", "--user", "ana",
                       "--password", PASSWORD)  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.split("api key ")[1].strip()
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'cli.db'}")
    attempts = AttemptLimiter.from_settings(settings).for_client("127.0.0.1")

    listed = campaign(tmp_path, "admin", "list-keys", "--organization", "acme")
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.splitlines()[1].split("\t")
    assert row[1] == f"ce_{key.split('_')[1]}_…" and row[-1] == "active"
    assert key not in listed.stdout
    revoked = campaign(tmp_path, "admin", "revoke-key", "--organization", "acme", "--key", row[0])
    disabled = campaign(tmp_path, "admin", "disable-user", "--organization", "acme",
                        "--user", "ana")  # fmt: skip
    users = campaign(tmp_path, "admin", "list-users", "--organization", "acme")
    unknown = campaign(tmp_path, "admin", "revoke-key", "--organization", "acme", "--key", "key_x")

    assert revoked.returncode == 0 and row[0] in revoked.stdout
    assert disabled.returncode == 0 and users.stdout.splitlines()[1].split("\t")[1] == "ana"
    assert users.stdout.splitlines()[1].split("\t")[2].startswith("disabled ")
    assert unknown.returncode == 2 and "API_KEY_NOT_FOUND" in unknown.stderr
    with session_scope(engine) as session:
        with pytest.raises(AuthenticationFailed, match="invalid API key"):
            authenticate_api_key(session, key)
        with pytest.raises(AuthenticationFailed, match="disabled"):
            login(session, settings, "ana", PASSWORD, attempts)
    engine.dispose()
