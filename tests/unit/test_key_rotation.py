"""Rotating ``SECRET_KEY``: old keys in ``SECRET_KEY_FALLBACKS`` still decrypt credentials and
verify links while the new key encrypts and signs; ``campaign admin rotate-secrets`` moves what
is stored to the new key; the migration to encrypted campaign and webhook secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.campaigns.campaign import get_or_create_organization
from engine.config import DEV_SECRET_KEY, Settings
from engine.db import make_engine, migrate, session_scope
from engine.errors import ValidationFailed
from engine.integrations.channel_accounts import channel_config, create_account
from engine.integrations.links import SealedClick, SealedUnsubscribe
from engine.integrations.message_links import link_tokens
from engine.models import Campaign, ChannelAccount
from engine.models.base import JSONType
from engine.runtime import Runtime
from engine.secrets import decrypt_json, decrypt_text, encrypt_json
from tests.factories import make_campaign

OLD = "the-key-we-used-until-today-0123456789abcdef"
NEW = "the-key-we-use-from-today-on-fedcba9876543210"
#: ``campaigns.channel_config`` as the previous release wrote it.
_CONFIGS = sa.table("campaigns", sa.column("channel_config", JSONType))


def test_credentials_encrypted_with_an_old_key_decrypt_only_while_it_is_a_fallback() -> None:
    token = encrypt_json(OLD, {"bot_token": "123:abc"})

    assert decrypt_json((NEW, OLD), token) == {"bot_token": "123:abc"}
    with pytest.raises(ValidationFailed) as refused:
        decrypt_json(NEW, token)
    assert refused.value.code == "CREDENTIALS_UNREADABLE"
    # New values are encrypted with the first key: they no longer need the old one.
    assert decrypt_json(NEW, encrypt_json((NEW, OLD), {"a": 1})) == {"a": 1}


def test_links_sealed_with_an_old_key_open_while_it_is_a_fallback() -> None:
    sent = link_tokens(Settings(secret_key=OLD))
    click, unsubscribe = sent.seal_click(3, 7, 0), sent.seal_unsubscribe(3, 7)

    rotating = link_tokens(Settings(secret_key=NEW, secret_key_fallbacks=[OLD]))
    assert rotating.open_click(click) == SealedClick(3, 7, 0)
    assert rotating.open_unsubscribe(unsubscribe) == SealedUnsubscribe(3, 7)
    after = link_tokens(Settings(secret_key=NEW))
    assert after.open_click(click) is None
    assert after.open_unsubscribe(unsubscribe) is None
    # While rotating, new links are sealed with the new key.
    assert after.open_unsubscribe(rotating.seal_unsubscribe(3, 8)) == SealedUnsubscribe(3, 8)


def test_rotate_secrets_moves_stored_credentials_to_the_new_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rotate.db'}"
    migrate(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        org = get_or_create_organization(session, "acme")
        config = {"url": "http://127.0.0.1:9/hook", "secret": "s3cret-of-the-account"}
        account_id = create_account(session, OLD, org.id, "webhook", config).id
    environ = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": NEW,
        "SECRET_KEY_FALLBACKS": json.dumps([OLD]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "engine", "admin", "rotate-secrets"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1 channel accounts" in done.stdout
    with session_scope(engine) as session:
        stored = session.get_one(ChannelAccount, account_id).secrets
    assert decrypt_json(NEW, stored) == {"secret": "s3cret-of-the-account"}
    engine.dispose()


def test_the_migration_encrypts_campaign_and_webhook_secrets_stored_in_clear(rt: Runtime) -> None:
    from alembic import command

    from engine.db import alembic_config

    _, campaign_id = make_campaign(rt, contacts=3, channel="log")
    with rt.engine.begin() as conn:
        cfg = alembic_config(rt.settings.database_url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0017")
    clear = {"url": "http://127.0.0.1:9/hook", "secret": "plain-campaign-secret"}
    with rt.engine.begin() as conn:  # what the previous release stored
        conn.execute(_CONFIGS.update().values(channel_config=clear))
        conn.execute(sa.text("UPDATE campaigns SET channel = 'webhook'"))
        conn.execute(
            sa.text(
                "INSERT INTO webhook_subscriptions (id, organization_id, url, events, secret,"
                " active, created_at) SELECT 'whk_old', organization_id, 'http://127.0.0.1:9/w',"
                " '[]', 'plain-webhook-secret', true, created_at FROM campaigns"
            )
        )
    with rt.engine.begin() as conn:
        cfg = alembic_config(rt.settings.database_url)
        cfg.attributes["connection"] = conn
        cfg.attributes["secret_keys"] = rt.settings.verification_keys
        command.upgrade(cfg, "head")

    with session_scope(rt.engine) as session:
        raw = " ".join(
            str(row)
            for row in session.execute(
                sa.text(
                    "SELECT c.channel_config, c.secrets, w.secret FROM campaigns c,"
                    " webhook_subscriptions w"
                )
            )
        )
        assert "plain-campaign-secret" not in raw and "plain-webhook-secret" not in raw
        campaign = session.get_one(Campaign, campaign_id)
        assert campaign.channel_config == {"url": clear["url"]}
        assert channel_config(session, rt.settings.verification_keys, campaign) == clear
        hook = session.execute(sa.text("SELECT secret FROM webhook_subscriptions")).scalar_one()
    assert decrypt_text(rt.settings.verification_keys, hook) == "plain-webhook-secret"


def test_the_migration_refuses_to_encrypt_with_the_public_development_key(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    from engine.config import get_settings
    from engine.db import alembic_config

    make_campaign(rt, contacts=1, channel="log")
    with rt.engine.begin() as conn:
        cfg = alembic_config(rt.settings.database_url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0017")
        conn.execute(_CONFIGS.update().values(channel_config={"password": "pw"}))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DEVELOPMENT_MODE", "false")
    get_settings.cache_clear()
    try:
        assert get_settings().secret_key == DEV_SECRET_KEY
        with (
            pytest.raises(RuntimeError, match="DEFAULT_SECRET_KEY"),
            rt.engine.begin() as conn,
        ):
            cfg = alembic_config(rt.settings.database_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        get_settings.cache_clear()
    with rt.engine.begin() as conn:  # the store stays as it was: nothing written in clear
        cfg = alembic_config(rt.settings.database_url)
        cfg.attributes["connection"] = conn
        cfg.attributes["secret_keys"] = rt.settings.verification_keys
        command.upgrade(cfg, "head")
