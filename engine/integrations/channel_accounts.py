"""Provider credentials per organization: stored encrypted, merged into campaigns at send time.

A campaign on a provider channel (email, telegram, whatsapp, webhook) uses the organization's
account for that channel named by ``channel_config.account`` — or, when it names none, the
account called ``default`` or the only one. The campaign's own ``channel_config`` overrides the
account's settings key by key (a per-campaign ``from_name``, ``rate_per_s`` …) — except where
the account's secrets are sent (:data:`ENDPOINT_SETTINGS`): a campaign may not redirect an
account's token or password to a server of its choosing (``ENDPOINT_OVERRIDE``), nor may an
account update move them without re-entering them (``SECRETS_REQUIRED``).
Secrets (:data:`SECRET_SETTINGS`) are encrypted with ``SECRET_KEY`` (engine/secrets.py) and
never returned by the API or written to logs — an account's, and those a campaign puts in its
own ``channel_config`` (kept apart in ``Campaign.secrets``: :func:`store_campaign_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.channels import validate_channel
from engine.db import get_owned
from engine.errors import Conflict, ValidationFailed
from engine.models import Campaign, ChannelAccount
from engine.models.base import utcnow
from engine.outbound import OutboundPolicy
from engine.secrets import SecretKeys, decrypt_json, encrypt_json

#: Settings that are credentials: encrypted at rest, never shown.
SECRET_SETTINGS = frozenset(
    {"password", "bot_token", "access_token", "secret", "token", "api_key", "app_secret"}
    # Checking provider callbacks (docs/engagement.md): WhatsApp's webhook verify token, and
    # the key of the signed generic status callback.
    | {"verify_token", "callback_secret"}
)
#: Settings that say where (and how safely) secrets are sent: a campaign may not override them
#: on an account with secrets, and changing them on an account needs its secrets re-entered.
ENDPOINT_SETTINGS = frozenset(
    {"base_url", "url", "host", "port", "security", "tls_verify", "tls_ca_file"}
    | {"phone_number_id", "api_version"}
)
#: Key of ``channel_config`` naming the account to use.
ACCOUNT_KEY = "account"


def _split(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    public = {k: v for k, v in config.items() if k not in SECRET_SETTINGS}
    secret = {k: v for k, v in config.items() if k in SECRET_SETTINGS}
    return public, secret


def store_campaign_config(
    campaign: Campaign, config: dict[str, Any], secret_key: SecretKeys | None
) -> None:
    """Set a campaign's ``channel_config``: its settings in clear, its secrets encrypted.

    Raises:
        ValueError: the config has secrets and no key was given to encrypt them (a caller's
            mistake: a secret is never stored in clear).
    """
    public, secret = _split(config)
    if secret and secret_key is None:
        raise ValueError("a channel_config with secrets needs SECRET_KEY to store them")
    campaign.channel_config = public
    campaign.secrets = encrypt_json(secret_key, secret) if secret and secret_key else ""


def campaign_secrets(secret_key: SecretKeys, campaign: Campaign) -> dict[str, Any]:
    """The secrets of a campaign's own ``channel_config``, decrypted (``{}`` when none).

    Raises:
        ValidationFailed: ``CREDENTIALS_UNREADABLE`` (no key of these encrypted them).
    """
    return decrypt_json(secret_key, campaign.secrets) if campaign.secrets else {}


def kept_campaign_secrets(
    secret_key: SecretKeys, campaign: Campaign, channel: str, config: dict[str, Any]
) -> dict[str, Any]:
    """The stored secrets a campaign update keeps: all of them when ``config`` gives none and
    sends to the same channel and endpoint (a client that PUTs back what GET showed, which
    never has secrets), else none — stored secrets never follow a new endpoint.
    """
    if not campaign.secrets or channel != campaign.channel or SECRET_SETTINGS & config.keys():
        return {}
    if any(config.get(k) != campaign.channel_config.get(k) for k in ENDPOINT_SETTINGS):
        return {}
    return campaign_secrets(secret_key, campaign)


def create_account(
    session: Session,
    secret_key: SecretKeys,
    organization_id: str,
    channel: str,
    config: dict[str, Any],
    name: str = "default",
    *,
    policy: OutboundPolicy | None = None,
) -> ChannelAccount:
    """Store credentials for ``channel`` (checked as the channel would use them).

    ``policy`` says which internal networks its URLs and hosts may name (default: this
    process's ``OUTBOUND_ALLOWED_NETWORKS``).

    Raises:
        ValidationFailed: unknown channel or a config the channel refuses
            (``OUTBOUND_TARGET_REFUSED`` for an internal address).
        Conflict: the organization has an account of that name on that channel.
    """
    if not 0 < len(name) <= 100:
        raise ValidationFailed("an account name has 1 to 100 characters", code="INVALID_NAME")
    validate_channel(channel, config, policy=policy)
    taken = session.exec(
        select(ChannelAccount.id).where(
            col(ChannelAccount.organization_id) == organization_id,
            col(ChannelAccount.channel) == channel,
            col(ChannelAccount.name) == name,
        )
    ).first()
    if taken is not None:
        raise Conflict(f"a {channel} account named {name!r} exists", code="ACCOUNT_EXISTS")
    public, secret = _split(config)
    account = ChannelAccount(
        organization_id=organization_id,
        channel=channel,
        name=name,
        settings=public,
        secrets=encrypt_json(secret_key, secret),
        secret_names=sorted(secret),
    )
    session.add(account)
    session.flush()
    return account


def get_account(session: Session, organization_id: str, account_id: str) -> ChannelAccount:
    """One account of the organization.

    Raises:
        NotFound: ``ACCOUNT_NOT_FOUND``.
    """
    return get_owned(
        session,
        ChannelAccount,
        account_id,
        organization_id,
        what="channel account",
        code="ACCOUNT_NOT_FOUND",
    )


def list_accounts(session: Session, organization_id: str) -> list[ChannelAccount]:
    """The organization's accounts, by channel and name."""
    return list(
        session.exec(
            select(ChannelAccount)
            .where(col(ChannelAccount.organization_id) == organization_id)
            .order_by(col(ChannelAccount.channel), col(ChannelAccount.name))
        )
    )


def update_account(
    session: Session,
    secret_key: SecretKeys,
    organization_id: str,
    account_id: str,
    config: dict[str, Any],
    *,
    policy: OutboundPolicy | None = None,
) -> ChannelAccount:
    """Change settings: given keys replace stored ones (``null`` removes a key).

    ``policy`` is as for :func:`create_account`.

    Changing where the secrets are sent (:data:`ENDPOINT_SETTINGS`) needs every secret the
    account keeps given again in the same call: stored secrets never follow a new endpoint.

    Raises:
        NotFound: no such account. ValidationFailed: the resulting config is refused, or
            ``SECRETS_REQUIRED`` (an endpoint changes and a kept secret is not re-entered).
    """
    account = get_account(session, organization_id, account_id)
    merged = {**account.settings, **decrypt_json(secret_key, account.secrets), **config}
    merged = {k: v for k, v in merged.items() if v is not None}
    _check_secrets_reentered(account, config, merged)
    validate_channel(account.channel, merged, policy=policy)
    public, secret = _split(merged)
    account.settings, account.secret_names = public, sorted(secret)
    account.secrets = encrypt_json(secret_key, secret)
    account.updated_at = utcnow()
    session.flush()
    return account


def _check_secrets_reentered(
    account: ChannelAccount, config: dict[str, Any], merged: dict[str, Any]
) -> None:
    """Refuse an endpoint change that would send stored secrets somewhere new.

    Raises:
        ValidationFailed: ``SECRETS_REQUIRED`` naming the endpoint keys and missing secrets.
    """
    moved = sorted(
        k
        for k in ENDPOINT_SETTINGS & config.keys()
        if config[k] is not None and config[k] != account.settings.get(k)
    )
    kept = {k for k in merged if k in SECRET_SETTINGS}
    missing = sorted(k for k in kept if config.get(k) is None)
    if moved and missing:
        raise ValidationFailed(
            f"changing {', '.join(moved)} sends this account's secrets elsewhere: give "
            f"{', '.join(missing)} again in the same request (or remove them with null)",
            code="SECRETS_REQUIRED",
        )


def delete_account(session: Session, organization_id: str, account_id: str) -> None:
    """Delete an account (campaigns using it then fail validation).

    Raises:
        NotFound: no such account.
    """
    session.execute(
        sa.delete(ChannelAccount).where(
            col(ChannelAccount.id) == get_account(session, organization_id, account_id).id
        )
    )


def _account_for(session: Session, campaign: Campaign) -> ChannelAccount | None:
    """The account a campaign sends through, or ``None`` when it names none and has none.

    Raises:
        ValidationFailed: ``ACCOUNT_NOT_FOUND`` for an account named but missing.
    """
    wanted = campaign.channel_config.get(ACCOUNT_KEY)
    found = _find_account(session, campaign.organization_id, campaign.channel, wanted)
    if found is None and wanted is not None:
        raise ValidationFailed(
            f"no {campaign.channel} account {wanted!r} in this organization",
            code="ACCOUNT_NOT_FOUND",
        )
    return found


def _find_account(
    session: Session, organization_id: str, channel: str, wanted: Any
) -> ChannelAccount | None:
    """The account named ``wanted`` (name or id); without a name the ``default`` or only one."""
    accounts = list(
        session.exec(
            select(ChannelAccount).where(
                col(ChannelAccount.organization_id) == organization_id,
                col(ChannelAccount.channel) == channel,
            )
        )
    )
    if wanted is not None:
        return next((a for a in accounts if wanted in (a.name, a.id)), None)
    default = next((a for a in accounts if a.name == "default"), None)
    return default or (accounts[0] if len(accounts) == 1 else None)


def _check_endpoint(account: ChannelAccount | None, config: dict[str, Any]) -> None:
    """Refuse a campaign config that would send the account's secrets to another endpoint.

    Raises:
        ValidationFailed: ``ENDPOINT_OVERRIDE`` naming the keys.
    """
    if account is None or not account.secret_names:
        return
    overridden = sorted(ENDPOINT_SETTINGS & config.keys())
    if overridden:
        raise ValidationFailed(
            f"channel_config may not set {', '.join(overridden)}: the {account.channel} account "
            f"{account.name!r} supplies credentials, which are sent only to its own endpoint "
            "(change the account, or use an account of your own)",
            code="ENDPOINT_OVERRIDE",
        )


def _has_account(session: Session, organization_id: str, channel: str) -> bool:
    found = session.exec(
        select(ChannelAccount.id).where(
            col(ChannelAccount.organization_id) == organization_id,
            col(ChannelAccount.channel) == channel,
        )
    ).first()
    return found is not None


def check_campaign_channel(
    session: Session,
    organization_id: str,
    channel: str,
    config: dict[str, Any],
    *,
    policy: OutboundPolicy | None = None,
) -> None:
    """Check a campaign's channel and ``channel_config`` when it is stored.

    A draft may be incomplete (the SDK reference creates ``{"name", "channel_type": "whatsapp"}``):
    credentials can come later, from an account or a config update. So the channel checks the
    config now only when the campaign gives one and the organization has no account to complete
    it; otherwise the whole is checked at validate and execute (:func:`check_credentials`).

    Raises:
        ValidationFailed: unknown channel, or a config the channel refuses;
            ``ENDPOINT_OVERRIDE`` when it sets an endpoint of an account with secrets.
    """
    account = config.get(ACCOUNT_KEY)
    if account is not None and not (isinstance(account, str) and 0 < len(account) <= 100):
        raise ValidationFailed(
            "channel_config.account names an account (1 to 100 characters)",
            code="INVALID_CHANNEL_CONFIG",
        )
    _check_endpoint(_find_account(session, organization_id, channel, account), config)
    given = any(k != ACCOUNT_KEY for k in config)
    complete = given and account is None and not _has_account(session, organization_id, channel)
    validate_channel(channel, config, check_config=complete, policy=policy)


def channel_config(session: Session, secret_key: SecretKeys, campaign: Campaign) -> dict[str, Any]:
    """The configuration a campaign's channel sends with: its account's settings and secrets,
    overridden by the campaign's ``channel_config`` — never where the account's secrets go
    (:data:`ENDPOINT_SETTINGS` of an account with secrets stay the account's).

    Raises:
        ValidationFailed: a named account is missing, or its secrets can't be decrypted.
    """
    own = {k: v for k, v in campaign.channel_config.items() if k != ACCOUNT_KEY}
    own |= campaign_secrets(secret_key, campaign)
    account = _account_for(session, campaign)
    if account is None:
        return own
    if account.secret_names:
        own = {k: v for k, v in own.items() if k not in ENDPOINT_SETTINGS}
    return {**account.settings, **decrypt_json(secret_key, account.secrets), **own}


def send_rate(
    session: Session, campaign: Campaign, default_rates: Mapping[str, float]
) -> float | None:
    """Messages per second the campaign sends at: its own ``rate_per_s``, else its account's,
    else the channel's default (``RATE_LIMITS``); ``None`` when unlimited.

    The one definition: the workers' limiter, chunk sizes and the ETA all use it.
    """
    own = campaign.channel_config.get("rate_per_s")
    if own:
        return float(own)
    account = _account_for(session, campaign)
    if account is not None and account.settings.get("rate_per_s"):
        return float(account.settings["rate_per_s"])
    default = default_rates.get(campaign.channel)
    return float(default) if default else None


def check_credentials(session: Session, secret_key: SecretKeys, campaign: Campaign) -> None:
    """Refuse to execute a campaign whose channel lacks what it needs to send.

    Raises:
        ValidationFailed: ``MISSING_CREDENTIALS`` naming what the channel said is missing;
            ``ENDPOINT_OVERRIDE`` when the campaign sets an endpoint of an account with secrets.
    """
    _check_endpoint(_account_for(session, campaign), campaign.channel_config)
    try:
        validate_channel(campaign.channel, channel_config(session, secret_key, campaign))
    except ValidationFailed as exc:
        if exc.code != "INVALID_CHANNEL_CONFIG":
            raise
        raise ValidationFailed(
            f"{exc.message} — add a {campaign.channel} account (POST /api/v1/channels) or "
            "set it in the campaign's channel_config",
            code="MISSING_CREDENTIALS",
        ) from exc
