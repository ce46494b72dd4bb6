"""Whole campaigns over email, telegram and whatsapp, against providers on loopback.

Credentials come from the organization's channel account (stored encrypted); contacts are
personalised; what the provider refuses is counted by error code; a user who blocked the bot
is never targeted on telegram again.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.audience.contacts import add_contacts
from engine.audience.targeting import campaign_audience_count
from engine.campaigns.campaign import (
    TouchpointSpec,
    create_campaign,
    get_campaign,
    get_or_create_organization,
)
from engine.db import session_scope
from engine.execution.progress import get_progress
from engine.integrations.channel_accounts import create_account
from engine.models import ChannelBlock, Delivery
from engine.runtime import Runtime
from engine.testing import wait_until_finished
from tests.factories import execute
from tests.providers import FakeTelegram, FakeWhatsApp
from tests.smtp_server import SmtpSink
from workers.embedded import EmbeddedStack

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def _campaign(
    rt: Runtime,
    channel: str,
    account: dict[str, Any],
    contacts: list[dict[str, Any]],
    message: Any,
) -> tuple[str, str]:
    with session_scope(rt.engine) as session:
        org = get_or_create_organization(session, "acme")
        create_account(session, rt.settings.secret_key, org.id, channel, account)
        add_contacts(session, org.id, contacts)
        campaign = create_campaign(
            session, org.id, f"{channel} test", channel, [TouchpointSpec(message=message)]
        )
        return org.id, campaign.id


def _run(rt: Runtime, campaign_id: str) -> dict[str, Any]:
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=2):
        wait_until_finished(rt, execution_id)
    with session_scope(rt.engine) as session:
        return get_progress(session, execution_id)


def test_an_email_campaign_reaches_each_inbox_personalised(rt: Runtime) -> None:
    people = [
        {"email": f"reader{i}@example.com", "name": f"Reader {i}", "fields": {"plan": "pro"}}
        for i in range(25)
    ] + [{"email": "unknown@example.com", "name": "Nobody", "fields": {"plan": "free"}}]

    def refuse_unknown(address: str, tries: int) -> str | None:
        return "550 5.1.1 user unknown" if address.startswith("unknown@") else None

    with SmtpSink(rcpt=refuse_unknown) as smtp:
        message = {"subject": "Hi {{ name }}", "text": "Your plan: {{ plan }}"}
        _, campaign_id = _campaign(rt, "email", smtp.config(), people, message)
        progress = _run(rt, campaign_id)

    assert progress.successful == 25 and progress.failed == 1
    assert [e.code for e in progress.errors] == ["INVALID_RECIPIENT"]
    inbox = {r.rcpt_tos[0]: r.message for r in smtp.received}
    assert inbox["reader3@example.com"]["Subject"] == "Hi Reader 3"
    assert inbox["reader3@example.com"].get_content().strip() == "Your plan: pro"


def test_a_telegram_campaign_blocks_those_who_blocked_the_bot(rt: Runtime) -> None:
    people = [
        {"name": f"Chat {i}", "fields": {"telegram_chat_id": str(1000 + i)}} for i in range(20)
    ]
    with FakeTelegram(TOKEN, blocked={"1007"}) as telegram:
        account = {"bot_token": TOKEN, "base_url": telegram.base_url}
        _, campaign_id = _campaign(rt, "telegram", account, people, "Hi {{ name }}")
        progress = _run(rt, campaign_id)

    assert progress.successful == 19
    assert [(e.code, e.count) for e in progress.errors] == [("USER_BLOCKED", 1)]
    texts = {r.body["chat_id"]: r.body["text"] for r in telegram.requests}
    assert texts["1003"] == "Hi Chat 3"
    assert all(TOKEN not in str(r.body) for r in telegram.requests)
    with session_scope(rt.engine) as session:
        blocked = session.scalars(sa.select(ChannelBlock.channel)).all()
        assert blocked == ["telegram"]
        # The next telegram campaign leaves the blocked chat out.
        assert campaign_audience_count(session, get_campaign(session, campaign_id)) == 19


def test_a_whatsapp_template_campaign_counts_undeliverable_numbers(rt: Runtime) -> None:
    people = [{"phone": f"+1555010{i:04d}", "name": f"P{i}"} for i in range(12)]
    with FakeWhatsApp("EAAG-token", "1098765", undeliverable={"15550100005"}) as whatsapp:
        account = {
            "access_token": "EAAG-token",
            "phone_number_id": "1098765",
            "base_url": whatsapp.base_url,
        }
        message = {"template": {"name": "hello_world", "language": "en_US"}}
        _, campaign_id = _campaign(rt, "whatsapp", account, people, message)
        progress = _run(rt, campaign_id)

    assert progress.successful == 11
    assert [e.code for e in progress.errors] == ["INVALID_RECIPIENT"]
    with session_scope(rt.engine) as session:
        ids = session.scalars(
            sa.select(Delivery.provider_message_id).where(Delivery.status == "sent")
        ).all()
    assert len(ids) == 11 and all(i for i in ids)
