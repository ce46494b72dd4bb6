"""What the HTTP channels share: :class:`HttpChannel`, one lazy aiohttp session, one POST.

A provider channel (``telegram``, ``whatsapp``, ``webhook``) subclasses :class:`HttpChannel` and
says only what is its own: how a message becomes a request (:meth:`HttpChannel.request`), and
how the provider's answer reads (:meth:`HttpChannel.message_id` for a 2xx,
:meth:`HttpChannel.refusal` for anything else, often through :func:`status_error`). The base
builds the process's instance from the settings (timeout, connection limit), checks the
credential (:attr:`HttpChannel.token_key`) and ``base_url`` of a config, sends, and closes.

The session (a connection pool) is created on first use on the process's event loop, where it
must live, and closed on that loop. It connects only where the outbound guard allows
(:mod:`engine.outbound`: internal addresses refused at connect time, ``TargetRefused`` is a
permanent ``OUTBOUND_TARGET_REFUSED``); redirects are never followed (a 3xx is a permanent
``REDIRECT_NOT_FOLLOWED``) and answers are read up to ``MAX_RESPONSE_BYTES``.
:func:`post` turns timeouts and network failures into transient delivery errors, with any
secret of the request (a bot token in the URL path, a bearer token) cut out of the message:
aiohttp puts the whole URL in some exception texts.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import urlsplit

import aiohttp

from engine.aio import EventLoopThread
from engine.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    ValidationFailed,
)
from engine.logging import get_logger
from engine.outbound import OutboundPolicy, check_configured_url
from engine.outbound.aio_http import guarded_session, read_capped
from engine.outbound.policy import DEFAULT_MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    from engine.channels.base import OutgoingMessage
    from engine.config import Settings

#: What stands in for a secret cut out of a message.
REDACTED = "<redacted>"
#: Longest provider text kept in an error message (error summaries hold 500 characters).
MAX_DETAIL_CHARS = 300
#: The header of a JSON request body.
JSON_CONTENT = {"Content-Type": "application/json"}

log = get_logger()


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A provider's answer: status, headers, and the body as JSON (``None`` if it is not JSON)."""

    status: int
    headers: Mapping[str, str]
    data: Any


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What a channel POSTs for one message.

    Attributes:
        secrets: what must never reach an error message (a token in ``url`` or ``headers``).
    """

    url: str
    body: bytes
    headers: Mapping[str, str]
    secrets: tuple[str, ...] = ()

    @classmethod
    def json_post(
        cls,
        url: str,
        payload: Any,
        secrets: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> HttpRequest:
        """A POST of ``payload`` as UTF-8 JSON (non-ASCII text as it is, not escaped)."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        return cls(url, body, {**JSON_CONTENT, **(headers or {})}, secrets)


