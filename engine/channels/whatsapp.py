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
)
from engine.channels.statuses import MAX_STATUSES, StatusUpdate, parse_time
from engine.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    ValidationFailed,
)

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
    return {"type": "text", "text": {"body": required_text(body), "preview_url": False}}


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


def _describe(error: dict[str, Any], status: int, secrets: tuple[str, ...]) -> str:
    """A sentence for the error summary: Meta's message, details and trace id, no token."""
    text = str(error.get("message") or f"HTTP {status}")
    data = error.get("error_data")
    if isinstance(data, dict) and data.get("details"):
        text = f"{text}: {data['details']}"
    if error.get("fbtrace_id"):
        text = f"{text} (fbtrace_id {error['fbtrace_id']})"
    return detail(f"whatsapp: {text}", secrets)


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


class WhatsAppChannel(HttpChannel):
    """Sends text and template messages through the WhatsApp Cloud API; see the module."""

    name = "whatsapp"
    default_base_url = "https://graph.facebook.com"
    token_key = "access_token"

    @staticmethod
    def check_account(config: dict[str, Any]) -> None:
        """Require a numeric ``phone_number_id``, the sending number's id."""
        number = config.get("phone_number_id")
        if not isinstance(number, str | int) or not str(number).isdigit():
            raise invalid_config(
                "whatsapp channel needs channel_config.phone_number_id, the sending number's id"
            )

    @staticmethod
    def check_options(config: dict[str, Any]) -> None:
        """Check ``api_version`` if set."""
        version = config.get("api_version")
        if version is not None and not re.fullmatch(r"v[0-9]+\.[0-9]+", str(version)):
            raise invalid_config("whatsapp channel_config.api_version must look like v21.0")

    def rate_key(self, config: dict[str, Any]) -> str:
        """One key per sending phone number."""
        return f"whatsapp:{config.get('phone_number_id', '')}"

    def request(self, message: OutgoingMessage) -> HttpRequest:
        """``POST {base_url}/{api_version}/{phone_number_id}/messages`` with a bearer token."""
        config = message.config
        token = self.token(config)
        if not token or not config.get("phone_number_id"):
            raise PermanentDeliveryError(
                "whatsapp access_token or phone_number_id is missing",
                code="INVALID_CHANNEL_CONFIG",
            )
        version = config.get("api_version") or DEFAULT_API_VERSION
        url = f"{self.base_url(config)}/{version}/{config['phone_number_id']}/messages"
        bearer = {"Authorization": f"Bearer {token}"}
        return HttpRequest.json_post(url, _payload(message), secrets=(token,), headers=bearer)

    def message_id(self, data: Any) -> str | None:
        """The id (``wamid…``) of the first of the answer's ``messages``."""
        messages = data.get("messages") if isinstance(data, dict) else None
        first = messages[0] if isinstance(messages, list) and messages else None
        return str(first["id"]) if isinstance(first, dict) and first.get("id") else None

    def refusal(self, answer: HttpAnswer, request: HttpRequest) -> DeliveryError:
        """Map a Cloud API error by its ``code`` first (Meta's advice), then the HTTP status."""
        error = answer.data.get("error") if isinstance(answer.data, dict) else None
        error = error if isinstance(error, dict) else {}
        code = _error_code(error)
        text = _describe(error, answer.status, request.secrets)
        if code in RATE_LIMIT_CODES or answer.status == 429:
            return TransientDeliveryError(
                text, code="RATE_LIMITED", retry_after=retry_after(answer.headers)
            )
        permanent = _permanent_code(code, answer.status)
        if permanent is not None:
            return PermanentDeliveryError(text, code=permanent)
        transient = f"WHATSAPP_{code}" if code is not None else f"HTTP_{answer.status}"
        return TransientDeliveryError(text, code=transient, retry_after=retry_after(answer.headers))


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
