"""The outbound guard: by default nothing internal is reached, at send time, by any client.

Each "internal service" is a real listening socket on loopback (as Redis or PostgreSQL would
be): a refused send must leave it without a single connection. Channels built here without a
policy get the default one (``OUTBOUND_ALLOWED_NETWORKS`` empty).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.aio import EventLoopThread
from engine.channels.email.channel import EmailChannel
from engine.channels.telegram import TelegramChannel
from engine.channels.webhook import WebhookChannel
from engine.db import session_scope
from engine.errors import DeliveryError, ValidationFailed
from engine.integrations import webhooks
from engine.models import Organization, WebhookDelivery
from engine.outbound import OutboundPolicy, check_configured_url
from engine.outbound.policy import is_internal
from engine.runtime import Runtime
from engine.testing import WebhookSink
from tests.conftest import LOOPBACK_POLICY, make_settings
from tests.providers import outgoing

pytest_plugins = ["tests.channel_fixtures"]

REFUSED = "OUTBOUND_TARGET_REFUSED"


class Listener:
    """A TCP port listening on 127.0.0.1 that nobody should connect to.

    Connections the kernel completes wait in the backlog, so :meth:`connections` sees every
    one that was made, without a thread.
    """

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]

    def connections(self) -> int:
        """How many connections were made to it so far (each accepted and closed)."""
        count = 0
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        """Stop listening."""
        self._sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    port = Listener()
    yield port
    port.close()


def _refusal(loop: EventLoopThread, channel: object, config: dict) -> DeliveryError:
    message = outgoing(1, {"email": "a@example.org", "telegram_chat_id": 5}, config, "Hi")
    with pytest.raises(DeliveryError) as caught:
        loop.run(channel.send_async(message))  # type: ignore[attr-defined]
    return caught.value


# --- what is internal ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255",
        "::1", "::", "fd00::1", "fe80::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a00:1",
        "2002:7f00:1::1",
    ],
)  # fmt: skip
def test_internal_addresses_are_refused_by_default_and_allowed_only_when_listed(
    address: str,
) -> None:
    ip = ipaddress.ip_address(address)
    assert is_internal(ip) and not OutboundPolicy().allows(ip)
    assert OutboundPolicy((ipaddress.ip_network(f"{ip}/{ip.max_prefixlen}"),)).allows(ip)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert OutboundPolicy().allows(ipaddress.ip_address(address))


def test_loopback_allowed_lets_mapped_loopback_through_but_not_the_lan() -> None:
    assert LOOPBACK_POLICY.allows(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not LOOPBACK_POLICY.allows(ipaddress.ip_address("10.0.0.1"))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data", "http://127.0.0.1:6379", "http://localhost:5432",
        "http://db.localhost/", "http://[::1]/", "http://[::ffff:7f00:1]/", "http://127.1/",
        "http://2130706433/", "http://0x7f.1/", "http://10.0.0.8/", "http://[fd12::1]/",
    ],
)  # fmt: skip
def test_a_configured_internal_url_is_refused_with_a_code(url: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_configured_url(url, OutboundPolicy(), "url")
    assert caught.value.code == REFUSED


def test_a_configured_public_name_is_left_to_the_connect_time_check() -> None:
    check_configured_url("https://hooks.example.com/x", OutboundPolicy(), "url")


# --- aiohttp: the provider channels ------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_the_webhook_channel_connects_to_no_internal_address(
    loop: EventLoopThread, listener: Listener, host: str
) -> None:
    # "localhost" is a name that resolves to loopback at connect time, as a rebinding name would.
    channel = WebhookChannel(loop, 2.0, 4)
    try:
        error = _refusal(loop, channel, {"url": f"http://{host}:{listener.port}/hook"})
    finally:
        channel.close()
    assert error.code == REFUSED and not getattr(error, "retry_after", None)
    assert str(listener.port) not in error.message or host in error.message
    assert listener.connections() == 0


def test_a_provider_base_url_on_loopback_is_refused_at_send(
    loop: EventLoopThread, listener: Listener
) -> None:
    channel = TelegramChannel(loop, 2.0, 4)
    config = {"bot_token": "123:abc", "base_url": f"http://localhost:{listener.port}"}
    try:
        error = _refusal(loop, channel, config)
    finally:
        channel.close()
    assert error.code == REFUSED
    assert "123:abc" not in error.message
    assert listener.connections() == 0


def test_a_redirect_is_not_followed_and_its_target_receives_nothing(
    loop: EventLoopThread, listener: Listener
) -> None:
    target = f"http://127.0.0.1:{listener.port}/elsewhere"
    with WebhookSink(lambda body, n: (307, {"Location": target})) as sink:
        channel = WebhookChannel(loop, 2.0, 4, LOOPBACK_POLICY)
        try:
            error = _refusal(loop, channel, {"url": sink.url, "secret": "s3cret"})
        finally:
            channel.close()
    assert len(sink.requests) == 1
    assert error.code == "REDIRECT_NOT_FOLLOWED"
    assert listener.connections() == 0


def test_an_answer_over_the_cap_is_not_read(loop: EventLoopThread) -> None:
    big = b'{"id": "m-1", "pad": "' + b"x" * 4096 + b'"}'
    policy = OutboundPolicy(LOOPBACK_POLICY.allowed_networks, max_response_bytes=1024)
    with WebhookSink(lambda body, n: (200, {}, big if n == 1 else b'{"id": "m-2"}')) as sink:
        channel = WebhookChannel(loop, 2.0, 4, policy)
        try:
            message = outgoing(1, {}, {"url": sink.url}, "Hi")
            first = loop.run(channel.send_async(message))
            second = loop.run(channel.send_async(message))
        finally:
            channel.close()
    assert (first, second) == (None, "m-2")  # sent both times; the oversized body was dropped


# --- aiosmtplib: the email channel -------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_email_channel_connects_to_no_internal_server(
    loop: EventLoopThread, listener: Listener, host: str
) -> None:
    channel = EmailChannel(loop, timeout_s=1.0)
    config = {"host": host, "port": listener.port, "security": "none", "from_email": "n@ex.com"}
    try:
        error = _refusal(loop, channel, config)
    finally:
        channel.close()
    assert error.code == REFUSED
    assert listener.connections() == 0


# --- httpx: lifecycle webhooks ------------------------------------------------------------------


def test_a_lifecycle_webhook_to_an_internal_address_fails_at_once_unsent(
    db_url: str, tmp_path: Path, listener: Listener
) -> None:
    # Subscribed while the operator allowed loopback; the workers' default now refuses it.
    rt = Runtime.from_settings(make_settings(db_url, tmp_path, outbound_allowed_networks=[]))
    try:
        with session_scope(rt.engine) as session:
            org = Organization(name="acme")
            session.add(org)
            session.flush()
            url = f"http://localhost:{listener.port}/events"
            keys = rt.settings.verification_keys
            webhooks.subscribe(
                session, org.id, url, ["campaign.created"], secret_key=keys, policy=LOOPBACK_POLICY
            )
            webhooks.emit(session, org.id, "campaign.created", {"campaignId": "c1"})
        with session_scope(rt.engine) as session:
            [delivery_id] = webhooks.claim_due_deliveries(session)
        status = webhooks.deliver(lambda: session_scope(rt.engine), rt.http, delivery_id, keys)
        with session_scope(rt.engine) as session:
            delivery = session.get_one(WebhookDelivery, delivery_id)
            attempts, error = delivery.attempts, delivery.last_error or ""
    finally:
        rt.close()
    assert (status, attempts) == ("failed", 1)
    assert error.startswith(REFUSED)
    assert listener.connections() == 0
