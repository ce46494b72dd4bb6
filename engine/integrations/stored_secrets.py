"""Moving every stored credential to the current ``SECRET_KEY`` (the end of a key rotation).

Channel accounts' secrets, the credentials of campaigns' own ``channel_config`` and lifecycle
webhook secrets are decrypted with any of ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` and
encrypted again with ``SECRET_KEY``; afterwards the fallbacks are no longer needed to read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from engine.errors import ValidationFailed
from engine.logging import get_logger
from engine.models import Campaign, ChannelAccount, WebhookSubscription
from engine.secrets import SecretKeys, reencrypt

log = get_logger()


@dataclass
class Reencrypted:
    """What :func:`reencrypt_stored` did: counts by kind, and what no key could read."""

    accounts: int = 0
    campaigns: int = 0
    webhooks: int = 0
    #: Ids of rows none of the keys decrypts (``CREDENTIALS_UNREADABLE``): left as they are.
    unreadable: list[str] = field(default_factory=list)


def reencrypt_stored(session: Session, secret_key: SecretKeys) -> Reencrypted:
    """Encrypt every stored credential again under the first of ``secret_key``, in the caller's
    transaction; rows none of the keys can read are listed and left unchanged."""
    done = Reencrypted()

    def again(row_id: str, token: str) -> str | None:
        try:
            return reencrypt(secret_key, token)
        except ValidationFailed:
            log.warning("secrets.unreadable", row_id=row_id)
            done.unreadable.append(row_id)
            return None

    for account in session.exec(select(ChannelAccount).where(col(ChannelAccount.secrets) != "")):
        if (token := again(account.id, account.secrets)) is not None:
            account.secrets, done.accounts = token, done.accounts + 1
    for campaign in session.exec(select(Campaign).where(col(Campaign.secrets) != "")):
        if (token := again(campaign.id, campaign.secrets)) is not None:
            campaign.secrets, done.campaigns = token, done.campaigns + 1
    for hook in session.exec(select(WebhookSubscription)):
        if (token := again(hook.id, hook.secret)) is not None:
            hook.secret, done.webhooks = token, done.webhooks + 1
    session.flush()
    log.info(
        "secrets.reencrypted",
        accounts=done.accounts,
        campaigns=done.campaigns,
        webhooks=done.webhooks,
        unreadable=len(done.unreadable),
    )
    return done
