"""What the HTTP channels share: one lazy aiohttp session, one POST, and answer parsing.

The session (a connection pool) is created on first use on the process's event loop, where it
must live, and closed on that loop. :func:`post` turns timeouts and network failures into
transient delivery errors, with any secret of the request (a bot token in the URL path, a
bearer token) cut out of the message: aiohttp puts the whole URL in some exception texts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from engine.aio import EventLoopThread
from engine.errors import TransientDeliveryError

#: What stands in for a secret cut out of a message.
REDACTED = "<redacted>"
#: Longest provider text kept in an error message (error summaries hold 500 characters).
MAX_DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A provider's answer: status, headers, and the body as JSON (``None`` if it is not JSON)."""

    status: int
    headers: Mapping[str, str]
    data: Any


class LazySession:
    """One aiohttp session per channel instance, built lazily on the event loop's thread."""

    def __init__(self, loop: EventLoopThread, timeout_s: float, max_connections: int) -> None:
        self._loop = loop
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        """Return the session, creating it on first use (call this on the event loop)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
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
    allow_redirects: bool = False,
) -> HttpAnswer:
    """POST ``body`` and return the answer.

    Args:
        secrets: strings that must never reach an error message; when given, aiohttp's
            exception is also kept out of the error's chain (its text may hold the URL).
        read_errors: read the body of non-2xx answers too (providers explain errors there).
        allow_redirects: follow redirects; off by default, as a redirect could carry a secret
            (the URL path, a header) to another host.

    Raises:
        TransientDeliveryError: ``TIMEOUT`` or ``NETWORK_ERROR``.
    """
    secrets = tuple(s for s in secrets if s)
    try:
        request = session.post(url, data=body, headers=headers, allow_redirects=allow_redirects)
        async with request as r:
            raw = await r.read() if r.status < 300 or read_errors else b""
            return HttpAnswer(r.status, r.headers, json_or_none(raw))
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


def message_text(body: Any) -> str | None:
    """The text of a rendered message: the body itself if a string, else its ``text`` field."""
    if isinstance(body, dict):
        body = body.get("text")
    return body if isinstance(body, str) and body.strip() else None


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
