"""Small builders for test data: an organization with contacts and a campaign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from engine.audience.contacts import add_contacts, demo_contacts
from engine.campaigns.campaign import TouchpointSpec, create_campaign, get_or_create_organization
from engine.db import session_scope
from engine.execution.runs import start_execution
from engine.runtime import Runtime


def make_campaign(
    rt: Runtime,
    contacts: int = 300,
    channel: str = "log",
    channel_config: dict[str, Any] | None = None,
    steps: list[TouchpointSpec] | None = None,
    org: str = "acme",
    audience: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Create an organization with ``contacts`` contacts and a campaign targeting ``audience``.

    Returns:
        (organization id, campaign id).
    """
    steps = steps or [
        TouchpointSpec(name="hello", message={"text": "Hi {{ first_name }}"}),
        TouchpointSpec(name="again", message="Still {{ plan }}?", delay_s=0.3),
    ]
    with session_scope(rt.engine) as session:
        organization = get_or_create_organization(session, org)
        add_contacts(session, organization.id, demo_contacts(contacts))
        campaign = create_campaign(
            session,
            organization.id,
            "test campaign",
            channel,
            steps,
            channel_config=channel_config,
            details={"targetAudience": audience} if audience is not None else None,
            secret_key=rt.settings.verification_keys,
        )
        return organization.id, campaign.id


def execute(rt: Runtime, campaign_id: str, **options: Any) -> str:
    """Start an execution of the campaign now; return its id."""
    with session_scope(rt.engine) as session:
        return start_execution(
            session, campaign_id, secret_key=rt.settings.secret_key, **options
        ).id


def v1_link_token(secret_key: str, kind: str, values: list[Any]) -> str:
    """A link token as version 1 made them (``kind`` ``c``: click, ``u``: unsubscribe):
    ``base64url(JSON) "." base64url(HMAC-SHA256[:16])`` under a key derived from SECRET_KEY.
    Written out here so the tests hold the format of emails already sent fixed."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    key = hmac.digest(secret_key.encode(), b"campaign-engine message links v1", hashlib.sha256)
    payload = b64(json.dumps(values, separators=(",", ":")).encode())
    mac = hmac.digest(key, f"{kind}.{payload}".encode(), hashlib.sha256)[:16]
    return f"{payload}.{b64(mac)}"
