"""The ``whatsapp`` channel: sends each message through the WhatsApp Cloud API (aiohttp).

``POST {base_url}/{api_version}/{phone_number_id}/messages`` with
``Authorization: Bearer {access_token}`` and JSON
``{"messaging_product": "whatsapp", "recipient_type": "individual", "to", "type", …}``.

Where things come from:

- ``channel_config``: ``access_token`` and ``phone_number_id`` (the sending number's id, digits)
  are required; ``base_url`` (default ``https://graph.facebook.com``) and ``api_version``
  (default ``v21.0``) are optional.
- The recipient: ``message.recipient["phone"]``, sent as E.164 digits without ``+`` (spaces,
  dashes, dots and brackets dropped). Missing: ``NO_ADDRESS``; not 7 to 15 digits:
  ``INVALID_RECIPIENT``.
- The message: a string, or ``{"text": …}``, is a text message (``preview_url`` off). An object
  with ``"template"`` is a template message: ``{"template": {"name", "language": {"code"} or a
  code string, "components"?}}``. Neither: ``INVALID_MESSAGE``.

How answers map: a 2xx ``{"messages": [{"id": "wamid…"}]}`` is sent and returns the id. An error
carries ``{"error": {"message", "type", "code", "error_subcode"?, "error_data"?, "fbtrace_id"}}``
and is classified by ``code`` first (Meta's advice), then by HTTP status:

- ``4``, ``613``, ``80007``, ``130429`` (throughput), ``131048`` (spam rate limit), ``131056``
  (pair rate limit), or HTTP 429: transient ``RATE_LIMITED``, ``retry_after`` from a
  ``Retry-After`` header if any (Graph rarely sends one: then the Sender's backoff applies).
- ``131026`` (message undeliverable): permanent ``INVALID_RECIPIENT``.
- ``131047`` (more than 24 hours since the user last wrote): permanent ``REENGAGEMENT_REQUIRED``.
- ``132xxx`` (``132000`` parameter count, ``132001`` template does not exist …): permanent
  ``TEMPLATE_ERROR``.
- ``190`` (access token expired or invalid), or HTTP 401: permanent ``INVALID_CREDENTIALS``.
- ``1``, ``2``, ``131000`` (something went wrong), ``131016`` (service unavailable),
  ``133004`` (server temporarily unavailable), or HTTP 5xx: transient ``WHATSAPP_<code>``
  (``HTTP_<status>`` when the body has no code).
- Any other error (``131051`` unsupported type, ``131052`` media download …): permanent
  ``WHATSAPP_<code>`` (``HTTP_<status>`` without a code).
- Timeout / network error: transient ``TIMEOUT`` / ``NETWORK_ERROR``.

The access token never reaches a log line or an error message (cut out of provider texts too:
Graph quotes a malformed token back). The rate-limit key is ``whatsapp:{phone_number_id}``:
Cloud API throughput is per sending number. Redirects are not followed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.channels.http import (
    HttpAnswer,
    LazySession,
    detail,
    is_http_url,
    message_text,
    post,
    retry_after,
)
from engine.channels.statuses import MAX_STATUSES, StatusUpdate, parse_time
from engine.config import Settings
from engine.errors import PermanentDeliveryError, TransientDeliveryError, ValidationFailed

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
#: Error codes that mean "slow down": retried after the provider's hint or the backoff.
RATE_LIMIT_CODES = frozenset({4, 613, 80007, 130429, 131048, 131056})
#: Error codes that mean "Meta had a problem": retried.
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 133004})
#: Error codes with a name of their own (permanent).
PERMANENT_CODES = {
    131026: "INVALID_RECIPIENT",
    131047: "REENGAGEMENT_REQUIRED",
    190: "INVALID_CREDENTIALS",
}
PHONE_SEPARATORS = re.compile(r"[\s\-().]")
PHONE_DIGITS = re.compile(r"[0-9]{7,15}")


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="INVALID_CHANNEL_CONFIG")


def _to(message: OutgoingMessage) -> str:
    """The recipient's phone as E.164 digits without ``+``."""
    phone = message.recipient.get("phone")
    if phone is None or (isinstance(phone, str) and not phone.strip()):
        raise PermanentDeliveryError("contact has no phone number", code="NO_ADDRESS")
    digits = PHONE_SEPARATORS.sub("", str(phone)).removeprefix("+")
    if not PHONE_DIGITS.fullmatch(digits):
        raise PermanentDeliveryError(
            "phone number is not an international number", code="INVALID_RECIPIENT"
        )
    return digits


def _template(spec: Any) -> dict[str, Any]:
    """The ``template`` object of a template message, from the rendered body's ``template``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise PermanentDeliveryError("template message needs a name", code="INVALID_MESSAGE")
    language = spec.get("language")
    code = language.get("code") if isinstance(language, dict) else language
    if not isinstance(code, str) or not code:
        raise PermanentDeliveryError(
            "template message needs a language code", code="INVALID_MESSAGE"
        )
    template: dict[str, Any] = {"name": spec["name"], "language": {"code": code}}
    components = spec.get("components")
    if components is not None:
        if not isinstance(components, list):
            raise PermanentDeliveryError(
                "template components must be a list", code="INVALID_MESSAGE"
            )
        template["components"] = components
    return template


def _content(body: Any) -> dict[str, Any]:
    """The type-specific part of the request: a template or a text message."""
    if isinstance(body, dict) and "template" in body:
        return {"type": "template", "template": _template(body["template"])}
    text = message_text(body)
    if text is None:
        raise PermanentDeliveryError("message has no text to send", code="INVALID_MESSAGE")
    return {"type": "text", "text": {"body": text, "preview_url": False}}


def _payload(message: OutgoingMessage) -> dict[str, Any]:
    """The Cloud API request body for this message."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": _to(message),
        **_content(message.body),
    }


