"""The ``email`` channel: sends each message over SMTP (aiosmtplib), many per connection.

Configuration (``channel_config``):

- ``host`` (required), ``port`` (587; 465 with ``security: tls``).
- ``security``: ``starttls`` (default: STARTTLS is required, never silently skipped), ``tls``
  (implicit TLS, usually port 465) or ``none`` (plain text). ``none`` is accepted only for a
  loopback host (``localhost``, ``127.0.0.0/8``, ``::1``): tests and a local relay, never a
  password or a message in clear over a network.
- ``username`` / ``password``: AUTH after the TLS upgrade, when given (both or neither).
- ``tls_verify`` (true) and ``tls_ca_file``: check the server's certificate, against the system
  CAs plus this PEM file (a private relay's CA).
- ``from_email`` (required) and ``from_name``, ``reply_to``, ``subject`` (the default subject).
- ``timeout_s``: per connect and per SMTP command; ``connections``: pooled connections per server
  (4 by default).
- ``unsubscribe_url``: ``List-Unsubscribe`` (and one-click ``List-Unsubscribe-Post``); a
  per-recipient ``recipient["unsubscribe_url"]`` wins over the campaign's.

The message body is a string (plain text) or ``{"subject", "text", "html"}``: both parts make a
``multipart/alternative``; HTML alone gets a plain-text part derived by a simple tag strip.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib
from email_validator import EmailNotValidError, validate_email

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.config import Settings
from engine.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    ValidationFailed,
)

SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_CONNECTIONS = 4
MAX_CONNECTIONS = 50
DEFAULT_TIMEOUT_S = 30.0
#: Longest ``timeout_s`` a campaign may set: a server that accepts and never answers must not
#: hold a worker's chunk for longer than this per command.
MAX_TIMEOUT_S = 120.0
#: Permanent replies to RCPT TO that mean "no such mailbox" (user unknown, relaying denied …).
INVALID_RECIPIENT_CODES = frozenset({550, 551, 553, 554})
#: Longest server reply text kept in an error message.
MAX_REPLY_TEXT = 300


# --- configuration ---------------------------------------------------------------------------


def _invalid(text: str) -> ValidationFailed:
    return ValidationFailed(f"email channel: {text}", code="INVALID_CHANNEL_CONFIG")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_server(config: dict[str, Any]) -> None:
    host = config.get("host")
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host):
        raise _invalid("channel_config.host, the SMTP server's name, is required")
    port = config.get("port")
    if port is not None and (not _is_int(port) or not 0 < port < 65536):
        raise _invalid(f"channel_config.port must be a TCP port (got {port!r})")
    security = config.get("security", "starttls")
    if security not in SECURITY_MODES:
        raise _invalid(f"channel_config.security must be one of {', '.join(SECURITY_MODES)}")
    if security == "none" and not is_loopback(host):
        raise _invalid("security 'none' (plain text) is only allowed for a loopback host")


def _check_credentials(config: dict[str, Any]) -> None:
    username, password = config.get("username"), config.get("password")
    if username is None and password is None:
        return
    if not isinstance(username, str) or not username or not isinstance(password, str):
        raise _invalid("channel_config.username and password go together, both strings")


def _check_tls(config: dict[str, Any]) -> None:
    if not isinstance(config.get("tls_verify", True), bool):
        raise _invalid("channel_config.tls_verify must be true or false")
    ca_file = config.get("tls_ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not ca_file):
        raise _invalid("channel_config.tls_ca_file must be the path of a PEM file")


def _check_limits(config: dict[str, Any]) -> None:
    timeout = config.get("timeout_s")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_S
    ):
        raise _invalid(
            f"channel_config.timeout_s must be a number of seconds above 0 and at most "
            f"{MAX_TIMEOUT_S:g} (got {timeout!r})"
        )
    connections = config.get("connections")
    if connections is not None and (
        not _is_int(connections) or not 0 < connections <= MAX_CONNECTIONS
    ):
        raise _invalid(f"channel_config.connections must be an integer from 1 to {MAX_CONNECTIONS}")


def _check_addresses(config: dict[str, Any]) -> None:
    for key, required in (("from_email", True), ("reply_to", False)):
        value = config.get(key)
        if value is None and not required:
            continue
        if not isinstance(value, str):
            raise _invalid(f"channel_config.{key}, an email address, is required")
        try:
            _address(value)
        except EmailNotValidError as exc:
            raise _invalid(f"channel_config.{key} is not a valid address: {exc}") from None


def _check_texts(config: dict[str, Any]) -> None:
    for key in ("from_name", "subject"):
        if config.get(key) is not None and not isinstance(config[key], str):
            raise _invalid(f"channel_config.{key} must be a string")
    url = config.get("unsubscribe_url")
    if url is not None and (
        not isinstance(url, str) or urlsplit(url).scheme not in ("https", "http", "mailto")
    ):
        raise _invalid("channel_config.unsubscribe_url must be an https:, http: or mailto: URL")


@lru_cache(maxsize=1024)
def _address(text: str) -> tuple[str, str]:
    """``(address, ASCII domain)`` of a valid email address; raises ``EmailNotValidError``.

    The address is ASCII (IDNA domain) whenever its local part is, so it needs no SMTPUTF8.
    """
    info = validate_email(text, check_deliverability=False)
    return info.ascii_email or info.normalized, info.ascii_domain


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """One SMTP server and account: the key of a connection pool."""

    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    security: str
    tls_verify: bool
    tls_ca_file: str | None
    timeout_s: float
    connections: int

    @classmethod
    def from_config(cls, config: dict[str, Any], timeout_s: float, connections: int) -> _Endpoint:
        """The endpoint a (validated) config names; the channel's defaults fill the gaps."""
        security = config.get("security", "starttls")
        return cls(
            host=config["host"],
            port=config.get("port") or (465 if security == "tls" else 587),
            username=config.get("username"),
            password=config.get("password"),
            security=security,
            tls_verify=config.get("tls_verify", True),
            tls_ca_file=config.get("tls_ca_file"),
            timeout_s=float(config.get("timeout_s") or timeout_s),
            connections=config.get("connections") or connections,
        )

    def client(self) -> aiosmtplib.SMTP:
        """A new, unconnected client; ``connect()`` does TLS and AUTH as configured."""
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            validate_certs=self.tls_verify,
            cert_bundle=self.tls_ca_file,
            timeout=self.timeout_s,
        )


