"""Links in a real email, received by an SMTP server on loopback: ``List-Unsubscribe`` read as a
mailbox provider reads it, one-click unsubscribe (RFC 8058) through it, tokens that reveal
nothing, and links of emails sent before (version-1 tokens, a rotated key) that keep working."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import col

from engine.audience.contacts import add_contacts
from engine.campaigns.campaign import TouchpointSpec, create_campaign
from engine.config import Settings
from engine.db import session_scope
from engine.integrations.channel_accounts import create_account
from engine.integrations.links import LinkTokens
from engine.models import Contact, EngagementEvent, Execution, MessageLinks
from engine.runtime import Runtime
from engine.testing import wait_until_finished
from tests.api.conftest import Tenant, make_tenant
from tests.conftest import make_settings
from tests.factories import execute, v1_link_token
from tests.smtp_server import SmtpSink
from workers.embedded import EmbeddedStack

#: A long host: with the readable tokens of before, the header was folded into encoded-words.
BASE = "https://newsletter-links.mail.a-rather-long-company-name.example.com"
KEY, OLD_KEY = "the-secret-key-after-the-rotation", "the-secret-key-before-the-rotation"
MAILBOX = "mailto:unsubscribe@news.example.com?subject=unsubscribe"
SHOP = "https://shop.example.com/sale?a=1&b=2"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """A long public host, and a key rotated from OLD_KEY."""
    return make_settings(
        db_url,
        tmp_path,
        public_base_url=BASE,
        secret_key=KEY,
        secret_key_fallbacks=[OLD_KEY],
    )


def _send(rt: Runtime, tenant: Tenant, smtp: SmtpSink, message: Any) -> dict[str, Any]:
    """Send ``message`` by email to two readers; the ids involved, by name."""
    with session_scope(rt.engine) as session:
        create_account(
            session, KEY, tenant.organization_id, "email", smtp.config(unsubscribe_url=MAILBOX)
        )
        people = [{"email": f"reader{i}@example.com", "name": f"Reader {i}"} for i in range(2)]
        add_contacts(session, tenant.organization_id, people)
        campaign_id = create_campaign(
            session, tenant.organization_id, "news", "email", [TouchpointSpec(message=message)]
        ).id
    execution_id = execute(rt, campaign_id)
    with EmbeddedStack(rt, threads=2):
        wait_until_finished(rt, execution_id)
    with session_scope(rt.engine) as session:
        links = session.scalars(sa.select(MessageLinks)).one()
        contacts = {c.email: c.id for c in session.scalars(sa.select(Contact))}
        return {
            "organization": tenant.organization_id,
            "campaign": campaign_id,
            "execution": execution_id,
            "touchpoint": links.touchpoint_id,
            "contacts": contacts,
        }


def _header_lines(raw: bytes, name: bytes) -> list[bytes]:
    """The lines of header ``name`` as they came over SMTP (with its continuation lines)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(head) if line.lower().startswith(name.lower() + b":"))
    end = start + 1
    while end < len(head) and head[end][:1] in (b" ", b"\t"):
        end += 1
    return head[start:end]


def _reveals(token: str, secrets: list[str]) -> list[str]:
    """The ``secrets`` readable in a token or in what base64 decoding makes of it."""
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("latin-1")
    return [s for s in secrets if s in token or s in decoded]


def _one_click(client: TestClient, path: str) -> Any:
    """What a mailbox provider does for RFC 8058 one-click unsubscribe."""
    return client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def _unsubscribed(rt: Runtime, contact_id: int) -> bool:
    with session_scope(rt.engine) as session:
        return session.get_one(Contact, contact_id).unsubscribed_at is not None


