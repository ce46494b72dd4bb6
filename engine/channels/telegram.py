"""The ``telegram`` channel: sends each message as a text message through a Telegram bot.

Telegram Bot API ``POST {base_url}/bot{bot_token}/sendMessage`` with JSON
``{"chat_id", "text", "parse_mode"?, "disable_web_page_preview"?}`` (aiohttp).

Where things come from:

- ``channel_config``: ``bot_token`` (required, ``<digits>:<letters, digits, _ or ->`` as
  @BotFather issues it), ``base_url`` (default ``https://api.telegram.org``, e.g. a local Bot API
  server), ``parse_mode`` (``HTML``, ``MarkdownV2`` or the legacy ``Markdown``) and
  ``disable_web_page_preview`` (a boolean), both optional.
- The chat: ``message.recipient["telegram_chat_id"]``. A contact's chat id lives in its custom
  field ``telegram_chat_id`` (a bot learns it when the user starts it); the engine copies it
  into the recipient. A numeric id or an ``@channelusername``. Missing: ``NO_ADDRESS``.
- The text: ``message.body`` when it is a string, else its ``"text"`` field
  (``{"text": "Hi …"}``). No text: ``INVALID_MESSAGE``.

How answers map (``{"ok": false, "error_code", "description", "parameters"?}``):

- 2xx ``{"ok": true, "result": {"message_id": N}}``: sent, returns ``"N"``.
- 429: transient ``RATE_LIMITED``, ``retry_after`` from ``parameters.retry_after`` (else a
  ``Retry-After`` header).
- 5xx: transient ``HTTP_<status>``; timeout / network error: transient ``TIMEOUT`` /
  ``NETWORK_ERROR``.
- 403 "bot was blocked by the user" or "user is deactivated": permanent ``USER_BLOCKED``;
  any other 403 (kicked from the group, can't initiate conversation …): permanent ``FORBIDDEN``.
- 400 "chat not found", "user not found" or "PEER_ID_INVALID": permanent ``INVALID_RECIPIENT``;
  any other 400 (can't parse entities, message is too long …): permanent ``INVALID_REQUEST``
  with Telegram's description.
- 401 (the token is wrong or revoked): permanent ``INVALID_CREDENTIALS``.
- Any other 4xx: permanent ``TELEGRAM_<status>``.

The status is the body's ``error_code`` when it has one (Telegram sends the same number as the
HTTP status), else the HTTP status. Redirects are not followed.

The bot token is a credential and sits in the URL path: it never reaches a log line, an error
message (aiohttp puts the URL in some exception texts: it is cut out) or the rate-limit key,
which is ``telegram:`` plus a short SHA-256 digest of the token (one bot, one key: Telegram
limits each bot to about 30 messages per second).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from engine.channels.base import OutgoingMessage
from engine.channels.http import (
    HttpAnswer,
    HttpChannel,
    HttpRequest,
    detail,
    invalid_config,
    required_text,
    retry_after,
    status_error,
)
from engine.errors import DeliveryError, PermanentDeliveryError

PARSE_MODES = ("HTML", "MarkdownV2", "Markdown")
#: ``<bot id>:<secret>``, as @BotFather issues tokens.
TOKEN_SHAPE = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{1,200}")
#: Phrases of a 403 ``description`` meaning this user can never be reached by the bot.
BLOCKED_PHRASES = ("bot was blocked by the user", "user is deactivated")
#: Phrases of a 400 ``description`` meaning the chat id does not name a chat the bot can see.
UNKNOWN_CHAT_PHRASES = ("chat not found", "user not found", "peer_id_invalid")


def token_digest(token: str) -> str:
    """A short, non-reversible name for a bot token (the first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _chat_id(message: OutgoingMessage) -> int | str:
    chat_id = message.recipient.get("telegram_chat_id")
    if isinstance(chat_id, str):
        chat_id = chat_id.strip()
    if chat_id is None or chat_id == "" or isinstance(chat_id, bool):
        raise PermanentDeliveryError("contact has no telegram_chat_id", code="NO_ADDRESS")
    if not isinstance(chat_id, int | str):
        raise PermanentDeliveryError("telegram_chat_id is not an id", code="INVALID_RECIPIENT")
    return chat_id


def _payload(message: OutgoingMessage) -> dict[str, Any]:
    """The ``sendMessage`` parameters for this message."""
    text = required_text(message.body)
    payload: dict[str, Any] = {"chat_id": _chat_id(message), "text": text}
    if message.config.get("parse_mode"):
        payload["parse_mode"] = message.config["parse_mode"]
    if "disable_web_page_preview" in message.config:
        payload["disable_web_page_preview"] = bool(message.config["disable_web_page_preview"])
    return payload


def _retry_after(data: dict[str, Any], answer: HttpAnswer) -> float | None:
    """``parameters.retry_after`` of a 429 (seconds), else the ``Retry-After`` header."""
    parameters = data.get("parameters")
    seconds = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds)
    return retry_after(answer.headers)


