"""The email channel against a real SMTP server on loopback (aiosmtpd): content, pooling, errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.channels.email.channel import EmailChannel
from engine.channels.email.mime import html_to_text
from engine.errors import PermanentDeliveryError, ValidationFailed
from engine.execution.sending import Sender, SendOutcome
from engine.ratelimit import MemoryLimiter
from tests.conftest import LOOPBACK_POLICY, make_settings
from tests.providers import outgoing
from tests.smtp_server import HOST, SmtpSink, free_port, make_certificate, server_tls_context

# The event loop fixture (``loop``), loaded by pytest so that its asserts are rewritten too.
pytest_plugins = ["tests.channel_fixtures"]

PASSWORD = "pa55-w0rd-very-secret"
#: The execution, campaign and touchpoint of every message.
IDS = ("exec-1", "camp-1", "tp-1")


def _message(
    contact_id: int, config: dict[str, Any], body: Any = "Hello", **recipient: Any
) -> OutgoingMessage:
    address = {"email": f"user{contact_id}@example.org", "name": f"User {contact_id}"}
    return outgoing(contact_id, {**address, **recipient}, config, body, IDS)


@pytest.fixture
def channel(loop: EventLoopThread) -> Iterator[EmailChannel]:
    channel = EmailChannel(loop, timeout_s=5.0, policy=LOOPBACK_POLICY)
    yield channel
    channel.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def _sender(channel: EmailChannel, loop: EventLoopThread, tmp_path: Path, config: dict) -> Sender:
    settings = make_settings("sqlite://", tmp_path)
    return Sender(channel, MemoryLimiter(), settings, loop, None, channel.rate_key(config))


def _send(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path, messages: list[OutgoingMessage]
) -> list[SendOutcome]:
    return _sender(channel, loop, tmp_path, messages[0].config).send_batch(messages)


# --- content ---------------------------------------------------------------------------------


def test_a_full_message_arrives_multipart_with_its_headers(
    channel: EmailChannel, loop: EventLoopThread
) -> None:
    body = {"subject": "Spring sale", "text": "Hi Ana, 20% off", "html": "<p>Hi <b>Ana</b></p>"}
    with SmtpSink() as sink:
        config = sink.config(
            from_name="News Team",
            reply_to="help@example.com",
            unsubscribe_url="https://example.com/u/campaign",
        )
        message = _message(7, config, body, name="Ana Pérez")
        provider_id = loop.run(channel.send_async(message))

    [received] = sink.received
    email = received.message
    assert received.mail_from == "news@example.com"
    assert received.rcpt_tos == ["user7@example.org"]
    assert email.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content() for part in email.iter_parts()}
    assert parts == {"text/plain": "Hi Ana, 20% off\n", "text/html": "<p>Hi <b>Ana</b></p>\n"}
    assert email["Subject"] == "Spring sale"
    assert email["From"] == "News Team <news@example.com>"
    assert email["To"] == "Ana Pérez <user7@example.org>"
    assert email["Reply-To"] == "help@example.com"
    assert email["Message-ID"] == provider_id
    assert provider_id is not None and provider_id.endswith("@example.com>")
    assert email["Date"]
    assert email["List-Unsubscribe"] == "<https://example.com/u/campaign>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (email["X-Campaign-Id"], email["X-Execution-Id"]) == ("camp-1", "exec-1")


def test_html_only_gets_a_derived_text_part_and_the_recipient_url_wins(
    channel: EmailChannel, loop: EventLoopThread
) -> None:
    html = "<style>p{}</style><h1>Hello</h1><p>Read <a href='https://x.io/a'>this</a>&amp;go</p>"
    with SmtpSink() as sink:
        config = sink.config(subject="Default subject", unsubscribe_url="https://e.com/campaign")
        message = _message(1, config, {"html": html}, unsubscribe_url="https://e.com/u/1")
        loop.run(channel.send_async(message))

    email = sink.received[0].message
    assert email["Subject"] == "Default subject"
    text = email.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content() == "Hello\n\nRead this (https://x.io/a)&go\n"
    assert email["List-Unsubscribe"] == "<https://e.com/u/1>"


def test_a_long_unsubscribe_link_stays_a_plain_uri_next_to_the_mailbox(
    channel: EmailChannel, loop: EventLoopThread
) -> None:
    # 140 characters: the default policy folded such a value into RFC 2047 encoded-words.
    url = "https://links.newsletters.a-rather-long-company-name.example.com/u/" + "T" * 73
    mailbox = "mailto:unsubscribe@example.com?subject=unsubscribe"
    with SmtpSink() as sink:
        config = sink.config(unsubscribe_url=mailbox)
        loop.run(channel.send_async(_message(1, config, {"text": "Hi"}, unsubscribe_url=url)))

    [received] = sink.received
    head = received.raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "=?" not in head
    assert f"List-Unsubscribe: <{url}>,\r\n <{mailbox}>\r\n" in head
    assert received.message["List-Unsubscribe"] == f"<{url}>, <{mailbox}>"
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_string_body_is_plain_text_without_unsubscribe_headers(
    channel: EmailChannel, loop: EventLoopThread
) -> None:
    with SmtpSink() as sink:
        loop.run(channel.send_async(_message(1, sink.config(), "Just text")))

    email = sink.received[0].message
    assert email.get_content_type() == "text/plain"
    assert email.get_content() == "Just text\n"
    assert email["Subject"] == ""
    assert email["From"] == "news@example.com"
    assert email["List-Unsubscribe"] is None and email["List-Unsubscribe-Post"] is None


def test_contact_data_cannot_add_header_lines(channel: EmailChannel, loop: EventLoopThread) -> None:
    body = {"subject": "Hi\r\nBcc: victim@example.net", "text": "x"}
    with SmtpSink() as sink:
        loop.run(channel.send_async(_message(1, sink.config(), body, name="Eve\nX-Evil: 1")))

    email = sink.received[0].message
    assert email["Subject"] == "Hi Bcc: victim@example.net"
    assert email["Bcc"] is None and email["X-Evil"] is None
    assert sink.received[0].rcpt_tos == ["user1@example.org"]


def test_html_to_text_is_a_simple_tag_strip() -> None:
    assert html_to_text("<div>a<br>b</div><script>x()</script><ul><li>c</li></ul>") == "a\nb\n\nc"


# --- retries and refusals, through the Sender --------------------------------------------------


def test_a_451_on_rcpt_is_retried_and_the_message_arrives_once(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    def rcpt(address: str, n: int) -> str | None:
        return "451 4.7.1 Greylisted, try again" if n == 1 else None

    with SmtpSink(rcpt=rcpt) as sink:
        outcomes = _send(channel, loop, tmp_path, [_message(i, sink.config()) for i in range(5)])

    assert [(o.status, o.attempts) for o in outcomes] == [("sent", 2)] * 5
    assert sorted(r.rcpt_tos[0] for r in sink.received) == [
        f"user{i}@example.org" for i in range(5)
    ]


def test_a_retried_message_carries_the_same_message_id(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    def data(message: Any, n: int) -> str | None:
        return "452 4.3.1 Insufficient system storage" if n == 1 else None

    with SmtpSink(data=data) as sink:
        [outcome] = _send(channel, loop, tmp_path, [_message(3, sink.config())])

    assert (outcome.status, outcome.attempts) == ("sent", 2)
    assert len(sink.data_seen) == 2 and len(sink.received) == 1
    ids = {m["Message-ID"] for m in sink.data_seen}
    assert ids == {outcome.provider_message_id}


def test_an_unknown_user_fails_at_once_and_the_others_are_sent(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    def rcpt(address: str, n: int) -> str | None:
        return "550 5.1.1 User unknown" if address.startswith("unknown@") else None

    with SmtpSink(rcpt=rcpt) as sink:
        config = sink.config()
        messages = [_message(i, config) for i in range(3)]
        messages.append(_message(9, config, email="unknown@example.org"))
        outcomes = _send(channel, loop, tmp_path, messages)

    assert [o.status for o in outcomes] == ["sent", "sent", "sent", "failed"]
    failed = outcomes[-1]
    assert (failed.error_code, failed.attempts) == ("INVALID_RECIPIENT", 1)
    assert failed.error_message is not None and "550" in failed.error_message
    assert sink.rcpt_tries["unknown@example.org"] == 1
    assert len(sink.received) == 3


@pytest.mark.parametrize(
    ("stage", "reply", "code"),
    [
        ("rcpt", "554 5.7.1 Relay access denied", "INVALID_RECIPIENT"),
        ("rcpt", "552 5.2.2 Mailbox full", "SMTP_552"),
        ("data", "552 5.3.4 Message too big", "SMTP_552"),
        ("data", "554 5.7.1 Message rejected as spam", "SMTP_554"),
    ],
)
def test_permanent_refusals_are_not_retried(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path, stage: str, reply: str, code: str
) -> None:
    hooks: dict[str, Any] = {stage: lambda *_: reply}
    with SmtpSink(**hooks) as sink:
        [outcome] = _send(channel, loop, tmp_path, [_message(1, sink.config())])

    assert (outcome.status, outcome.error_code, outcome.attempts) == ("failed", code, 1)
    assert sink.received == []


def test_a_refusal_that_stays_transient_fails_after_the_last_attempt(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    with SmtpSink(rcpt=lambda *_: "421 4.3.2 Service shutting down") as sink:
        [outcome] = _send(channel, loop, tmp_path, [_message(1, sink.config())])

    attempts = make_settings("sqlite://", tmp_path).send_max_attempts
    assert (outcome.status, outcome.error_code, outcome.attempts) == (
        "failed",
        "SMTP_421",
        attempts,
    )
    assert sink.rcpt_tries["user1@example.org"] == attempts


def test_a_refused_connection_is_a_retryable_network_error(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    config = {"host": HOST, "port": free_port(), "security": "none", "from_email": "a@b.io"}
    [outcome] = _send(channel, loop, tmp_path, [_message(1, config)])

    assert (outcome.status, outcome.error_code, outcome.attempts) == ("failed", "NETWORK_ERROR", 3)


def test_a_server_that_never_answers_is_a_timeout(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never greets
        listener.bind((HOST, 0))
        listener.listen(8)
        config = {
            "host": HOST,
            "port": listener.getsockname()[1],
            "security": "none",
            "from_email": "a@b.io",
            "timeout_s": 0.2,
        }
        [outcome] = _send(channel, loop, tmp_path, [_message(1, config)])

    assert (outcome.status, outcome.error_code) == ("failed", "TIMEOUT")


def test_a_contact_without_an_address_fails_with_no_address(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    with SmtpSink() as sink:
        config = sink.config()
        outcomes = _send(
            channel, loop, tmp_path, [_message(1, config, email=None), _message(2, config)]
        )

    assert [(o.status, o.error_code) for o in outcomes] == [
        ("failed", "NO_ADDRESS"),
        ("sent", None),
    ]


# --- authentication and TLS ------------------------------------------------------------------


def test_auth_with_the_right_password_sends(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    with SmtpSink(users={"mailer": PASSWORD}) as sink:
        config = sink.config(username="mailer", password=PASSWORD)
        outcomes = _send(channel, loop, tmp_path, [_message(i, config) for i in range(3)])

    assert {o.status for o in outcomes} == {"sent"}
    assert {r.login for r in sink.received} == {b"mailer"}


def test_a_wrong_password_is_invalid_credentials_and_never_shown(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    with SmtpSink(users={"mailer": "the-right-one"}) as sink:
        config = sink.config(username="mailer", password=PASSWORD)
        [outcome] = _send(channel, loop, tmp_path, [_message(1, config)])
        with pytest.raises(PermanentDeliveryError) as raised:
            loop.run(channel.send_async(_message(2, config)))

    assert (outcome.status, outcome.error_code, outcome.attempts) == (
        "failed",
        "INVALID_CREDENTIALS",
        1,
    )
    assert PASSWORD not in (outcome.error_message or "")
    assert PASSWORD not in str(raised.value) and PASSWORD not in repr(raised.value)
    assert sink.received == []


def test_starttls_with_the_servers_ca_file(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    with SmtpSink(starttls=server_tls_context(cert, key), users={"mailer": PASSWORD}) as sink:
        config = sink.config(
            security="starttls", tls_ca_file=str(cert), username="mailer", password=PASSWORD
        )
        outcomes = _send(channel, loop, tmp_path, [_message(i, config) for i in range(3)])

    assert {o.status for o in outcomes} == {"sent"}
    assert all(r.tls and r.login == b"mailer" for r in sink.received)


def test_starttls_with_an_untrusted_certificate_fails_unless_verification_is_off(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    with SmtpSink(starttls=server_tls_context(cert, key)) as sink:
        [untrusted] = _send(
            channel, loop, tmp_path, [_message(1, sink.config(security="starttls"))]
        )
        unverified = sink.config(security="starttls", tls_verify=False)
        [sent] = _send(channel, loop, tmp_path, [_message(2, unverified)])

    assert (untrusted.status, untrusted.error_code, untrusted.attempts) == (
        "failed",
        "TLS_ERROR",
        1,
    )
    assert sent.status == "sent" and sink.received[0].tls


def test_starttls_is_required_when_configured(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    with SmtpSink() as sink:  # no STARTTLS offered: the channel must not fall back to clear text
        [outcome] = _send(channel, loop, tmp_path, [_message(1, sink.config(security="starttls"))])

    assert (outcome.status, outcome.error_code, outcome.attempts) == ("failed", "SMTP_ERROR", 1)
    assert sink.received == []


def test_implicit_tls(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    with SmtpSink(implicit_tls=server_tls_context(cert, key)) as sink:
        config = sink.config(security="tls", tls_ca_file=str(cert))
        outcomes = _send(channel, loop, tmp_path, [_message(i, config) for i in range(3)])

    assert {o.status for o in outcomes} == {"sent"}
    assert len(sink.received) == 3


# --- connections -----------------------------------------------------------------------------


def test_many_messages_share_a_few_connections(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    with SmtpSink() as sink:
        config = sink.config(connections=3)
        outcomes = _send(channel, loop, tmp_path, [_message(i, config) for i in range(200)])
        channel.close()
        quits = sink.quits

    assert {o.status for o in outcomes} == {"sent"}
    assert len(sink.received) == 200
    assert 1 <= len(sink.peers()) <= 3
    assert quits == len(sink.peers())  # close() says QUIT on each pooled connection


def test_a_connection_the_server_dropped_is_reopened(
    channel: EmailChannel, loop: EventLoopThread, tmp_path: Path
) -> None:
    port = free_port()
    with SmtpSink(port=port) as first:
        [before] = _send(channel, loop, tmp_path, [_message(1, first.config())])
    with SmtpSink(port=port) as second:  # the pooled connection to `first` is gone
        [after] = _send(channel, loop, tmp_path, [_message(2, second.config())])

    assert (before.status, after.status) == ("sent", "sent")
    assert after.attempts == 1
    assert len(second.received) == 1


# --- configuration ---------------------------------------------------------------------------

VALID = {"host": "smtp.example.com", "from_email": "news@example.com"}


@pytest.mark.parametrize(
    "config",
    [
        VALID,
        {**VALID, "port": 465, "security": "tls", "username": "u", "password": "p"},
        {**VALID, "host": "127.0.0.1", "security": "none"},
        {**VALID, "host": "localhost", "security": "none", "connections": 8, "timeout_s": 2},
        {**VALID, "from_name": "News", "reply_to": "r@example.com", "tls_ca_file": "/ca.pem"},
        {**VALID, "unsubscribe_url": "mailto:unsub@example.com", "tls_verify": False},
    ],
)
def test_valid_configs(config: dict[str, Any]) -> None:
    EmailChannel.validate_config(config)


@pytest.mark.parametrize(
    "config",
    [
        {"from_email": "news@example.com"},
        {**VALID, "host": "smtp example.com"},
        {"host": "smtp.example.com"},
        {**VALID, "from_email": "not-an-address"},
        {**VALID, "port": 70000},
        {**VALID, "port": "587"},
        {**VALID, "security": "ssl"},
        {**VALID, "security": "none"},  # plain text to a remote host
        {**VALID, "username": "u"},
        {**VALID, "password": "p"},
        {**VALID, "reply_to": "nope"},
        {**VALID, "timeout_s": 0},
        {**VALID, "connections": 0},
        {**VALID, "connections": True},
        {**VALID, "tls_verify": "no"},
        {**VALID, "unsubscribe_url": "javascript:alert(1)"},
    ],
)
def test_invalid_configs(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed) as raised:
        EmailChannel.validate_config(config)
    assert raised.value.code == "INVALID_CHANNEL_CONFIG"


def test_a_password_never_appears_in_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as raised:
        EmailChannel.validate_config({**VALID, "password": PASSWORD, "username": ""})
    assert PASSWORD not in str(raised.value)


def test_rate_key_is_the_server_and_account(channel: EmailChannel) -> None:
    assert channel.rate_key({**VALID, "username": "u"}) == "email:smtp.example.com:u"
    assert channel.rate_key(VALID) == "email:smtp.example.com:news@example.com"