class HttpChannel(ABC):
    """A channel that POSTs each message to a provider over HTTP; see the module.

    One aiohttp session (connection pool) per process, on the process's event loop, with the
    settings' ``http_timeout_s`` per request and ``http_max_connections``. A subclass sets
    :attr:`name`, :attr:`token_key` and :attr:`default_base_url` where its provider has them,
    overrides :meth:`check_account` and :meth:`check_options` where it has more settings, and
    implements :meth:`rate_key`, :meth:`request`, :meth:`message_id` and :meth:`refusal`.
    """

    #: Registry name, as campaigns spell it.
    name: str
    #: The provider's API when ``channel_config.base_url`` does not name another (``""``: the
    #: channel has no ``base_url``).
    default_base_url: ClassVar[str] = ""
    #: The ``channel_config`` key of the provider's credential (``""``: none): required, a
    #: string of :attr:`token_shape`, and never quoted in an error message.
    token_key: ClassVar[str] = ""
    #: What a token looks like (by default: any text without white space).
    token_shape: ClassVar[re.Pattern[str]] = re.compile(r"\S+")
    #: What a valid token is, appended to the message that asks for one.
    token_hint: ClassVar[str] = ""
    #: Read the body of non-2xx answers (providers explain errors there).
    read_errors: ClassVar[bool] = True
    #: The ``channel_config`` keys holding a URL the channel connects to.
    url_keys: ClassVar[tuple[str, ...]] = ("base_url",)

    @classmethod
    def from_settings(cls, settings: Settings, loop: EventLoopThread) -> Self:
        """Build the process's instance from the settings (the registry calls this)."""
        return cls(
            loop,
            settings.http_timeout_s,
            settings.http_max_connections,
            OutboundPolicy.from_settings(settings),
        )

    def __init__(
        self,
        loop: EventLoopThread,
        timeout_s: float,
        max_connections: int,
        policy: OutboundPolicy | None = None,
    ) -> None:
        #: Where it may connect; without one, nowhere internal.
        self._policy = policy or OutboundPolicy()
        self._session = LazySession(loop, timeout_s, max_connections, self._policy)

    @classmethod
    def check_targets(cls, config: dict[str, Any], policy: OutboundPolicy) -> None:
        """Refuse a configured URL (:attr:`url_keys`) that names an internal address.

        Raises:
            ValidationFailed: ``OUTBOUND_TARGET_REFUSED``.
        """
        for key in cls.url_keys:
            if isinstance(config.get(key), str):
                check_configured_url(config[key], policy, f"{cls.name} channel_config.{key}")

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Raise :class:`~engine.errors.ValidationFailed` when ``config`` cannot work.

        In order: the token (:attr:`token_key`), :meth:`check_account`, ``base_url`` (for a
        provider with a :attr:`default_base_url`), then :meth:`check_options`. Messages never
        quote a secret. Where the URLs point is :meth:`check_targets`'s job.
        """
        token = config.get(cls.token_key)
        if cls.token_key and (not isinstance(token, str) or not cls.token_shape.fullmatch(token)):
            raise invalid_config(
                f"{cls.name} channel needs channel_config.{cls.token_key}{cls.token_hint}"
            )
        cls.check_account(config)
        if cls.default_base_url and "base_url" in config and not is_http_url(config["base_url"]):
            raise invalid_config(f"{cls.name} channel_config.base_url must be an http(s) URL")
        cls.check_options(config)

    @staticmethod  # noqa: B027 - a hook, not abstract: a token is account enough for most
    def check_account(config: dict[str, Any]) -> None:
        """Require what else names the account (or receiver) messages go through."""

    @staticmethod  # noqa: B027 - a hook, not abstract: most providers have no options
    def check_options(config: dict[str, Any]) -> None:
        """Check the provider's optional settings (none unless a subclass has some)."""

    @abstractmethod
    def rate_key(self, config: dict[str, Any]) -> str:
        """Return the rate-limit key: the provider account this config sends through."""

    @abstractmethod
    def request(self, message: OutgoingMessage) -> HttpRequest:
        """The request that delivers ``message``.

        Raises:
            PermanentDeliveryError: the message cannot be sent (no address, no text …).
        """

    @abstractmethod
    def message_id(self, data: Any) -> str | None:
        """The provider's message id in a 2xx answer's JSON (``None`` if it has none)."""

    @abstractmethod
    def refusal(self, answer: HttpAnswer, request: HttpRequest) -> DeliveryError:
        """The delivery error a non-2xx answer to ``request`` means (it quotes no secret)."""

    @classmethod
    def token(cls, config: dict[str, Any]) -> str:
        """The credential in ``config`` (``""`` when there is none)."""
        return str(config.get(cls.token_key) or "")

    @classmethod
    def base_url(cls, config: dict[str, Any]) -> str:
        """``channel_config.base_url``, else :attr:`default_base_url`; no trailing slash."""
        return str(config.get("base_url") or cls.default_base_url).rstrip("/")

    async def send_async(self, message: OutgoingMessage) -> str | None:
        """POST the message; return the provider's message id.

        Raises:
            TransientDeliveryError: ``TIMEOUT``, ``NETWORK_ERROR`` or a refusal worth retrying.
            PermanentDeliveryError: the message cannot be sent, or the provider refused it.
        """
        request = self.request(message)
        answer = await post(
            self._session.get(),
            request.url,
            request.body,
            request.headers,
            request.secrets,
            read_errors=self.read_errors,
            max_bytes=self._policy.max_response_bytes,
        )
        if answer.status < 300:
            return self.message_id(answer.data)
        if answer.status < 400:
            raise redirect_refused(self.name, answer.status)
        raise self.refusal(answer, request)

    def close(self) -> None:
        """Close the connection pool (on the loop that owns it)."""
        self._session.close()


