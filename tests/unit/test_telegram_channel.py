"""The telegram channel against a fake Bot API on loopback: requests, answers, retries, secrecy.

Each message goes straight through the channel (the ``probe`` of ``tests.channel_fixtures``:
what ``send_async`` returns and raises, never the token) or through the
:class:`~engine.execution.sending.Sender`, as workers send (flood control, the bot's rate key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.channels.telegram import TelegramChannel
from engine.config import Settings
from engine.errors import PermanentDeliveryError, TransientDeliveryError, ValidationFailed
from engine.execution.sending import Sender
from engine.ratelimit import MemoryLimiter
from engine.testing import wait_for
from tests.providers import (
    BOT_KICKED,
    FakeTelegram,
    bad_gateway,
    flood,
    outgoing,
    slow,
    telegram_error,
)

if TYPE_CHECKING:
    from tests.channel_fixtures import ChannelProbe

# Imported by pytest (not by this module) so that its asserts are rewritten too.
pytest_plugins = ["tests.channel_fixtures"]

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET_PART = TOKEN.split(":")[1]


@pytest.fixture
def secret() -> str:
    """What no error may show: the secret part of the bot token."""
    return SECRET_PART


@pytest.fixture
def channel(open_channel: Callable[..., TelegramChannel]) -> TelegramChannel:
    """A telegram channel with a 2 s timeout."""
    return open_channel(TelegramChannel, 2.0)


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    """A fake Bot API: chat 13 blocked the bot, 14 is deactivated, 15 does not exist."""
    with FakeTelegram(TOKEN, blocked={"13"}, deactivated={"14"}, unknown={"15"}) as fake:
        yield fake


def message(
    chat_id: Any, config: dict[str, Any], body: Any = None, contact_id: int = 1
) -> OutgoingMessage:
    """One outgoing message for ``chat_id`` (``None``: the contact has none)."""
    recipient: dict[str, Any] = {"email": None, "phone": None, "name": "Ann"}
    if chat_id is not None:
        recipient["telegram_chat_id"] = chat_id
    return outgoing(contact_id, recipient, config, {"text": "Hi Ann"} if body is None else body)


def config_for(telegram: FakeTelegram, **extra: Any) -> dict[str, Any]:
    """A channel config pointing at the fake."""
    return {"bot_token": TOKEN, "base_url": telegram.base_url, **extra}


# --- the channel on its own ----------------------------------------------------------------


def test_sends_text_to_the_chat_and_returns_the_message_id(
    probe: ChannelProbe, channel: TelegramChannel, telegram: FakeTelegram
) -> None:
    config = config_for(telegram, parse_mode="HTML", disable_web_page_preview=True)

    first = probe.send(channel, message(1001, config, {"text": "Hi <b>Ann</b>"}))
    second = probe.send(channel, message("1002", config, "Plain string body"))

    assert (first, second) == ("1000", "1001")
    one, two = telegram.requests
    assert one.path == f"/bot{TOKEN}/sendMessage"
    assert one.headers["Content-Type"] == "application/json"
    assert one.body == {
        "chat_id": 1001,
        "text": "Hi <b>Ann</b>",
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }
    assert two.body["chat_id"] == "1002" and two.body["text"] == "Plain string body"


def test_optional_fields_are_left_out_when_not_configured(
    probe: ChannelProbe, channel: TelegramChannel, telegram: FakeTelegram
) -> None:
    probe.send(channel, message(" 77 ", config_for(telegram)))

    assert telegram.requests[0].body == {"chat_id": "77", "text": "Hi Ann"}


@pytest.mark.parametrize(
    ("chat_id", "code", "description"),
    [
        (13, "USER_BLOCKED", "bot was blocked by the user"),
        (14, "USER_BLOCKED", "user is deactivated"),
        (15, "INVALID_RECIPIENT", "chat not found"),
    ],
)
def test_unreachable_chats_are_permanent_failures(
    probe: ChannelProbe,
    channel: TelegramChannel,
    telegram: FakeTelegram,
    chat_id: int,
    code: str,
    description: str,
) -> None:
    error = probe.failure(channel, message(chat_id, config_for(telegram)))

    assert isinstance(error, PermanentDeliveryError)
    assert error.code == code and description in error.message


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (BOT_KICKED, "FORBIDDEN"),
        (telegram_error(400, "Bad Request: can't parse entities: at byte 3"), "INVALID_REQUEST"),
        (telegram_error(400, "Bad Request: PEER_ID_INVALID"), "INVALID_RECIPIENT"),
        (telegram_error(404, "Not Found"), "TELEGRAM_404"),
    ],
)
def test_other_refusals_are_permanent_with_their_description(
    probe: ChannelProbe, channel: TelegramChannel, telegram: FakeTelegram, answer: Any, code: str
) -> None:
    telegram.queue("5", answer)

    error = probe.failure(channel, message(5, config_for(telegram)))

    assert isinstance(error, PermanentDeliveryError) and error.code == code
    assert answer.body["description"] in error.message


def test_a_wrong_token_is_invalid_credentials_and_never_echoed(
    probe: ChannelProbe, channel: TelegramChannel, telegram: FakeTelegram
) -> None:
    other = "987654321:ZZZdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

    error = probe.failure(channel, message(5, {**config_for(telegram), "bot_token": other}))

    assert isinstance(error, PermanentDeliveryError) and error.code == "INVALID_CREDENTIALS"
    assert other not in error.message and other.split(":")[1] not in error.message


def test_flood_control_is_transient_with_telegrams_retry_after(
    probe: ChannelProbe, channel: TelegramChannel, telegram: FakeTelegram
) -> None:
    telegram.queue("5", flood(retry_after=7))

    error = probe.failure(channel, message(5, config_for(telegram)))

    assert isinstance(error, TransientDeliveryError)
    assert (error.code, error.retry_after) == ("RATE_LIMITED", 7.0)


def test_server_errors_are_transient(
    probe: ChannelProbe, channel: TelegramChannel, telegram: FakeTelegram
) -> None:
    telegram.queue("5", bad_gateway(502), telegram_error(500, "Internal Server Error"))

    errors = [probe.failure(channel, message(5, config_for(telegram))) for _ in range(2)]

    assert all(isinstance(e, TransientDeliveryError) for e in errors)
    assert [e.code for e in errors] == ["HTTP_502", "HTTP_500"]
    assert probe.send(channel, message(5, config_for(telegram))) is not None


def test_a_slow_api_is_a_transient_timeout(
    open_channel: Callable[..., TelegramChannel], probe: ChannelProbe, telegram: FakeTelegram
) -> None:
    channel = open_channel(TelegramChannel, 0.2)
    telegram.queue("5", slow(flood(1), delay_s=1.0))

    error = probe.failure(channel, message(5, config_for(telegram)))

    assert isinstance(error, TransientDeliveryError) and error.code == "TIMEOUT"


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9", "http://127.0.0.1:99999"])
def test_network_errors_are_transient_and_never_show_the_token(
    probe: ChannelProbe, channel: TelegramChannel, base_url: str
) -> None:
    # aiohttp's error for the second URL quotes the whole URL, token included.
    error = probe.failure(channel, message(5, {"bot_token": TOKEN, "base_url": base_url}))

    assert isinstance(error, TransientDeliveryError) and error.code == "NETWORK_ERROR"
    assert error.__cause__ is None


@pytest.mark.parametrize(
    ("chat_id", "body", "code"),
    [
        (None, None, "NO_ADDRESS"),
        ("  ", None, "NO_ADDRESS"),
        (5, {"subject": "no text"}, "INVALID_MESSAGE"),
        (5, "   ", "INVALID_MESSAGE"),
    ],
)
def test_messages_that_cannot_be_sent_fail_before_any_request(
    probe: ChannelProbe,
    channel: TelegramChannel,
    telegram: FakeTelegram,
    chat_id: Any,
    body: Any,
    code: str,
) -> None:
    error = probe.failure(channel, message(chat_id, config_for(telegram), body))

    assert isinstance(error, PermanentDeliveryError) and error.code == code
    assert telegram.requests == []


def test_validate_config_accepts_a_bot_token_and_optional_settings() -> None:
    TelegramChannel.validate_config({"bot_token": TOKEN})
    TelegramChannel.validate_config(
        {
            "bot_token": TOKEN,
            "base_url": "http://127.0.0.1:8081",
            "parse_mode": "MarkdownV2",
            "disable_web_page_preview": False,
            "rate_per_s": 20,
        }
    )


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"bot_token": ""},
        {"bot_token": "not-a-token"},
        {"bot_token": f"{TOKEN}/../getMe"},
        {"bot_token": 123456},
        {"bot_token": TOKEN, "base_url": "ftp://api.telegram.org"},
        {"bot_token": TOKEN, "base_url": "http://127.0.0.1:99999"},
        {"bot_token": TOKEN, "parse_mode": "html"},
        {"bot_token": TOKEN, "disable_web_page_preview": "yes"},
    ],
)
def test_validate_config_refuses_what_cannot_work_without_quoting_the_token(
    config: dict[str, Any],
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        TelegramChannel.validate_config(config)

    assert caught.value.code == "INVALID_CHANNEL_CONFIG"
    assert SECRET_PART not in caught.value.message


def test_the_rate_key_names_the_bot_without_its_token(channel: TelegramChannel) -> None:
    key = channel.rate_key({"bot_token": TOKEN})
    other = channel.rate_key({"bot_token": "987654321:ZZZdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"})

    assert key.startswith("telegram:") and len(key) <= len("telegram:") + 16
    assert SECRET_PART not in key and "123456789" not in key
    assert key == channel.rate_key({"bot_token": TOKEN, "parse_mode": "HTML"})
    assert key != other


# --- through the Sender, as workers send -------------------------------------------------------


@pytest.fixture
def sender(
    channel: TelegramChannel,
    loop: EventLoopThread,
    limiter: MemoryLimiter,
    send_settings: Settings,
) -> Sender:
    """A Sender over the channel at Telegram's default 30 messages per second."""
    settings = send_settings
    key = channel.rate_key({"bot_token": TOKEN})
    return Sender(channel, limiter, settings, loop, rate=30.0, rate_key=key)