def test_one_click_unsubscribe_works_from_the_email_as_received(
    client: TestClient, rt: Runtime
) -> None:
    tenant = make_tenant(client, rt, "mailer", contacts=0)
    message = {
        "subject": "Sale",
        "html": f'<p><a href="{SHOP.replace("&", "&amp;")}">sale</a> '
        '<a href="https://shop.example.com/me?c={{ id }}">me</a></p>',
    }
    with SmtpSink() as smtp:
        ids = _send(rt, tenant, smtp, message)
    reader = ids["contacts"]["reader0@example.com"]
    raw = next(r.raw for r in smtp.received if r.rcpt_tos == ["reader0@example.com"])

    # On the wire: the https URI whole on the header's first line, the mailbox on the next,
    # no RFC 2047 encoded-word anywhere.
    lines = _header_lines(raw, b"List-Unsubscribe")
    assert not any(b"=?" in line for line in lines), lines
    match = re.fullmatch(rb"List-Unsubscribe: <(https://\S+/u/([A-Za-z0-9_-]+))>,", lines[0])
    assert match is not None, lines
    assert lines[1:] == [f" <{MAILBOX}>".encode()]
    url, token = match.group(1).decode(), match.group(2).decode()
    assert len(token) <= 31 and len(f"https://links.example.com/u/{token}") < 60

    # As a mailbox provider parses it.
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert received["List-Unsubscribe"] == f"<{url}>, <{MAILBOX}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url == f"{BASE}/u/{token}"

    # The tokens reveal no id and no URL, unsubscribe and click ones alike.
    html = received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    clicks = re.findall(rf'href="{re.escape(BASE)}/c/([A-Za-z0-9_-]+)"', html)
    assert len(clicks) == 2
    secrets = [ids[k] for k in ("organization", "campaign", "execution", "touchpoint")]
    # (the contact id as the readable JSON array of version 1 carried it: ``[…,"tp_…",7]``)
    secrets += [f",{reader}]", f",{reader},", "shop.example", "reader0", "http"]
    for seen in (token, *clicks):
        assert _reveals(seen, secrets) == [], seen

    # The click links redirect where the template said (a link built per contact too).
    locations = [client.get(f"/c/{c}", follow_redirects=False).headers["location"] for c in clicks]
    assert locations == [SHOP, f"https://shop.example.com/me?c={reader}"]

    # A changed token is refused, page and one-click alike, and unsubscribes nobody.
    changed = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for forged in (changed, token[:-1], clicks[0]):
        assert client.get(f"/u/{forged}").status_code == 404
        assert _one_click(client, f"/u/{forged}").status_code == 404
    assert client.get(f"/c/{clicks[0][:-1]}", follow_redirects=False).status_code == 404
    assert not _unsubscribed(rt, reader)

    # RFC 8058: the provider POSTs List-Unsubscribe=One-Click to the header's URL.
    assert client.get(f"/u/{token}").status_code == 200  # a link scanner changes nothing
    assert not _unsubscribed(rt, reader)
    answer = _one_click(client, url.removeprefix(BASE))
    assert answer.status_code == 200 and "Unsubscribed" in answer.text
    assert _unsubscribed(rt, reader)
    assert not _unsubscribed(rt, ids["contacts"]["reader1@example.com"])
    with session_scope(rt.engine) as session:
        event = session.scalars(
            sa.select(EngagementEvent).where(col(EngagementEvent.type) == "unsubscribed")
        ).one()
        assert (event.organization_id, event.campaign_id, event.execution_id) == (
            ids["organization"],
            ids["campaign"],
            ids["execution"],
        )
        assert (event.touchpoint_id, event.contact_id) == (ids["touchpoint"], reader)


def test_links_of_emails_sent_before_keep_working(client: TestClient, rt: Runtime) -> None:
    tenant = make_tenant(client, rt, "sender", contacts=3)
    with session_scope(rt.engine) as session:
        query = sa.select(col(Contact.id)).order_by(col(Contact.id))
        first, second, third = (int(i or 0) for i in session.scalars(query).all())
        links = MessageLinks(
            organization_id=tenant.organization_id,
            campaign_id="cmp_sent_before",
            execution_id="exe_sent_before",
            touchpoint_id="tp_sent_before",
            urls=[SHOP],
        )
        session.add(links)
        session.flush()
        links_id = int(links.id or 0)
        assert session.get(Execution, "exe_sent_before") is None  # found through the row alone
    ids = [tenant.organization_id, "cmp_sent_before", "exe_sent_before", "tp_sent_before"]

    # Version-1 tokens (readable, MAC-signed), under SECRET_KEY or a fallback key: still read.
    v1_click = v1_link_token(KEY, "c", ["exe_sent_before", "tp_sent_before", first, SHOP])
    answer = client.get(f"/c/{v1_click}", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == SHOP
    v1_unsubscribe = v1_link_token(OLD_KEY, "u", [*ids, first])
    assert _one_click(client, f"/u/{v1_unsubscribe}").status_code == 200
    assert _unsubscribed(rt, first)

    # A token sealed under the key before the rotation opens; one of an unknown key does not.
    old = LinkTokens(OLD_KEY)
    answer = client.get(f"/c/{old.seal_click(links_id, second, 0)}", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == SHOP
    stranger = LinkTokens("somebody-elses-key").seal_unsubscribe(links_id, third)
    assert _one_click(client, f"/u/{stranger}").status_code == 404
    stranger_v1 = v1_link_token("somebody-elses-key", "u", [*ids, third])
    assert _one_click(client, f"/u/{stranger_v1}").status_code == 404
    assert not _unsubscribed(rt, third)
    answer = _one_click(client, f"/u/{old.seal_unsubscribe(links_id, second)}")
    assert answer.status_code == 200 and _unsubscribed(rt, second)
    # A token naming a row that does not exist is refused.
    missing = LinkTokens(KEY).seal_unsubscribe(links_id + 1000, third)
    assert client.get(f"/u/{missing}").status_code == 404