# --- the message -----------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    """Collects an HTML document's text: block tags become line breaks, links keep their URL."""

    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "table", "ul", "ol", "blockquote", "hr", "section"}
        | {"article", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    SKIPPED = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self._href and not self._href.startswith("#"):
            self.parts.append(f" ({self._href})")
            self._href = None

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """A plain-text rendering of ``html``: a simple tag strip, not a layout engine.

    Example:
        >>> html_to_text("<p>Hi <b>Ana</b></p><p>See <a href='https://x.io'>this</a></p>")
        'Hi Ana\\n\\nSee this (https://x.io)'
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines).strip()
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def message_id(idempotency_key: str, domain: str) -> str:
    """The ``Message-ID`` of one delivery: the same on every retry of it."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"


def _one_line(value: Any) -> str:
    """A header-safe string: contact data must not add header lines."""
    return " ".join(str(value).split())


def _recipient(recipient: dict[str, Any]) -> str:
    email = recipient.get("email")
    if not email:
        raise PermanentDeliveryError("the contact has no email address", code="NO_ADDRESS")
    try:
        return _address(str(email))[0]
    except EmailNotValidError as exc:
        raise PermanentDeliveryError(
            f"not a valid email address: {exc}", code="INVALID_RECIPIENT"
        ) from None


def _content(body: Any, config: dict[str, Any]) -> tuple[str, str, str | None]:
    """``(subject, text, html)`` of a body: a string, or an object with subject/text/html."""
    subject = config.get("subject") or ""
    if isinstance(body, str):
        return subject, body, None
    if not isinstance(body, dict) or not (body.get("text") or body.get("html")):
        raise PermanentDeliveryError(
            "an email body is a string or an object with text and/or html",
            code="INVALID_MESSAGE",
        )
    html = str(body["html"]) if body.get("html") else None
    text = str(body["text"]) if body.get("text") else html_to_text(html or "")
    return str(body.get("subject") or subject), text, html


def _unsubscribe_headers(email: EmailMessage, url: Any) -> None:
    if not url:
        return
    url = _one_line(url)
    email["List-Unsubscribe"] = f"<{url}>"
    if urlsplit(url).scheme in ("https", "http"):  # RFC 8058 one-click is a POST to the URL
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def build_email(message: OutgoingMessage) -> tuple[EmailMessage, str, str]:
    """The MIME message of one delivery, with its envelope ``(sender, recipient)``.

    Raises:
        PermanentDeliveryError: no (valid) address (``NO_ADDRESS``, ``INVALID_RECIPIENT``) or an
            unusable body (``INVALID_MESSAGE``).
    """
    config = message.config
    to = _recipient(message.recipient)
    sender, domain = _address(str(config["from_email"]))
    subject, text, html = _content(message.body, config)
    email = EmailMessage()
    email["Subject"] = _one_line(subject)
    email["From"] = Address(_one_line(config.get("from_name") or ""), addr_spec=sender)
    email["To"] = Address(_one_line(message.recipient.get("name") or ""), addr_spec=to)
    if config.get("reply_to"):
        email["Reply-To"] = _address(str(config["reply_to"]))[0]
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id(message.idempotency_key, domain)
    email["X-Campaign-Id"] = _one_line(message.campaign_id)
    email["X-Execution-Id"] = _one_line(message.execution_id)
    _unsubscribe_headers(
        email, message.recipient.get("unsubscribe_url") or config.get("unsubscribe_url")
    )
    email.set_content(text)
    if html is not None:
        email.add_alternative(html, subtype="html")
    return email, sender, to


# --- errors ----------------------------------------------------------------------------------


def _reply_text(exc: aiosmtplib.SMTPResponseException, secret: str | None) -> str:
    text = " ".join(str(exc.message).split())[:MAX_REPLY_TEXT]
    return text.replace(secret, "***") if secret else text


def _reply_error(exc: aiosmtplib.SMTPResponseException, secret: str | None) -> DeliveryError:
    """A server's refusal: 5xx is permanent, anything else is worth retrying."""
    code = exc.code
    stage = "RCPT TO" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "the message"
    text = f"SMTP server answered {code} to {stage}: {_reply_text(exc, secret)}"
    if not 500 <= code < 600:
        return TransientDeliveryError(text, code=f"SMTP_{code}")
    if stage == "RCPT TO" and code in INVALID_RECIPIENT_CODES:
        return PermanentDeliveryError(text, code="INVALID_RECIPIENT")
    return PermanentDeliveryError(text, code=f"SMTP_{code}")


def _auth_error(exc: aiosmtplib.SMTPAuthenticationError) -> DeliveryError:
    # The server's text is left out: a server may echo what it was sent.
    if exc.code == 535:
        return PermanentDeliveryError(
            "SMTP server refused the username and password (535)", code="INVALID_CREDENTIALS"
        )
    if 500 <= exc.code < 600:
        return PermanentDeliveryError(
            f"SMTP server refused the login ({exc.code})", code=f"SMTP_{exc.code}"
        )
    return TransientDeliveryError(
        f"SMTP server could not log in now ({exc.code})", code=f"SMTP_{exc.code}"
    )


def _is_tls_error(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, a TLS failure (an untrusted certificate …)."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ssl.SSLError):
            return True
        current = current.__cause__
    return False


def classify(exc: Exception, secret: str | None = None) -> DeliveryError:
    """Map an SMTP client error to the delivery error the Sender acts on.

    ``secret`` (the password) is masked in any server text quoted.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]  # one recipient per message
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return _auth_error(exc)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _reply_error(exc, secret)
    if _is_tls_error(exc):
        return PermanentDeliveryError(f"TLS with the SMTP server failed: {exc}", code="TLS_ERROR")
    if isinstance(exc, TimeoutError):
        return TransientDeliveryError(f"SMTP timeout: {exc}", code="TIMEOUT")
    if isinstance(exc, OSError):  # refused, reset, disconnected (SMTPConnectError …)
        return TransientDeliveryError(f"SMTP network error: {exc}", code="NETWORK_ERROR")
    # Anything else the client refuses: no STARTTLS, no usable AUTH method, no SMTPUTF8 …
    return PermanentDeliveryError(f"SMTP error: {exc}", code="SMTP_ERROR")


# --- connections -----------------------------------------------------------------------------


class _Pool:
    """Up to ``endpoint.connections`` clients to one server, each used by one send at a time.

    Clients connect (and authenticate) on first use and stay connected between sends.
    """

    def __init__(self, endpoint: _Endpoint) -> None:
        self.endpoint = endpoint
        self.clients = [endpoint.client() for _ in range(endpoint.connections)]
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for client in self.clients:
            self._idle.put_nowait(client)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[aiosmtplib.SMTP]:
        """Borrow an idle client (waiting for one), returned to the pool afterwards."""
        client = await self._idle.get()
        try:
            yield client
        except asyncio.CancelledError:
            client.close()  # cancelled mid-command: the session's state is unknown
            raise
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        """Say QUIT on every connected client."""
        for client in self.clients:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    pass
                finally:
                    client.close()


async def _send_on(client: aiosmtplib.SMTP, email: EmailMessage, sender: str, to: str) -> None:
    """Send over ``client``; a pooled connection the server dropped is reopened once."""
    if client.is_connected:
        try:
            await client.send_message(email, sender=sender, recipients=[to])
            return
        except aiosmtplib.SMTPServerDisconnected:
            client.close()
    await client.connect()
    await client.send_message(email, sender=sender, recipients=[to])


class EmailChannel:
    """Sends each message as an email through the campaign's SMTP server.

    One process keeps a small pool of connected, authenticated clients per server and account
    on its event loop: sending many messages over one connection is what makes SMTP fast.
    ``Message-ID`` derives from the idempotency key, so a retried send carries the same id
    (receivers can drop the duplicate); it is the provider message id returned.
    4xx replies, timeouts and network errors are transient; 5xx replies, refused credentials
    (``INVALID_CREDENTIALS``) and TLS failures are permanent; 550/551/553/554 to RCPT TO is
    ``INVALID_RECIPIENT``.
    """

    name = "email"

    @classmethod
    def from_settings(cls, settings: Settings, loop: EventLoopThread) -> EmailChannel:
        """Build the process's instance from the settings (the registry calls this)."""
        return cls(loop, settings.http_timeout_s)

    def __init__(
        self,
        loop: EventLoopThread,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._connections = connections
        # Used on the event loop's thread only.
        self._pools: dict[_Endpoint, _Pool] = {}

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Check the server, security, credentials, addresses and limits, without connecting."""
        _check_server(config)
        _check_credentials(config)
        _check_tls(config)
        _check_limits(config)
        _check_addresses(config)
        _check_texts(config)

    def rate_key(self, config: dict[str, Any]) -> str:
        """One key per server and account (the sender address when there is no login)."""
        account = config.get("username") or config.get("from_email") or ""
        return f"email:{config.get('host', '')}:{account}"

    def _pool(self, config: dict[str, Any]) -> _Pool:
        # Validated again here (addresses are cached, so it is cheap): a config that skipped
        # validation fails its deliveries instead of sending in clear or crashing mid-build.
        try:
            self.validate_config(config)
        except ValidationFailed as exc:
            raise PermanentDeliveryError(exc.message, code=exc.code) from None
        endpoint = _Endpoint.from_config(config, self._timeout_s, self._connections)
        pool = self._pools.get(endpoint)
        if pool is None:
            pool = self._pools[endpoint] = _Pool(endpoint)
        return pool

    async def send_async(self, message: OutgoingMessage) -> str | None:
        """Send the message; return its ``Message-ID``."""
        pool = self._pool(message.config)
        email, sender, to = build_email(message)
        async with pool.client() as client:
            try:
                await _send_on(client, email, sender, to)
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise classify(exc, pool.endpoint.password) from exc
        return str(email["Message-ID"])

    async def _close_pools(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()

    def close(self) -> None:
        """Quit the pooled connections (on the loop that owns them)."""
        if self._pools:
            self._loop.run(self._close_pools())