class LazySession:
    """One guarded aiohttp session per channel instance, built lazily on the event loop's thread."""

    def __init__(
        self,
        loop: EventLoopThread,
        timeout_s: float,
        max_connections: int,
        policy: OutboundPolicy,
    ) -> None:
        self._loop = loop
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._policy = policy
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        """Return the session, creating it on first use (call this on the event loop)."""
        if self._session is None:
            self._session = guarded_session(self._policy, self._timeout, self._max_connections)
        return self._session

    def close(self) -> None:
        """Close the connection pool (on the loop that owns it)."""
        if self._session is not None:
            self._loop.run(self._session.close())
            self._session = None


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``<redacted>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def detail(text: Any, secrets: Iterable[str] = ()) -> str:
    """A provider's free text, redacted and shortened, fit for an error message."""
    return redact(str(text), secrets)[:MAX_DETAIL_CHARS]


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    secrets: Iterable[str] = (),
    *,
    read_errors: bool = True,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> HttpAnswer:
    """POST ``body`` and return the answer; redirects are never followed (a redirect could
    carry the body, a secret in the URL path or a header to another host, unchecked).

    Args:
        secrets: strings that must never reach an error message; when given, aiohttp's
            exception is also kept out of the error's chain (its text may hold the URL).
        read_errors: read the body of non-2xx answers too (providers explain errors there).
        max_bytes: most bytes of the body read; a longer body counts as none (``data`` is
            ``None``), the status still stands.

    Raises:
        TransientDeliveryError: ``TIMEOUT`` or ``NETWORK_ERROR``.
        TargetRefused: the host is, or resolves to, an address the outbound guard refuses.
    """
    secrets = tuple(s for s in secrets if s)
    try:
        request = session.post(url, data=body, headers=headers, allow_redirects=False)
        async with request as r:
            raw = await read_capped(r, max_bytes) if r.status < 300 or read_errors else b""
            if raw is None:
                log.warning("http.answer_too_large", status=r.status, max_bytes=max_bytes)
            return HttpAnswer(r.status, r.headers, json_or_none(raw or b""))
    except TimeoutError as exc:
        if not secrets:
            raise TransientDeliveryError("timeout", code="TIMEOUT") from exc
        error = TransientDeliveryError("timeout", code="TIMEOUT")
    except aiohttp.ClientError as exc:
        if not secrets:
            raise TransientDeliveryError(f"network error: {exc}", code="NETWORK_ERROR") from exc
        text = redact(f"{type(exc).__name__}: {exc}", secrets)
        error = TransientDeliveryError(f"network error: {text}", code="NETWORK_ERROR")
    # Raised outside the handler, so neither __cause__ nor __context__ holds aiohttp's exception.
    raise error


def status_error(
    status: int, text: str, *, retry_after: float | None = None, code: str | None = None
) -> DeliveryError:
    """What a refusal means by its HTTP status alone.

    429 is a transient ``RATE_LIMITED`` and 5xx a transient ``HTTP_<status>``, both to be
    retried after ``retry_after`` seconds if given; any other status is permanent, with ``code``
    (``HTTP_<status>`` when ``None``).
    """
    if status == 429:
        return TransientDeliveryError(text, code="RATE_LIMITED", retry_after=retry_after)
    if status >= 500:
        return TransientDeliveryError(text, code=f"HTTP_{status}", retry_after=retry_after)
    return PermanentDeliveryError(text, code=code or f"HTTP_{status}")


def redirect_refused(channel: str, status: int) -> PermanentDeliveryError:
    """The error of a 3xx answer: redirects are not followed (``REDIRECT_NOT_FOLLOWED``)."""
    return PermanentDeliveryError(
        f"{channel}: the receiver answered {status}, a redirect; redirects are not followed "
        "(configure the final URL)",
        code="REDIRECT_NOT_FOLLOWED",
    )


def invalid_config(message: str) -> ValidationFailed:
    """The error of a ``channel_config`` that cannot work (``INVALID_CHANNEL_CONFIG``)."""
    return ValidationFailed(message, code="INVALID_CHANNEL_CONFIG")


def json_or_none(raw: bytes) -> Any:
    """The body as JSON if it is JSON: a 2xx with any other body is still a success."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` header in seconds, if it is a number."""
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def required_text(body: Any) -> str:
    """The text of a rendered message: the body itself if a string, else its ``text`` field.

    Raises:
        PermanentDeliveryError: ``INVALID_MESSAGE`` when there is no text, or only blanks.
    """
    if isinstance(body, dict):
        body = body.get("text")
    if not isinstance(body, str) or not body.strip():
        raise PermanentDeliveryError("message has no text to send", code="INVALID_MESSAGE")
    return body


def is_http_url(url: Any) -> bool:
    """True for an ``http(s)://host[:port]…`` URL (a port out of range is not one)."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when the port is not a valid number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
