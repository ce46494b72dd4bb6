"""The whatsapp channel against a fake Cloud API on loopback: requests, error codes, retries.

Meta's error codes are read straight off ``send_async`` (the ``probe`` of
``tests.channel_fixtures``, which also checks that no error shows the access token); retries,
throughput penalties and a whole batch go through the :class:`~engine.execution.sending.Sender`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.channels.whatsapp import WhatsAppChannel
from engine.config import Settings
from engine.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    ValidationFailed,
)
from engine.execution.sending import Sender
from engine.ratelimit import MemoryLimiter
from engine.testing import wait_for
from tests.providers import Answer, FakeWhatsApp, bad_gateway, cloud_error, outgoing, slow

if TYPE_CHECKING:
    from tests.channel_fixtures import ChannelProbe

# Imported by pytest (not by this module) so that its asserts are rewritten too.
pytest_plugins = ["tests.channel_fixtures"]

TOKEN = "EAAGm0PX4ZCpsBAKZAsecretZBtokenZC4ZD1234567890abcdef"
NUMBER_ID = "106540352242922"
ANN = "15550101001"  # reachable
GHOST = "15550101002"  # not on WhatsApp
DORMANT = "15550101003"  # last wrote more than 24 hours ago


@pytest.fixture
def secret() -> str:
    """What no error may show: the access token."""
    return TOKEN


@pytest.fixture
def channel(open_channel: Callable[..., WhatsAppChannel]) -> WhatsAppChannel:
    """A whatsapp channel with a 2 s timeout."""
    return open_channel(WhatsAppChannel, 2.0)


@pytest.fixture
def whatsapp() -> Iterator[FakeWhatsApp]:
    """A fake Cloud API for one number, with an ``order_update`` template of one parameter."""
    fake = FakeWhatsApp(
        TOKEN,
        NUMBER_ID,
        undeliverable={GHOST},
        dormant={DORMANT},
        templates={"hello_world": 0, "order_update": 1},
    )
    with fake:
        yield fake


def message(
    phone: Any, config: dict[str, Any], body: Any = None, contact_id: int = 1
) -> OutgoingMessage:
    """One outgoing message for ``phone`` (``None``: the contact has none)."""
    recipient = {"email": None, "phone": phone, "name": "Ann"}
    return outgoing(contact_id, recipient, config, {"text": "Hi Ann"} if body is None else body)


def config_for(whatsapp: FakeWhatsApp, **extra: Any) -> dict[str, Any]:
    """A channel config pointing at the fake."""
    base = {"access_token": TOKEN, "phone_number_id": NUMBER_ID, "base_url": whatsapp.base_url}
    return {**base, **extra}


# --- the channel on its own ----------------------------------------------------------------


def test_sends_a_text_message_and_returns_the_wamid(
    probe: ChannelProbe, channel: WhatsAppChannel, whatsapp: FakeWhatsApp
) -> None:
    message_id = probe.send(channel, message("+1 (555) 010-1001", config_for(whatsapp)))

    assert message_id == "wamid.HBgL00000001"
    [request] = whatsapp.requests
    assert request.path == f"/v21.0/{NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": ANN,
        "type": "text",
        "text": {"body": "Hi Ann", "preview_url": False},
    }


def test_sends_a_template_message(
    probe: ChannelProbe, channel: WhatsAppChannel, whatsapp: FakeWhatsApp
) -> None:
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Ann"}]}]
    body = {"template": {"name": "order_update", "language": "en_US", "components": components}}

    # A template opens a conversation even when the 24-hour window is closed.
    message_id = probe.send(channel, message(DORMANT, config_for(whatsapp), body))

    assert message_id is not None and message_id.startswith("wamid.")
    assert whatsapp.requests[0].body["type"] == "template"
    assert whatsapp.requests[0].body["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": components,
    }


def test_a_custom_api_version_and_a_string_body(
    probe: ChannelProbe, channel: WhatsAppChannel
) -> None:
    with FakeWhatsApp(TOKEN, NUMBER_ID, api_version="v19.0") as fake:
        config = {**config_for(fake), "api_version": "v19.0", "base_url": fake.base_url + "/"}
        probe.send(channel, message(ANN, config, "Plain string body"))

    assert fake.requests[0].path == f"/v19.0/{NUMBER_ID}/messages"
    assert fake.requests[0].body["text"]["body"] == "Plain string body"


@pytest.mark.parametrize(
    ("phone", "body", "code"),
    [
        (GHOST, None, "INVALID_RECIPIENT"),
        (DORMANT, None, "REENGAGEMENT_REQUIRED"),
        (ANN, {"template": {"name": "no_such_template", "language": "en"}}, "TEMPLATE_ERROR"),
        (ANN, {"template": {"name": "order_update", "language": "en"}}, "TEMPLATE_ERROR"),
    ],
)
def test_the_cloud_apis_refusals_are_permanent(
    probe: ChannelProbe,
    channel: WhatsAppChannel,
    whatsapp: FakeWhatsApp,
    phone: str,
    body: Any,
    code: str,
) -> None:
    error = probe.failure(channel, message(phone, config_for(whatsapp), body))

    assert isinstance(error, PermanentDeliveryError) and error.code == code
    assert "fbtrace_id AbCdEfGh123" in error.message


TRANSIENT, PERMANENT = TransientDeliveryError, PermanentDeliveryError


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (cloud_error(130429, "(#130429) Rate limit hit"), TRANSIENT, "RATE_LIMITED"),
        (cloud_error(131048, "(#131048) Spam rate limit hit"), TRANSIENT, "RATE_LIMITED"),
        (cloud_error(131056, "(#131056) Pair rate limit hit"), TRANSIENT, "RATE_LIMITED"),
        (cloud_error(80007, "(#80007) Rate limit issues"), TRANSIENT, "RATE_LIMITED"),
        (cloud_error(4, "(#4) Application request limit reached"), TRANSIENT, "RATE_LIMITED"),
        (cloud_error(613, "(#613) Calls to this api have exceeded"), TRANSIENT, "RATE_LIMITED"),
        (cloud_error(131000, "Something went wrong", 500), TRANSIENT, "WHATSAPP_131000"),
        (cloud_error(131016, "Service unavailable", 503), TRANSIENT, "WHATSAPP_131016"),
        (bad_gateway(503), TRANSIENT, "HTTP_503"),
        (cloud_error(131026, "(#131026) Message Undeliverable."), PERMANENT, "INVALID_RECIPIENT"),
        (
            cloud_error(131047, "(#131047) Re-engagement message"),
            PERMANENT,
            "REENGAGEMENT_REQUIRED",
        ),
        (cloud_error(132000, "(#132000) Parameter count mismatch"), PERMANENT, "TEMPLATE_ERROR"),
        (cloud_error(132001, "(#132001) Template does not exist"), PERMANENT, "TEMPLATE_ERROR"),
        (
            cloud_error(190, "Session has expired", 401, subcode=463),
            PERMANENT,
            "INVALID_CREDENTIALS",
        ),
        (cloud_error(131051, "(#131051) Unsupported message type"), PERMANENT, "WHATSAPP_131051"),
        (cloud_error(131052, "(#131052) Media download error"), PERMANENT, "WHATSAPP_131052"),
        (cloud_error(100, "(#100) Invalid parameter"), PERMANENT, "WHATSAPP_100"),
        (Answer(401, {"message": "Unauthorized"}), PERMANENT, "INVALID_CREDENTIALS"),
        (Answer(404, b"<html>Not Found</html>"), PERMANENT, "HTTP_404"),
    ],
)
def test_error_codes_map_to_delivery_errors(
    probe: ChannelProbe,
    channel: WhatsAppChannel,
    whatsapp: FakeWhatsApp,
    answer: Answer,
    kind: type[DeliveryError],
    code: str,
) -> None:
    whatsapp.queue(ANN, answer)

    error = probe.failure(channel, message(ANN, config_for(whatsapp)))

    assert type(error) is kind and error.code == code
    if isinstance(answer.body, dict) and "error" in answer.body:
        assert answer.body["error"]["message"] in error.message
    if isinstance(error, TransientDeliveryError):
        assert error.retry_after is None  # Graph sent no Retry-After


def test_a_retry_after_header_is_honoured(
    probe: ChannelProbe, channel: WhatsAppChannel, whatsapp: FakeWhatsApp
) -> None:
    whatsapp.queue(
        ANN,
        cloud_error(130429, "(#130429) Rate limit hit", headers={"Retry-After": "4"}),
        Answer(429, {"error": {"message": "Too many calls"}}, {"Retry-After": "2.5"}),
    )

    errors = [probe.failure(channel, message(ANN, config_for(whatsapp))) for _ in range(2)]

    assert [(e.code, e.retry_after) for e in errors] == [
        ("RATE_LIMITED", 4.0),
        ("RATE_LIMITED", 2.5),
    ]


def test_a_wrong_token_is_invalid_credentials_and_a_quoted_token_is_cut_out(
    probe: ChannelProbe, channel: WhatsAppChannel, whatsapp: FakeWhatsApp
) -> None:
    wrong = {**config_for(whatsapp), "access_token": "EAAwrongtoken"}
    # Graph quotes a malformed token back in its message.
    whatsapp.queue(ANN, cloud_error(190, f"Malformed access token {TOKEN}", status=401))

    quoted = probe.failure(channel, message(ANN, config_for(whatsapp)))
    error = probe.failure(channel, message(ANN, wrong))

    assert error.code == quoted.code == "INVALID_CREDENTIALS"
    assert "EAAwrongtoken" not in error.message
    assert "Malformed access token <redacted>" in quoted.message


def test_a_slow_api_is_a_transient_timeout(
    open_channel: Callable[..., WhatsAppChannel], probe: ChannelProbe, whatsapp: FakeWhatsApp
) -> None:
    channel = open_channel(WhatsAppChannel, 0.2)
    whatsapp.queue(ANN, slow(cloud_error(131000, "Something went wrong", 500), delay_s=1.0))

    error = probe.failure(channel, message(ANN, config_for(whatsapp)))

    assert isinstance(error, TransientDeliveryError) and error.code == "TIMEOUT"


def test_an_unreachable_api_is_a_transient_network_error(
    probe: ChannelProbe, channel: WhatsAppChannel
) -> None:
    config = {"access_token": TOKEN, "phone_number_id": NUMBER_ID, "base_url": "http://127.0.0.1:9"}

    error = probe.failure(channel, message(ANN, config))

    assert isinstance(error, TransientDeliveryError) and error.code == "NETWORK_ERROR"


HELLO = {"name": "hello_world", "language": "en"}


@pytest.mark.parametrize(
    ("phone", "body", "code"),
    [
        (None, None, "NO_ADDRESS"),
        ("", None, "NO_ADDRESS"),
        ("call me", None, "INVALID_RECIPIENT"),
        ("+1 555", None, "INVALID_RECIPIENT"),
        (ANN, {"subject": "no text"}, "INVALID_MESSAGE"),
        (ANN, {"template": {"language": "en"}}, "INVALID_MESSAGE"),
        (ANN, {"template": {"name": "hello_world"}}, "INVALID_MESSAGE"),
        (ANN, {"template": {**HELLO, "components": {}}}, "INVALID_MESSAGE"),
    ],
)
def test_messages_that_cannot_be_sent_fail_before_any_request(
    probe: ChannelProbe,
    channel: WhatsAppChannel,
    whatsapp: FakeWhatsApp,
    phone: Any,
    body: Any,
    code: str,
) -> None:
    error = probe.failure(channel, message(phone, config_for(whatsapp), body))

    assert isinstance(error, PermanentDeliveryError) and error.code == code
    assert whatsapp.requests == []


def test_validate_config_accepts_a_token_and_a_number_id() -> None:
    WhatsAppChannel.validate_config({"access_token": TOKEN, "phone_number_id": NUMBER_ID})
    WhatsAppChannel.validate_config(
        {
            "access_token": TOKEN,
            "phone_number_id": int(NUMBER_ID),
            "base_url": "http://127.0.0.1:8080",
            "api_version": "v19.0",
            "rate_per_s": 80,
        }
    )


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"phone_number_id": NUMBER_ID},
        {"access_token": "", "phone_number_id": NUMBER_ID},
        {"access_token": f"{TOKEN} x", "phone_number_id": NUMBER_ID},
        {"access_token": TOKEN},
        {"access_token": TOKEN, "phone_number_id": "+15550100"},
        {"access_token": TOKEN, "phone_number_id": NUMBER_ID, "base_url": "graph.facebook.com"},
        {"access_token": TOKEN, "phone_number_id": NUMBER_ID, "api_version": "21"},
    ],
)
def test_validate_config_refuses_what_cannot_work_without_quoting_the_token(
    config: dict[str, Any],
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        WhatsAppChannel.validate_config(config)

    assert caught.value.code == "INVALID_CHANNEL_CONFIG"
    assert TOKEN not in caught.value.message


def test_the_rate_key_is_the_sending_number(channel: WhatsAppChannel) -> None:
    assert channel.rate_key({"access_token": TOKEN, "phone_number_id": NUMBER_ID}) == (
        f"whatsapp:{NUMBER_ID}"
    )


# --- through the Sender, as workers send -------------------------------------------------------


@pytest.fixture
def sender(
    channel: WhatsAppChannel,
    loop: EventLoopThread,
    limiter: MemoryLimiter,
    send_settings: Settings,
) -> Sender:
    """A Sender over the channel at 80 messages per second (Cloud API's default throughput)."""
    key = channel.rate_key({"phone_number_id": NUMBER_ID})
    return Sender(channel, limiter, send_settings, loop, rate=80.0, rate_key=key)


def test_reengagement_fails_at_once(
    sender: Sender, probe: ChannelProbe, whatsapp: FakeWhatsApp
) -> None:
    [outcome] = sender.send_batch([message(DORMANT, config_for(whatsapp))])

    assert (outcome.status, outcome.error_code, outcome.attempts) == (
        "failed",
        "REENGAGEMENT_REQUIRED",
        1,
    )
    assert len(whatsapp.requests) == 1
    probe.hidden([outcome])


def test_throughput_errors_are_retried_after_retry_after_and_penalise_the_number(
    sender: Sender, whatsapp: FakeWhatsApp, probe: ChannelProbe
) -> None:
    whatsapp.queue(
        ANN, cloud_error(130429, "(#130429) Rate limit hit", headers={"Retry-After": "1"})
    )

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(sender.send_batch, [message(ANN, config_for(whatsapp))])
        wait_for(lambda: whatsapp.requests, timeout=5)
        # While the retry waits, every worker sending from this number is told to wait too.
        wait = wait_for(lambda: probe.penalty(sender.rate_key), timeout=2)
        [outcome] = future.result(timeout=10)

    assert 0.5 < wait <= 1.0
    assert (outcome.status, outcome.attempts) == ("sent", 2)
    assert outcome.provider_message_id == "wamid.HBgL00000001"
    first, second = (r.at for r in whatsapp.requests_for(ANN))
    assert 0.95 <= second - first < 2.5


def test_a_batch_ends_with_each_contacts_outcome_and_no_token_anywhere(
    sender: Sender, probe: ChannelProbe, whatsapp: FakeWhatsApp, send_settings: Settings
) -> None:
    flaky, down, paired = "15550102001", "15550102002", "15550102003"
    whatsapp.queue(flaky, cloud_error(131000, "Something went wrong", status=500))
    whatsapp.queue(down, *[cloud_error(131016, "Service unavailable", status=503)] * 3)
    whatsapp.queue(paired, cloud_error(131056, "(#131056) Pair rate limit hit"))
    messages = [
        message(ANN, config_for(whatsapp), contact_id=1),
        message(GHOST, config_for(whatsapp), contact_id=2),
        message(flaky, config_for(whatsapp), contact_id=3),
        message(down, config_for(whatsapp), contact_id=4),
        message(paired, config_for(whatsapp), contact_id=5),
        message(None, config_for(whatsapp), contact_id=6),
        message(ANN, {**config_for(whatsapp), "access_token": "EAAwrong"}, contact_id=7),
    ]

    outcomes = sender.send_batch(messages)

    attempts = send_settings.send_max_attempts
    summary = {o.contact_id: (o.status, o.error_code, o.attempts) for o in outcomes}
    assert summary == {
        1: ("sent", None, 1),
        2: ("failed", "INVALID_RECIPIENT", 1),
        3: ("sent", None, 2),
        4: ("failed", "WHATSAPP_131016", attempts),
        5: ("sent", None, 2),
        6: ("failed", "NO_ADDRESS", 1),
        7: ("failed", "INVALID_CREDENTIALS", 1),
    }
    probe.hidden(outcomes)
    # A pair rate limit names no wait: nothing pushed the number's key for everyone.
    assert limiter_wait(sender) < 0.5


def limiter_wait(sender: Sender) -> float:
    """How long the sender's key would make the next message wait now."""
    return sender.limiter.acquire(sender.rate_key, 1, 1e6)