def _error_code(error: dict[str, Any]) -> int | None:
    code = error.get("code")
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _describe(error: dict[str, Any], status: int, token: str) -> str:
    """A sentence for the error summary: Meta's message, details and trace id, no token."""
    text = str(error.get("message") or f"HTTP {status}")
    data = error.get("error_data")
    if isinstance(data, dict) and data.get("details"):
        text = f"{text}: {data['details']}"
    if error.get("fbtrace_id"):
        text = f"{text} (fbtrace_id {error['fbtrace_id']})"
    return detail(f"whatsapp: {text}", [token])


def _permanent_code(code: int | None, status: int) -> str | None:
    """The code of an error never worth retrying, or ``None`` when it is transient."""
    if code in PERMANENT_CODES:
        return PERMANENT_CODES[code]
    if code is not None and 132000 <= code < 133000:
        return "TEMPLATE_ERROR"
    if code in TRANSIENT_CODES or status >= 500:
        return None
    if status == 401:
        return "INVALID_CREDENTIALS"
    return f"WHATSAPP_{code}" if code is not None else f"HTTP_{status}"


def _message_id(data: Any) -> str | None:
    messages = data.get("messages") if isinstance(data, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    return str(first["id"]) if isinstance(first, dict) and first.get("id") else None


def _classify(answer: HttpAnswer, token: str) -> str | None:
    """Map a Cloud API answer to the message id, or raise the matching delivery error."""
    if answer.status < 300:
        return _message_id(answer.data)
    error = answer.data.get("error") if isinstance(answer.data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = _error_code(error)
    text = _describe(error, answer.status, token)
    if code in RATE_LIMIT_CODES or answer.status == 429:
        raise TransientDeliveryError(
            text, code="RATE_LIMITED", retry_after=retry_after(answer.headers)
        )
    permanent = _permanent_code(code, answer.status)
    if permanent is not None:
        raise PermanentDeliveryError(text, code=permanent)
    transient = f"WHATSAPP_{code}" if code is not None else f"HTTP_{answer.status}"
    raise TransientDeliveryError(text, code=transient, retry_after=retry_after(answer.headers))


class WhatsAppChannel:
    """Sends text and template messages through the WhatsApp Cloud API; see the module.

    One aiohttp session (connection pool) per process, on the process's event loop.
    """

    name = "whatsapp"

    @classmethod
    def from_settings(cls, settings: Settings, loop: EventLoopThread) -> WhatsAppChannel:
        """Build the process's instance from the settings (the registry calls this)."""
        return cls(loop, settings.http_timeout_s, settings.http_max_connections)

    def __init__(self, loop: EventLoopThread, timeout_s: float, max_connections: int) -> None:
        self._session = LazySession(loop, timeout_s, max_connections)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Require ``access_token`` and a numeric ``phone_number_id``; check the optional rest.

        Messages never quote the token.
        """
        token = config.get("access_token")
        if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token):
            raise _invalid("whatsapp channel needs channel_config.access_token")
        number = config.get("phone_number_id")
        if not isinstance(number, str | int) or not str(number).isdigit():
            raise _invalid(
                "whatsapp channel needs channel_config.phone_number_id, the sending number's id"
            )
        if "base_url" in config and not is_http_url(config["base_url"]):
            raise _invalid("whatsapp channel_config.base_url must be an http(s) URL")
        version = config.get("api_version")
        if version is not None and not re.fullmatch(r"v[0-9]+\.[0-9]+", str(version)):
            raise _invalid("whatsapp channel_config.api_version must look like v21.0")

    def rate_key(self, config: dict[str, Any]) -> str:
        """One key per sending phone number."""
        return f"whatsapp:{config.get('phone_number_id', '')}"

    async def send_async(self, message: OutgoingMessage) -> str | None:
        """Send the message; return its WhatsApp message id (``wamid…``)."""
        config = message.config
        token = str(config.get("access_token") or "")
        if not token or not config.get("phone_number_id"):
            raise PermanentDeliveryError(
                "whatsapp access_token or phone_number_id is missing",
                code="INVALID_CHANNEL_CONFIG",
            )
        base_url = str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        version = config.get("api_version") or DEFAULT_API_VERSION
        url = f"{base_url}/{version}/{config['phone_number_id']}/messages"
        body = json.dumps(_payload(message), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        answer = await post(self._session.get(), url, body, headers, secrets=[token])
        return _classify(answer, token)

    def close(self) -> None:
        """Close the connection pool (on the loop that owns it)."""
        self._session.close()


# --- status callbacks ----------------------------------------------------------------------


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def parse_statuses(payload: Any) -> list[StatusUpdate]:
    """The statuses of a WhatsApp Cloud API webhook (``entry[].changes[].value.statuses[]``).

    Messages from users and other fields are ignored.

    Raises:
        ValidationFailed: ``INVALID_PAYLOAD`` when the body is not a JSON object.
    """
    if not isinstance(payload, dict):
        raise ValidationFailed("a webhook body is a JSON object", code="INVALID_PAYLOAD")
    updates = []
    for entry in _dicts(payload.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            for status in _dicts(value.get("statuses") if isinstance(value, dict) else None):
                if isinstance(status.get("id"), str) and isinstance(status.get("status"), str):
                    updates.append(_whatsapp_update(status))
    return updates[:MAX_STATUSES]


def _whatsapp_update(status: dict[str, Any]) -> StatusUpdate:
    data: dict[str, Any] = {k: status[k] for k in ("recipient_id", "errors") if k in status}
    return StatusUpdate(
        status["id"], status["status"], parse_time(status.get("timestamp"), strict=False), data
    )
