"""Bad input: a clear error naming the problem, and nothing written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.audience.contacts import add_contacts, demo_contacts
from engine.campaigns.campaign import TouchpointSpec, create_campaign, get_or_create_organization
from engine.db import session_scope
from engine.errors import NotFound, ValidationFailed
from engine.execution.runs import start_execution
from engine.models import Campaign, Execution
from engine.runtime import Runtime
from tests.factories import make_campaign


def _count(rt: Runtime, model: type) -> int:
    with session_scope(rt.engine) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def _org(rt: Runtime) -> str:
    with session_scope(rt.engine) as session:
        return get_or_create_organization(session, "acme").id


@pytest.mark.parametrize(
    ("channel", "config", "steps", "code"),
    [
        ("carrier-pigeon", {}, [TouchpointSpec(message="hi")], "UNKNOWN_CHANNEL"),
        ("webhook", {"url": "ftp://x"}, [TouchpointSpec(message="hi")], "INVALID_CHANNEL_CONFIG"),
        ("log", {}, [TouchpointSpec(message=None)], "MISSING_MESSAGE"),
        ("log", {}, [TouchpointSpec(message="Hi {{ name ")], "TEMPLATE_ERROR"),
        ("log", {}, [TouchpointSpec(message="hi", type="sms")], "INVALID_TOUCHPOINT"),
        ("log", {}, [TouchpointSpec(message="hi", delay_s=float("nan"))], "INVALID_TOUCHPOINT"),
        ("log", {}, [TouchpointSpec(message="hi", delay_s=1e12)], "INVALID_TOUCHPOINT"),
        ("log", {}, [TouchpointSpec(message="hi", name="n" * 201)], "INVALID_FIELD"),
        ("log", {"rate_per_s": "fast"}, [TouchpointSpec(message="hi")], "INVALID_CHANNEL_CONFIG"),
        ("log", {"rate_per_s": -5}, [TouchpointSpec(message="hi")], "INVALID_CHANNEL_CONFIG"),
    ],
)
def test_invalid_campaign_is_refused_and_nothing_is_written(
    rt: Runtime, channel: str, config: dict[str, str], steps: list[TouchpointSpec], code: str
) -> None:
    org_id = _org(rt)
    with pytest.raises(ValidationFailed) as err, session_scope(rt.engine) as session:
        create_campaign(session, org_id, "bad", channel, steps, channel_config=config)
    assert err.value.code == code
    assert _count(rt, Campaign) == 0


def test_a_draft_without_credentials_is_kept_but_cannot_execute(rt: Runtime) -> None:
    org_id = _org(rt)
    with session_scope(rt.engine) as session:
        add_contacts(session, org_id, demo_contacts(3))
        campaign = create_campaign(session, org_id, "d", "webhook", [TouchpointSpec(message="hi")])
    with pytest.raises(ValidationFailed) as err, session_scope(rt.engine) as session:
        start_execution(session, campaign.id, secret_key=rt.settings.secret_key)
    assert err.value.code == "MISSING_CREDENTIALS" and "url" in err.value.message
    assert _count(rt, Execution) == 0


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_campaign_names_must_fit(rt: Runtime, name: str) -> None:
    org_id = _org(rt)
    with pytest.raises(ValidationFailed) as err, session_scope(rt.engine) as session:
        create_campaign(session, org_id, name, "log", [TouchpointSpec(message="hi")])
    assert err.value.code == "INVALID_FIELD"
    assert _count(rt, Campaign) == 0


def test_executing_a_missing_campaign_names_it(rt: Runtime) -> None:
    with pytest.raises(NotFound, match="cmp_nope") as err, session_scope(rt.engine) as session:
        start_execution(session, "cmp_nope", secret_key=rt.settings.secret_key)
    assert err.value.code == "CAMPAIGN_NOT_FOUND"
    assert _count(rt, Execution) == 0


def test_campaign_without_touchpoints_cannot_execute(rt: Runtime) -> None:
    _, campaign_id = make_campaign(rt, contacts=5, steps=[TouchpointSpec(type="wait", delay_s=5)])
    with pytest.raises(ValidationFailed) as err, session_scope(rt.engine) as session:
        start_execution(session, campaign_id, secret_key=rt.settings.secret_key)
    assert err.value.code == "NO_TOUCHPOINTS"
    assert _count(rt, Execution) == 0


def test_campaign_without_audience_cannot_execute(rt: Runtime) -> None:
    _, campaign_id = make_campaign(rt, contacts=0)
    with pytest.raises(ValidationFailed) as err, session_scope(rt.engine) as session:
        start_execution(session, campaign_id, secret_key=rt.settings.secret_key)
    assert err.value.code == "NO_AUDIENCE"
    assert _count(rt, Execution) == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [("priority", "urgent"), ("target_percentage", 0), ("target_percentage", 101)],
)
def test_bad_execute_options_are_refused(rt: Runtime, option: str, value: object) -> None:
    _, campaign_id = make_campaign(rt, contacts=5)
    with pytest.raises(ValidationFailed), session_scope(rt.engine) as session:
        start_execution(session, campaign_id, secret_key=rt.settings.secret_key, **{option: value})
    assert _count(rt, Execution) == 0
