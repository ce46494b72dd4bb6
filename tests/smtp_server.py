"""A real SMTP server on loopback for tests (aiosmtpd): stores what it receives, counts sessions.

Refusals are scripted per command: ``rcpt(address, n)`` and ``data(message, n)`` return an SMTP
reply to refuse the ``n``-th try (1-based) of that address / Message-ID, or ``None`` to accept.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

RcptHook = Callable[[str, int], str | None]
DataHook = Callable[[EmailMessage, int], str | None]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: ``(cert.pem, key.pem)``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=test"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert)),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The server side of TLS with ``cert``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@dataclass(frozen=True)
class Received:
    """One accepted message: its envelope, the parsed message, and the session it came on."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: Any
    tls: bool
    login: bytes | None
    #: The DATA bytes as received (CRLF line ends): headers exactly as they were folded.
    raw: bytes = b""


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.sink.lock:
            self.sink.rcpt_tries[address] += 1
            n = self.sink.rcpt_tries[address]
        refusal = self.sink.rcpt(address, n) if self.sink.rcpt else None
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content.replace(b"\r\n", b"\n")  # the wire's CRLF, as Python's \n
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.sink.lock:
            self.sink.data_seen.append(parsed)
            self.sink.data_tries[str(parsed["Message-ID"])] += 1
            n = self.sink.data_tries[str(parsed["Message-ID"])]
        refusal = self.sink.data(parsed, n) if self.sink.data else None
        if refusal:
            return refusal
        received = Received(
            envelope.mail_from,
            list(envelope.rcpt_tos),
            parsed,
            session.peer,
            session.ssl is not None,
            session.auth_data,
            envelope.original_content or envelope.content,
        )
        with self.sink.lock:
            self.sink.received.append(received)
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        with self.sink.lock:
            self.sink.quits += 1
        return "221 Bye"


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 (a free port) that keeps every message it accepts.

    Args:
        rcpt / data: scripted refusals (see the module's docstring).
        users: ``{login: password}``; when given, AUTH is offered (also without TLS).
        starttls: a server TLS context to offer STARTTLS with (then required).
        implicit_tls: a server TLS context to wrap the whole connection in (SMTPS).
    """

    def __init__(
        self,
        *,
        rcpt: RcptHook | None = None,
        data: DataHook | None = None,
        users: dict[str, str] | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        port: int | None = None,
    ) -> None:
        self.rcpt, self.data, self.users = rcpt, data, users
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.data_seen: list[EmailMessage] = []
        self.rcpt_tries: Counter[str] = Counter()
        self.data_tries: Counter[str] = Counter()
        self.quits = 0
        kwargs: dict[str, Any] = {}
        if users is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        self._controller = Controller(
            _Handler(self), hostname=HOST, port=self.port, ssl_context=implicit_tls, **kwargs
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.users is not None
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        if not ok:  # handled=False: aiosmtpd answers 535 itself
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data.login)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def config(self, **extra: Any) -> dict[str, Any]:
        """An email channel config for this server (plain text unless ``extra`` says TLS)."""
        return {
            "host": HOST,
            "port": self.port,
            "security": "none",
            "from_email": "news@example.com",
            **extra,
        }

    def peers(self) -> set[Any]:
        """The client ends of the connections messages came on."""
        return {r.peer for r in self.received}
