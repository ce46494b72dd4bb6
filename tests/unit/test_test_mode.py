"""Test mode: only the organization's test contacts receive messages, or nobody (a dry run)."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from engine.audience.contacts import create_contact
from engine.audience.recipients import TEST_TAG
from engine.campaigns.campaign import TouchpointSpec, create_campaign, get_or_create_organization
from engine.campaigns.statistics import campaign_statistics
from engine.db import session_scope
from engine.execution.progress import get_progress
from engine.models import Delivery
from engine.runtime import Runtime
from engine.testing import wait_until_finished
from tests.factories import execute
from workers.embedded import EmbeddedStack


def _setup(rt: Runtime, testers: int, message: str = "Hi {{ name }}") -> str:
    with session_scope(rt.engine) as session:
        org = get_or_create_organization(session, "acme")
        for i in range(8):
            tags = [TEST_TAG] if i < testers else []
            fields = {"profile": {"first": f"P{i}"}} if i != 7 else {}
            create_contact(
                session,
                org.id,
                {"email": f"p{i}@example.com", "name": f"P{i}", "tags": tags, "fields": fields},
            )
        steps = [TouchpointSpec(name="hi", message=message)]
        return create_campaign(session, org.id, "t", "log", steps).id


def _run(rt: Runtime, campaign_id: str) -> dict:
    execution_id = execute(rt, campaign_id, test_mode=True)
    with EmbeddedStack(rt, threads=2):
        wait_until_finished(rt, execution_id)
    with session_scope(rt.engine) as session:
        return get_progress(session, execution_id)


def _sent(rt: Runtime) -> list[str]:
    path = Path(rt.settings.log_channel_path)
    lines = path.read_text().splitlines() if path.exists() else []
    return sorted(json.loads(line)["to"]["email"] for line in lines)


def test_only_test_contacts_receive_a_test_send(rt: Runtime) -> None:
    campaign_id = _setup(rt, testers=2)
    progress = _run(rt, campaign_id)

    assert _sent(rt) == ["p0@example.com", "p1@example.com"]
    assert progress.successful == 2 and progress.total == 2
    with session_scope(rt.engine) as session:
        overview = campaign_statistics(session, campaign_id, metrics="overview").overview
    assert overview and overview.messages_sent == 0  # test sends are not statistics


def test_without_test_contacts_messages_are_rendered_but_never_sent(rt: Runtime) -> None:
    campaign_id = _setup(rt, testers=0, message="Hi {{ profile.first }}")
    progress = _run(rt, campaign_id)

    assert _sent(rt) == []
    with session_scope(rt.engine) as session:
        codes = dict(session.execute(sa.select(Delivery.contact_id, Delivery.error_code)).all())
    # Every contact was rendered; the one whose data breaks the template is reported.
    assert sorted(codes.values()) == ["DRY_RUN"] * 7 + ["TEMPLATE_ERROR"]
    assert progress.failed == 1
    assert [e.code for e in progress.errors] == ["TEMPLATE_ERROR"]
