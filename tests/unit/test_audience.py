"""Campaign audiences: who a ``targetAudience`` selects, and who an execution really messages.

Runs on SQLite and PostgreSQL (``db_url``); the end-to-end cases run real workers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.audience.audience_spec import parse_audience
from engine.audience.contact_import import import_contacts
from engine.audience.contacts import create_contact
from engine.audience.lists import create_list
from engine.audience.segments import create_segment
from engine.audience.subscriptions import resubscribe, suppress, unsubscribe
from engine.audience.targeting import (
    campaign_audience_count,
    campaign_audience_counts,
    count_audience,
)
from engine.campaigns.campaign import create_campaign, get_or_create_organization
from engine.campaigns.statistics import campaign_statistics
from engine.db import session_scope
from engine.errors import ValidationFailed
from engine.execution.planning import plan_execution
from engine.execution.runs import start_execution
from engine.models import Campaign, ContactList, Delivery, Execution, ExecutionStatus
from engine.models.base import utcnow
from engine.runtime import Runtime
from engine.testing import wait_until_finished
from tests.factories import execute, make_campaign
from workers.embedded import EmbeddedStack

PEOPLE: list[dict[str, Any]] = [
    {"email": "ana@example.com", "name": "Ana", "fields": {"location": "US", "age": "30"}},
    {"email": "bo@example.com", "name": "Bo", "fields": {"location": "CA", "age": "17"}},
    {"email": "cy@example.com", "name": "Cy", "fields": {"location": "BR", "age": "45"}},
    {"phone": "+15550100", "name": "Di", "fields": {"location": "US"}, "tags": ["vip"]},
    {"email": "ed@example.com", "name": "Ed", "fields": {"age": "50"}, "tags": ["vip"]},
]


@pytest.fixture
def org(rt: Runtime) -> dict[str, Any]:
    """An organization with two lists: "main" holds PEOPLE, "other" holds Ana again."""
    with session_scope(rt.engine) as session:
        org_id = get_or_create_organization(session, "acme").id
        main = create_list(session, org_id, "main")
        other = create_list(session, org_id, "other")
        ids = {}
        for person in PEOPLE:
            contact = create_contact(session, org_id, {**person, "list_id": main.id})
            ids[person["name"]] = contact.id
        create_contact(session, org_id, {"email": "ANA@example.com", "list_id": other.id})
        return {"id": org_id, "main": main.id, "other": other.id, "ids": ids}


def _count(rt: Runtime, org_id: str, target: dict[str, Any] | None) -> int:
    with session_scope(rt.engine) as session:
        return count_audience(session, org_id, parse_audience(target), utcnow())


def _make_fields_typed(rt: Runtime, org_id: str) -> None:
    with session_scope(rt.engine) as session:
        session.execute(
            sa.text(
                "UPDATE contact_fields SET type = 'number'"
                " WHERE organization_id = :o AND name = 'age'"
            ),
            {"o": org_id},
        )


def test_no_target_means_every_person_once(rt: Runtime, org: dict[str, Any]) -> None:
    # Ana is in both lists with the same email: one person, one message.
    assert _count(rt, org["id"], None) == 5
    assert _count(rt, org["id"], {"lists": [org["other"]]}) == 1


def test_each_part_narrows_and_parts_combine_with_and(rt: Runtime, org: dict[str, Any]) -> None:
    _make_fields_typed(rt, org["id"])
    assert _count(rt, org["id"], {"tags": ["vip"]}) == 2
    assert _count(rt, org["id"], {"filters": {"location": ["US", "CA"]}}) == 3
    assert _count(rt, org["id"], {"filters": {"ageRange": [18, 45]}}) == 2  # Ana 30, Cy 45
    assert _count(rt, org["id"], {"filters": {"ageRange": [None, 20]}}) == 1  # Bo
    assert _count(rt, org["id"], {"filters": {"location": True}}) == 4
    # Conditions hold per contact: Ana's listing in "other" has no location either.
    assert _count(rt, org["id"], {"filters": {"location": False}}) == 2  # Ed, Ana (other)
    assert _count(rt, org["id"], {"filters": {"location": "US"}}) == 2
    assert _count(rt, org["id"], {"tags": ["vip"], "filters": {"location": "US"}}) == 1
    condition = {"relation": "or", "items": [{"field_name": "Name", "op": "==", "value": "Bo"}]}
    assert _count(rt, org["id"], {"condition": condition}) == 1


def test_segments_are_named_conditions_and_any_of_them_matches(
    rt: Runtime, org: dict[str, Any]
) -> None:
    with session_scope(rt.engine) as session:
        canada = create_segment(
            session,
            org["id"],
            "Canada",
            {"relation": "and", "items": [{"field_name": "location", "op": "==", "value": "CA"}]},
        ).id
        brazil = create_segment(
            session,
            org["id"],
            "Brazil",
            {"relation": "and", "items": [{"field_name": "location", "op": "==", "value": "BR"}]},
        ).id
    assert _count(rt, org["id"], {"segments": [canada]}) == 1
    assert _count(rt, org["id"], {"segments": [canada, brazil]}) == 2
    assert _count(rt, org["id"], {"segments": [canada, brazil], "tags": ["vip"]}) == 0


def test_unsubscribed_and_suppressed_people_are_never_counted(
    rt: Runtime, org: dict[str, Any]
) -> None:
    with session_scope(rt.engine) as session:
        unsubscribe(session, org["id"], org["ids"]["Bo"])
        suppress(session, org["id"], ["+1 555 0100"], reason="complaint")  # Di, by phone
        suppress(session, org["id"], ["ED@Example.com"])
    assert _count(rt, org["id"], None) == 2  # Ana (twice listed) and Cy


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("everyone", "INVALID_AUDIENCE"),
        ({"segment": ["x"]}, "INVALID_AUDIENCE"),
        ({"lists": ["main"]}, "INVALID_AUDIENCE"),
        ({"tags": [""]}, "INVALID_AUDIENCE"),
        ({"filters": {"ageRange": [1, 2, 3]}}, "INVALID_AUDIENCE"),
        ({"filters": {"location": {"in": "US"}}}, "INVALID_AUDIENCE"),
        ({"filters": {"location": []}}, "INVALID_AUDIENCE"),
        ({"condition": "Name == Bo"}, "INVALID_AUDIENCE"),
    ],
)
def test_a_malformed_target_audience_is_refused_when_stored(
    rt: Runtime, org: dict[str, Any], target: Any, code: str
) -> None:
    with session_scope(rt.engine) as session, pytest.raises(ValidationFailed) as caught:
        create_campaign(session, org["id"], "bad", "log", [], details={"targetAudience": target})
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ({"segments": ["seg_missing"]}, "SEGMENT_NOT_FOUND"),
        ({"lists": [999_999]}, "LIST_NOT_FOUND"),
        ({"filters": {"shoeSize": "42"}}, "INVALID_CONDITION"),
    ],
)
def test_a_draft_may_name_missing_parts_but_cannot_execute(
    rt: Runtime, org: dict[str, Any], target: dict[str, Any], code: str
) -> None:
    _, campaign_id = make_campaign(rt, contacts=0, audience=target)
    assert _count(rt, org["id"], target) == 0
    with session_scope(rt.engine) as session, pytest.raises(ValidationFailed) as caught:
        start_execution(session, campaign_id, secret_key=rt.settings.secret_key)
    assert caught.value.code == code


def test_an_empty_audience_cannot_execute(rt: Runtime, org: dict[str, Any]) -> None:
    _, campaign_id = make_campaign(rt, contacts=0, audience={"filters": {"location": "JP"}})
    with session_scope(rt.engine) as session, pytest.raises(ValidationFailed) as caught:
        start_execution(session, campaign_id, secret_key=rt.settings.secret_key)
    assert caught.value.code == "NO_AUDIENCE"


def _sent_to(rt: Runtime) -> list[int]:
    lines = Path(rt.settings.log_channel_path).read_text().splitlines()
    return sorted(json.loads(line)["contact_id"] for line in lines)


def test_an_execution_messages_exactly_its_audience(rt: Runtime, org: dict[str, Any]) -> None:
    _, campaign_id = make_campaign(
        rt, contacts=0, steps=None, audience={"filters": {"location": ["US", "CA"]}}
    )
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=2):
        execution = wait_until_finished(rt, execution_id)
    ids = org["ids"]
    expected = sorted([ids["Ana"], ids["Bo"], ids["Di"]])
    assert execution.status == "completed"
    assert execution.total == 6  # 3 people, 2 message steps
    assert sorted(set(_sent_to(rt))) == expected


def test_people_unsubscribed_or_suppressed_after_planning_are_skipped(
    rt: Runtime, org: dict[str, Any]
) -> None:
    """Consent wins over a frozen audience: the worker checks it at send time."""
    _, campaign_id = make_campaign(rt, contacts=0)
    execution_id = execute(rt, campaign_id)
    with session_scope(rt.engine) as session:
        # Plan by hand (as the scheduler's planner would): the five recipients are frozen.
        session.get_one(Execution, execution_id).status = ExecutionStatus.queued
        assert plan_execution(session, execution_id, chunk_size=500)
    with session_scope(rt.engine) as session:
        unsubscribe(session, org["id"], org["ids"]["Bo"])
        suppress(session, org["id"], ["ed@example.com"])
    with EmbeddedStack(rt, threads=2):
        execution = wait_until_finished(rt, execution_id)
    with session_scope(rt.engine) as session:
        outcomes = dict(
            session.execute(
                sa.select(Delivery.contact_id, Delivery.error_code).where(
                    Delivery.execution_id == execution_id
                )
            ).all()
        )
    assert execution.status == "completed"
    assert outcomes[org["ids"]["Bo"]] == "UNSUBSCRIBED"
    assert outcomes[org["ids"]["Ed"]] == "SUPPRESSED"
    assert sum(1 for code in outcomes.values() if code is None) == 3


def test_statistics_break_sends_down_by_targeted_segment(rt: Runtime, org: dict[str, Any]) -> None:
    item = {"field_name": "location", "op": "==", "value": "US"}
    with session_scope(rt.engine) as session:
        us = create_segment(session, org["id"], "US", {"relation": "and", "items": [item]}).id
        vip = create_segment(
            session,
            org["id"],
            "VIP",
            {"relation": "and", "items": [{"field_name": "tag", "op": "==", "value": "vip"}]},
        ).id
    _, campaign_id = make_campaign(rt, contacts=0, audience={"segments": [us, vip]})
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=2):
        wait_until_finished(rt, execution_id)

    with session_scope(rt.engine) as session:
        segments = campaign_statistics(session, campaign_id, metrics="segments").segments
    # Ana and Di are in the US, Di and Ed are VIPs; two message steps each.
    assert [(s.name, s.performance.sent) for s in segments or []] == [("US", 4), ("VIP", 4)]
    assert segments and segments[0].segment_id == us


def test_a_suppressed_phone_matches_however_the_import_wrote_it(
    rt: Runtime, org: dict[str, Any]
) -> None:
    with session_scope(rt.engine) as session:
        imported = create_list(session, org["id"], "imported")
        assert imported.id is not None
        lines = ["phone,name\n", "+1 (555) 123-4567,Fay\n"]
        assert import_contacts(session, org["id"], imported.id, lines).created == 1
    target = {"lists": [imported.id]}
    assert _count(rt, org["id"], target) == 1
    with session_scope(rt.engine) as session:
        suppress(session, org["id"], ["+15551234567"])
    assert _count(rt, org["id"], target) == 0


def test_unsubscribing_leaves_out_the_person_in_every_list(
    rt: Runtime, org: dict[str, Any]
) -> None:
    # Ana is in "main" and "other"; she unsubscribes through her "main" listing.
    with session_scope(rt.engine) as session:
        unsubscribe(session, org["id"], org["ids"]["Ana"])
    assert _count(rt, org["id"], None) == 4
    assert _count(rt, org["id"], {"lists": [org["other"]]}) == 0
    with session_scope(rt.engine) as session:
        resubscribe(session, org["id"], org["ids"]["Ana"])
    assert _count(rt, org["id"], {"lists": [org["other"]]}) == 1


def test_a_private_list_joins_only_audiences_that_name_it(rt: Runtime, org: dict[str, Any]) -> None:
    with session_scope(rt.engine) as session:
        private = ContactList(organization_id=org["id"], name="one action", private=True)
        session.add(private)
        session.flush()
        create_contact(session, org["id"], {"email": "gus@example.com", "list_id": private.id})
        private_id = private.id
    assert _count(rt, org["id"], None) == 5  # Gus is not in the organization-wide audience
    assert _count(rt, org["id"], {"lists": [private_id]}) == 1


def test_an_unreadable_stored_audience_targets_nobody_and_says_why(
    rt: Runtime, org: dict[str, Any]
) -> None:
    _, campaign_id = make_campaign(rt, contacts=0)
    with session_scope(rt.engine) as session:
        # As a version that did not check targetAudience may have stored it.
        campaign = session.get_one(Campaign, campaign_id)
        campaign.details = {"targetAudience": {"segments": ["x"], "estimatedReach": 10}}
    with session_scope(rt.engine) as session:
        campaign = session.get_one(Campaign, campaign_id)
        assert campaign_audience_count(session, campaign) == 0
        assert campaign_audience_counts(session, org["id"], [campaign]) == {campaign_id: 0}
    with session_scope(rt.engine) as session, pytest.raises(ValidationFailed) as caught:
        start_execution(session, campaign_id, secret_key=rt.settings.secret_key)
    assert caught.value.code == "INVALID_AUDIENCE" and "estimatedReach" in caught.value.message