def _permanent_code(status: int, description: str) -> str:
    """The error code of a 4xx other than 429."""
    text = description.lower()
    if status == 401:
        return "INVALID_CREDENTIALS"
    if status == 403:
        return "USER_BLOCKED" if any(p in text for p in BLOCKED_PHRASES) else "FORBIDDEN"
    if status == 400:
        unknown = any(p in text for p in UNKNOWN_CHAT_PHRASES)
        return "INVALID_RECIPIENT" if unknown else "INVALID_REQUEST"
    return f"TELEGRAM_{status}"


class TelegramChannel(HttpChannel):
    """Sends text messages through a Telegram bot (Bot API ``sendMessage``); see the module."""

    name = "telegram"
    default_base_url = "https://api.telegram.org"
    token_key = "bot_token"
    token_shape = TOKEN_SHAPE
    token_hint = ", a bot token as @BotFather issues it (<digits>:<letters, digits, _ or ->)"

    @staticmethod
    def check_options(config: dict[str, Any]) -> None:
        """Check ``parse_mode`` and ``disable_web_page_preview`` if set."""
        if config.get("parse_mode") is not None and config["parse_mode"] not in PARSE_MODES:
            raise invalid_config(f"telegram channel_config.parse_mode must be one of {PARSE_MODES}")
        preview = config.get("disable_web_page_preview")
        if preview is not None and not isinstance(preview, bool):
            raise invalid_config(
                "telegram channel_config.disable_web_page_preview must be a boolean"
            )

    def rate_key(self, config: dict[str, Any]) -> str:
        """One key per bot, named by a digest of its token (never the token)."""
        return f"telegram:{token_digest(str(config.get('bot_token', '')))}"

    def request(self, message: OutgoingMessage) -> HttpRequest:
        """``POST {base_url}/bot{bot_token}/sendMessage``; the token is the request's secret."""
        token = self.token(message.config)
        if not token:
            raise PermanentDeliveryError(
                "telegram bot_token is missing", code="INVALID_CHANNEL_CONFIG"
            )
        url = f"{self.base_url(message.config)}/bot{token}/sendMessage"
        return HttpRequest.json_post(url, _payload(message), secrets=(token,))

    def message_id(self, data: Any) -> str | None:
        """Telegram's ``result.message_id`` (as a string)."""
        result = data.get("result") if isinstance(data, dict) else None
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return str(message_id) if message_id is not None else None

    def refusal(self, answer: HttpAnswer, request: HttpRequest) -> DeliveryError:
        """Map a Bot API error (``error_code``, else the HTTP status) to a delivery error."""
        data = answer.data if isinstance(answer.data, dict) else {}
        error_code = data.get("error_code")
        status = error_code if isinstance(error_code, int) and error_code >= 400 else answer.status
        description = detail(data.get("description") or f"HTTP {answer.status}", request.secrets)
        return status_error(
            status,
            f"telegram: {description}",
            retry_after=_retry_after(data, answer) if status == 429 else None,
            code=_permanent_code(status, description),
        )
