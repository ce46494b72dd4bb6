"""Small builders for test data: an organization with contacts and a campaign."""

from __future__ import annotations

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
