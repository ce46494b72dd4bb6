"""Secrets at rest: the credentials of a campaign's own ``channel_config`` move, encrypted, to
``campaigns.secrets``; lifecycle webhook secrets are stored encrypted.

It encrypts with ``SECRET_KEY`` (the settings of the process that migrates, or the keys the
caller puts in the Alembic config's ``secret_keys`` attribute): run ``campaign migrate`` with
the same ``SECRET_KEY`` as the API and workers. It refuses to encrypt under the public
development key (or a short one) unless ``DEVELOPMENT_MODE=true``, since anyone could decrypt.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from engine.config import get_settings, secret_key_problem
from engine.integrations.channel_accounts import SECRET_SETTINGS
from engine.models.base import JSONType
from engine.secrets import (
    SecretKeys,
    decrypt_json,
    decrypt_text,
    encrypt_json,
    encrypt_text,
    is_encrypted,
)

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_campaigns = sa.table(
    "campaigns",
    sa.column("id", sa.String),
    sa.column("channel_config", JSONType),
    sa.column("secrets", sa.Text),
)
_webhooks = sa.table("webhook_subscriptions", sa.column("id", sa.String), sa.column("secret"))


def _keys(needed: bool) -> SecretKeys:
    """The keys to encrypt with; refuses a public or short key when something is to encrypt."""
    given = context.config.attributes.get("secret_keys")
    if given:
        return tuple(given)
    settings = get_settings()
    problem = secret_key_problem(settings)
    if needed and problem and not settings.development_mode:
        raise RuntimeError(
            f"{problem}: this migration encrypts stored credentials with SECRET_KEY; run it "
            "with the SECRET_KEY of the API and workers (or DEVELOPMENT_MODE=true)"
        )
    return settings.verification_keys


def upgrade() -> None:
    """Apply this revision (what is to encrypt is read, and the key checked, before any change)."""
    conn = op.get_bind()
    campaigns = [
        (id_, config)
        for id_, config in conn.execute(sa.select(_campaigns.c.id, _campaigns.c.channel_config))
        if isinstance(config, dict) and SECRET_SETTINGS & config.keys()
    ]
    webhooks = list(conn.execute(sa.select(_webhooks.c.id, _webhooks.c.secret)))
    keys = _keys(needed=True) if campaigns or webhooks else ()
    # Plain ALTERs, no batch copy: SQLite (3.35+) adds and drops columns in place, and a table
    # copy would trip the foreign keys of the rows that reference these tables.
    op.add_column("campaigns", sa.Column("secrets", sa.Text, nullable=False, server_default=""))
    if conn.dialect.name == "postgresql":  # SQLite does not enforce a VARCHAR's length
        op.alter_column("webhook_subscriptions", "secret", type_=sa.Text)
    for id_, config in campaigns:
        public = {k: v for k, v in config.items() if k not in SECRET_SETTINGS}
        secret = {k: v for k, v in config.items() if k in SECRET_SETTINGS}
        conn.execute(
            _campaigns.update()
            .where(_campaigns.c.id == id_)
            .values(channel_config=public, secrets=encrypt_json(keys, secret))
        )
    for id_, secret in webhooks:
        if not is_encrypted(keys, secret):
            conn.execute(
                _webhooks.update()
                .where(_webhooks.c.id == id_)
                .values(secret=encrypt_text(keys, secret))
            )


def downgrade() -> None:
    """Revert this revision: credentials back into ``channel_config``, webhook secrets in clear."""
    conn = op.get_bind()
    rows: list[Any] = list(
        conn.execute(
            sa.select(_campaigns.c.id, _campaigns.c.channel_config, _campaigns.c.secrets).where(
                _campaigns.c.secrets != ""
            )
        )
    )
    webhooks = list(conn.execute(sa.select(_webhooks.c.id, _webhooks.c.secret)))
    keys = _keys(needed=False) if rows or webhooks else ()
    for id_, config, token in rows:
        merged = {**(config or {}), **decrypt_json(keys, token)}
        conn.execute(
            _campaigns.update().where(_campaigns.c.id == id_).values(channel_config=merged)
        )
    for id_, token in webhooks:
        if is_encrypted(keys, token):
            clear = decrypt_text(keys, token)
            conn.execute(_webhooks.update().where(_webhooks.c.id == id_).values(secret=clear))
    if conn.dialect.name == "postgresql":
        op.alter_column("webhook_subscriptions", "secret", type_=sa.String(200))
    op.drop_column("campaigns", "secrets")
