"""Engagement over HTTP: whole campaigns against loopback providers, then what comes back.

WhatsApp statuses arrive on the signed Cloud API webhook; an email's List-Unsubscribe link and
its click-tracking links are followed over the API; conversions are posted by the client; the
campaign's statistics show it all (rates as docs/engagement.md computes them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.audience.contacts import add_contacts
from engine.campaigns.campaign import TouchpointSpec, create_campaign
from engine.db import session_scope
from engine.integrations.channel_accounts import create_account
from engine.models import Contact, Delivery, EngagementEvent
from engine.runtime import Runtime
from engine.testing import wait_until_finished
from tests.api.conftest import Tenant, make_tenant
from tests.factories import execute
from tests.providers import FakeWhatsApp
from tests.smtp_server import SmtpSink
from workers.embedded import EmbeddedStack

APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "my-verify-token"
CALLBACK_SECRET = "relay-callback-secret"
BASE = "http://127.0.0.1:8000"


def _campaign(
    rt: Runtime,
    tenant: Tenant,
    channel: str,
    account: dict[str, Any],
    contacts: list[dict[str, Any]],
    message: Any,
) -> tuple[str, str]:
    """Create the account, contacts and a one-message campaign; run it to the end."""
    with session_scope(rt.engine) as session:
        account_id = create_account(
            session, rt.settings.secret_key, tenant.organization_id, channel, account
        ).id
        add_contacts(session, tenant.organization_id, contacts)
        campaign_id = create_campaign(
            session,
            tenant.organization_id,
            f"{channel} engagement",
            channel,
            [TouchpointSpec(message=message)],
        ).id
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=2):
        wait_until_finished(rt, execution_id)
    return campaign_id, account_id


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _statuses(*items: tuple[str, str, int]) -> bytes:
    statuses = [
        {"id": wamid, "status": status, "timestamp": str(at), "recipient_id": "1555"}
        | (
            {"errors": [{"code": 131026, "title": "Message undeliverable"}]}
            if status == "failed"
            else {}
        )
        for wamid, status, at in items
    ]
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "WABA", "changes": [{"field": "messages", "value": {"statuses": statuses}}]}
        ],
    }
    return json.dumps(payload).encode()


def _events(rt: Runtime) -> int:
    with session_scope(rt.engine) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(EngagementEvent)) or 0)


def _statistics(client: TestClient, tenant: Tenant, campaign_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/campaigns/{campaign_id}/statistics", headers=tenant.headers())
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def test_whatsapp_statuses_and_conversions_make_the_statistics(
    client: TestClient, rt: Runtime
) -> None:
    tenant = make_tenant(client, rt, "wa-shop", contacts=0)
    people = [{"phone": f"+1555010{i:04d}", "name": f"P{i}"} for i in range(4)]
    with FakeWhatsApp("EAAG-token", "1098765") as whatsapp:
        account = {
            "access_token": "EAAG-token",
            "phone_number_id": "1098765",
            "base_url": whatsapp.base_url,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
        }
        message = {"template": {"name": "hello_world", "language": "en_US"}}
        campaign_id, account_id = _campaign(rt, tenant, "whatsapp", account, people, message)
    with session_scope(rt.engine) as session:
        sent = session.execute(
            sa.select(Delivery.contact_id, Delivery.provider_message_id).order_by(
                Delivery.contact_id
            )
        ).all()
    contacts = [c for c, _ in sent]
    wamids = [w for _, w in sent]
    url = f"/api/v1/providers/whatsapp/{account_id}"

    # Verification handshake: the right token echoes the challenge, a wrong one is refused.
    verify = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    answer = client.get(url, params=verify)
    assert answer.status_code == 200 and answer.text == "1158201444"
    assert client.get(url, params={**verify, "hub.verify_token": "guess"}).status_code == 403

    now = int(time.time())
    body = _statuses(
        *((w, "sent", now) for w in wamids),
        *((w, "delivered", now) for w in wamids[:3]),
        (wamids[0], "read", now),
        (wamids[3], "failed", now),
    )
    # A bad or missing signature is refused and stores nothing.
    for headers in ({"X-Hub-Signature-256": _sign("wrong", body)}, {}):
        answer = client.post(url, content=body, headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert _events(rt) == 0

    signed = {"X-Hub-Signature-256": _sign(APP_SECRET, body), "Content-Type": "application/json"}
    answer = client.post(url, content=body, headers=signed)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {
        "recorded": 5,
        "duplicates": 0,
        "ignored": 4,
        "unmatched": 0,
        "pending": 0,
    }
    # Meta retries a webhook it thinks failed: the replay counts nothing twice.
    replay = client.post(url, content=body, headers=signed)
    assert replay.json()["data"]["recorded"] == 0 and replay.json()["data"]["duplicates"] == 5
    assert _events(rt) == 5

    # A status for a message not recorded yet: retry later (503); an old one is dropped.
    for at, status in ((now, 503), (now - 3600, 200)):
        unknown = _statuses(("wamid.unknown", "delivered", at))
        answer = client.post(
            url, content=unknown, headers={"X-Hub-Signature-256": _sign(APP_SECRET, unknown)}
        )
        assert answer.status_code == status, answer.text

    # Conversions posted by the client: one with revenue, the same eventId twice counts once.
    conversion = {"type": "conversion", "contactId": contacts[0], "campaignId": campaign_id}
    first = client.post(
        "/api/v1/events",
        json={**conversion, "value": 49.5, "eventId": "order-1"},
        headers=tenant.headers(),
    )
    assert first.status_code == 201, first.text
    assert first.json()["data"]["attributed"] is True
    again = client.post(
        "/api/v1/events",
        json={**conversion, "value": 49.5, "eventId": "order-1"},
        headers=tenant.headers(),
    )
    assert again.status_code == 200 and again.json()["data"]["id"] == first.json()["data"]["id"]
    second = {**conversion, "value": 10, "occurredAt": "2020-01-01T10:00:00Z"}
    assert client.post("/api/v1/events", json=second, headers=tenant.headers()).status_code == 201

    stats = _statistics(client, tenant, campaign_id)
    assert stats["overview"] == {
        "messagesSent": 4,
        "failed": 0,
        "delivered": 3,
        "read": 1,
        "clicked": 0,
        "converted": 1,
        "revenue": 59.5,
        "undelivered": 1,
        "unsubscribed": 0,
        "contactsReached": 4,
    }
    assert stats["performance"] == {
        "sendSuccessRate": 100.0,
        "deliveryRate": 75.0,
        "readRate": 33.3,
        "clickRate": 0.0,
        "conversionRate": 25.0,
    }
    timeline = {day["date"]: day for day in stats["timeline"]}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert timeline[today]["delivered"] == 3 and timeline[today]["conversions"] == 1
    assert timeline["2020-01-01"]["conversions"] == 1
    # The last 24 hours leave the 2020 conversion out.
    day = client.get(
        f"/api/v1/campaigns/{campaign_id}/statistics?period=24h", headers=tenant.headers()
    ).json()["data"]
    assert day["overview"]["revenue"] == 49.5


def test_conversions_are_refused_with_codes(client: TestClient, rt: Runtime) -> None:
    tenant = make_tenant(client, rt, "refusals", contacts=2)
    other = make_tenant(client, rt, "other", contacts=1)
    with session_scope(rt.engine) as session:
        contact_id = session.scalars(
            sa.select(Contact.id).where(Contact.organization_id == tenant.organization_id)
        ).first()
        foreign_contact = session.scalars(
            sa.select(Contact.id).where(Contact.organization_id == other.organization_id)
        ).first()
        campaign_id = create_campaign(
            session, tenant.organization_id, "c", "null", [TouchpointSpec(message="hi")]
        ).id
    good = {"type": "conversion", "contactId": contact_id, "campaignId": campaign_id}

    def post(body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        chosen = tenant.headers() if headers is None else headers
        return client.post("/api/v1/events", json=body, headers=chosen)

    assert post(good, {}).status_code == 401
    assert (
        post({**good, "contactId": foreign_contact}).json()["error"]["code"] == "CONTACT_NOT_FOUND"
    )
    assert post({**good, "campaignId": "cmp_nope"}).json()["error"]["code"] == "CAMPAIGN_NOT_FOUND"
    assert post(good, other.headers()).status_code == 404
    assert post({**good, "value": -1}).status_code == 422
    assert post({**good, "type": "purchase"}).status_code == 422
    future = post({**good, "occurredAt": "2999-01-01T00:00:00Z"})
    assert future.status_code == 400 and future.json()["error"]["code"] == "INVALID_TIME"
    # Valid, but the campaign never messaged the contact: stored, not credited.
    answer = post(good)
    assert answer.status_code == 201 and answer.json()["data"]["attributed"] is False
    assert _statistics(client, tenant, campaign_id)["overview"]["converted"] == 0


def _path(url: str) -> str:
    assert url.startswith(BASE + "/"), url
    return url[len(BASE) :]


def test_an_email_unsubscribes_in_one_click_and_counts_clicks(
    client: TestClient, rt: Runtime
) -> None:
    tenant = make_tenant(client, rt, "mailer", contacts=0)
    people = [{"email": f"reader{i}@example.com", "name": f"Reader {i}"} for i in range(3)]
    message = {
        "subject": "Sale",
        "html": '<p>Hi {{ name }}, <a href="https://shop.example.com/sale?a=1&amp;b=2">sale</a></p>',
        "text": "Hi {{ name }}, see https://shop.example.com/sale?a=1&b=2.",
    }
    with SmtpSink() as smtp:
        account = {**smtp.config(), "callback_secret": CALLBACK_SECRET}
        campaign_id, account_id = _campaign(rt, tenant, "email", account, people, message)
    inbox = {r.rcpt_tos[0]: r.message for r in smtp.received}
    assert len(inbox) == 3
    first, second = inbox["reader0@example.com"], inbox["reader1@example.com"]

    # Clicks: the HTML and text links are tracking links that redirect to the original URL.
    html = first.get_body(("html",)).get_content()
    link = re.search(r'href="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert link.startswith(f"{BASE}/c/")
    text = first.get_body(("plain",)).get_content()
    assert f"see {BASE}/c/" in text and text.rstrip().endswith(".")
    for _ in range(2):
        answer = client.get(_path(link), follow_redirects=False)
        assert answer.status_code == 302
        assert answer.headers["location"] == "https://shop.example.com/sale?a=1&b=2"
    other_html = second.get_body(("html",)).get_content()
    other_link = re.search(r'href="([^"]+)"', other_html).group(1)  # type: ignore[union-attr]
    assert client.get(_path(other_link), follow_redirects=False).status_code == 302

    # A tampered token never redirects.
    token = _path(link).removeprefix("/c/")
    forged = f"/c/{token[:-2]}{'A' if token[-2] != 'A' else 'B'}{token[-1]}"
    for path in (forged, "/c/not-a-token", f"/c/{token[:-1]}"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 404 and "location" not in answer.headers

    # No receipts yet: the click rate is over the contacts sent to.
    stats = _statistics(client, tenant, campaign_id)
    assert stats["overview"]["clicked"] == 2 and stats["performance"]["clickRate"] == 66.7

    # List-Unsubscribe: GET shows a page, the one-click POST unsubscribes.
    header = first["List-Unsubscribe"]
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = _path(header.strip("<>"))
    page = client.get(unsubscribe)
    assert page.status_code == 200 and '<form method="post"' in page.text
    with session_scope(rt.engine) as session:
        reader = session.scalars(
            sa.select(Contact).where(Contact.email == "reader0@example.com")
        ).one()
        assert reader.unsubscribed_at is None
    answer = client.post(
        unsubscribe,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and "Unsubscribed" in answer.text
    assert client.post(unsubscribe).status_code == 200  # again: nothing new
    with session_scope(rt.engine) as session:
        reader = session.scalars(
            sa.select(Contact).where(Contact.email == "reader0@example.com")
        ).one()
        assert reader.unsubscribed_at is not None
    assert client.post(unsubscribe[:-3] + "xyz").status_code == 404

    # A relay's signed status callback: delivered for the first reader (by Message-ID).
    status = json.dumps([{"message_id": first["Message-ID"].strip("<>"), "status": "delivered"}])
    status_url = f"/api/v1/providers/email/{account_id}/status"
    assert (
        client.post(status_url, content=status, headers={"X-Signature": "sha256=00"}).status_code
        == 401
    )
    signed = {"X-Signature": _sign(CALLBACK_SECRET, status.encode())}
    for _ in range(2):
        answer = client.post(status_url, content=status, headers=signed)
        assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["duplicates"] == 1

    stats = _statistics(client, tenant, campaign_id)
    assert stats["overview"]["delivered"] == 1
    assert stats["overview"]["unsubscribed"] == 1
    # With receipts: clickers over the contacts known to have received (a receipt or a click).
    assert stats["performance"]["deliveryRate"] == 33.3
    assert stats["performance"]["clickRate"] == 100.0


def _account(rt: Runtime, tenant: Tenant, channel: str, config: dict[str, Any], key: str) -> str:
    """An account whose secrets were encrypted with ``key``."""
    with session_scope(rt.engine) as session:
        return create_account(session, key, tenant.organization_id, channel, config).id


def test_an_unknown_id_without_a_reported_time_is_not_retried_forever(
    client: TestClient, rt: Runtime
) -> None:
    tenant = make_tenant(client, rt, "relay", contacts=0)
    config = {"url": "http://127.0.0.1:9/", "callback_secret": CALLBACK_SECRET}
    account_id = _account(rt, tenant, "webhook", config, rt.settings.secret_key)
    url = f"/api/v1/providers/webhook/{account_id}/status"

    def post(status: dict[str, Any]) -> Any:
        body = json.dumps(status).encode()
        return client.post(url, content=body, headers={"X-Signature": _sign(CALLBACK_SECRET, body)})

    now = int(time.time())
    recent = post({"message_id": "m-1", "status": "delivered", "occurred_at": now})
    assert recent.status_code == 503 and recent.json()["error"]["code"] == "NOT_YET_RECORDED"
    for _ in range(2):  # the provider's retries: answered, not stored
        answer = post({"message_id": "m-2", "status": "delivered"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["unmatched"] == 1 and answer.json()["data"]["pending"] == 0
    assert _events(rt) == 0


def test_unreadable_callback_secrets_answer_as_a_bad_signature(
    client: TestClient, rt: Runtime
) -> None:
    tenant = make_tenant(client, rt, "rotated", contacts=0)
    config = {"url": "http://127.0.0.1:9/", "callback_secret": CALLBACK_SECRET}
    account_id = _account(rt, tenant, "webhook", config, "a-previous-secret-key-0123456789")
    body = json.dumps({"message_id": "m-1", "status": "delivered"}).encode()
    answer = client.post(
        f"/api/v1/providers/webhook/{account_id}/status",
        content=body,
        headers={"X-Signature": _sign(CALLBACK_SECRET, body)},
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert "SECRET_KEY" not in answer.text

    whatsapp = {
        "access_token": "EAAG-token",
        "phone_number_id": "1098765",
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
    }
    wa_id = _account(rt, tenant, "whatsapp", whatsapp, "a-previous-secret-key-0123456789")
    url = f"/api/v1/providers/whatsapp/{wa_id}"
    verify = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"}
    assert client.get(url, params=verify).status_code == 403
    statuses = _statuses(("wamid.1", "delivered", int(time.time())))
    signed = client.post(
        url, content=statuses, headers={"X-Hub-Signature-256": _sign(APP_SECRET, statuses)}
    )
    assert signed.status_code == 401 and signed.json()["error"]["code"] == "INVALID_SIGNATURE"


def test_whatsapp_verification_compares_any_token_safely(client: TestClient, rt: Runtime) -> None:
    key = rt.settings.secret_key
    tenant = make_tenant(client, rt, "verify", contacts=0)
    whatsapp = {"access_token": "t", "phone_number_id": "1", "verify_token": VERIFY_TOKEN}
    url = f"/api/v1/providers/whatsapp/{_account(rt, tenant, 'whatsapp', whatsapp, key)}"
    verify = {"hub.mode": "subscribe", "hub.challenge": "42"}
    for guess in ("wrong", "tökén", ""):
        answer = client.get(url, params={**verify, "hub.verify_token": guess})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "VERIFICATION_FAILED"
    assert client.get(url, params=verify).status_code == 403
    assert client.get(url, params={**verify, "hub.verify_token": VERIFY_TOKEN}).text == "42"