def test_a_blocked_user_fails_at_once_with_user_blocked(
    sender: Sender, probe: ChannelProbe, telegram: FakeTelegram
) -> None:
    [outcome] = sender.send_batch([message(13, config_for(telegram))])

    assert (outcome.status, outcome.error_code, outcome.attempts) == ("failed", "USER_BLOCKED", 1)
    assert len(telegram.requests) == 1
    probe.hidden([outcome])


def test_flood_control_is_retried_after_retry_after_and_penalises_the_bot(
    sender: Sender, telegram: FakeTelegram, probe: ChannelProbe
) -> None:
    telegram.queue("5", flood(retry_after=1))

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(sender.send_batch, [message(5, config_for(telegram))])
        wait_for(lambda: telegram.requests, timeout=5)
        # While the retry waits, every worker sending through this bot is told to wait too.
        wait = wait_for(lambda: probe.penalty(sender.rate_key), timeout=2)
        [outcome] = future.result(timeout=10)

    assert 0.5 < wait <= 1.0
    assert (outcome.status, outcome.attempts, outcome.provider_message_id) == ("sent", 2, "1000")
    first, second = (r.at for r in telegram.requests_for("5"))
    assert 0.95 <= second - first < 2.5


def test_a_bad_gateway_is_retried_and_then_sent(sender: Sender, telegram: FakeTelegram) -> None:
    telegram.queue("5", bad_gateway(502))

    [outcome] = sender.send_batch([message(5, config_for(telegram))])

    assert (outcome.status, outcome.attempts, outcome.error_code) == ("sent", 2, None)


