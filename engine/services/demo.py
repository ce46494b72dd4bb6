"""A ready-made organization, audience and two-step campaign (demo, benchmarks, smoke tests)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from engine.audience.contacts import add_contacts, count_contacts, demo_contacts
from engine.campaigns.campaign import TouchpointSpec, create_campaign, get_or_create_organization
from engine.models import Campaign
from engine.outbound import OutboundPolicy


def seed_demo(
    session: Session,
    contacts: int,
    channel: str = "log",
    channel_config: dict[str, Any] | None = None,
    organization: str = "demo",
    step_delay_s: float = 1.0,
    outbound: OutboundPolicy | None = None,
) -> Campaign:
    """Make sure ``organization`` has ``contacts`` contacts and create a two-message campaign.

    The second message reaches each contact ``step_delay_s`` seconds after the first.
    ``outbound`` says which internal networks its webhook URL may name (default: the process's).
    """
    org = get_or_create_organization(session, organization)
    have = count_contacts(session, org.id)
    if have < contacts:
        add_contacts(session, org.id, demo_contacts(contacts - have, start=have))
    return create_campaign(
        session,
        org.id,
        name="Welcome series",
        channel=channel,
        channel_config=channel_config,
        outbound=outbound,
        touchpoints=[
            TouchpointSpec(
                name="Welcome", message={"text": "Hi {{ first_name }}, welcome aboard!"}
            ),
            TouchpointSpec(
                name="Follow-up",
                message={"text": "{{ first_name }}, your {{ plan }} plan is ready."},
                delay_s=step_delay_s,
            ),
        ],
    )