def test_a_batch_ends_with_each_contacts_outcome_and_no_token_anywhere(
    sender: Sender, probe: ChannelProbe, telegram: FakeTelegram, send_settings: Settings
) -> None:
    bad_token = {**config_for(telegram), "bot_token": "111:wrongwrongwrongwrong"}
    telegram.queue("21", bad_gateway(503), bad_gateway(503), bad_gateway(503))
    messages = [
        message(20, config_for(telegram), contact_id=1),
        message(13, config_for(telegram), contact_id=2),
        message(15, config_for(telegram), contact_id=3),
        message(21, config_for(telegram), contact_id=4),
        message(None, config_for(telegram), contact_id=5),
        message(22, bad_token, contact_id=6),
        message(23, {"bot_token": TOKEN, "base_url": "http://127.0.0.1:99999"}, contact_id=7),
    ]

    started = time.monotonic()
    outcomes = sender.send_batch(messages)

    assert time.monotonic() - started < 5
    summary = {o.contact_id: (o.status, o.error_code, o.attempts) for o in outcomes}
    attempts = send_settings.send_max_attempts
    assert summary == {
        1: ("sent", None, 1),
        2: ("failed", "USER_BLOCKED", 1),
        3: ("failed", "INVALID_RECIPIENT", 1),
        4: ("failed", "HTTP_503", attempts),
        5: ("failed", "NO_ADDRESS", 1),
        6: ("failed", "INVALID_CREDENTIALS", 1),
        7: ("failed", "NETWORK_ERROR", attempts),
    }
    probe.hidden(outcomes)
    assert "111:wrong" not in "".join(o.error_message or "" for o in outcomes)
