"""SMTP connections: the server and account a config names, and a pool of clients to it.

A :class:`Pool` keeps up to ``connections`` aiosmtplib clients per :class:`Endpoint`, connected
and authenticated on first use and kept open between sends: sending many messages over one
connection is what makes SMTP fast. Pools live on the process's event loop.

Every connection goes through the outbound guard (:func:`engine.outbound.smtp.open_socket`):
the server's name is resolved and checked, and the client is handed a socket connected to a
checked address (it keeps the configured name for TLS).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from engine.outbound import OutboundPolicy
from engine.outbound.smtp import open_socket


@dataclass(frozen=True, slots=True)
class Endpoint:
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
    def from_config(cls, config: dict[str, Any], timeout_s: float, connections: int) -> Endpoint:
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
        """A new, unconnected client; :meth:`Pool.connect` does TLS and AUTH as configured.

        It has no port: it connects over the socket the guard opens, and keeps ``host`` for
        TLS (SNI and the certificate's name).
        """
        return aiosmtplib.SMTP(
            hostname=self.host,
            username=self.username,
            password=self.password,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            validate_certs=self.tls_verify,
            cert_bundle=self.tls_ca_file,
            timeout=self.timeout_s,
        )


class Pool:
    """Up to ``endpoint.connections`` clients to one server, each used by one send at a time.

    Clients connect (and authenticate) on first use and stay connected between sends.
    """

    def __init__(self, endpoint: Endpoint, policy: OutboundPolicy) -> None:
        self.endpoint = endpoint
        self._policy = policy
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

    async def connect(self, client: aiosmtplib.SMTP) -> None:
        """Connect ``client`` (TLS and AUTH as configured) over a socket the guard checked.

        Raises:
            TargetRefused: the server is, or resolves to, an address the policy refuses.
        """
        end = self.endpoint
        sock = await open_socket(end.host, end.port, end.timeout_s, self._policy)
        try:
            await client.connect(sock=sock)
        except BaseException:
            client.close()
            sock.close()
            raise

    async def send(
        self, client: aiosmtplib.SMTP, email: EmailMessage, sender: str, to: str
    ) -> None:
        """Send over ``client``; a pooled connection the server dropped is reopened once."""
        if client.is_connected:
            try:
                await client.send_message(email, sender=sender, recipients=[to])
                return
            except aiosmtplib.SMTPServerDisconnected:
                client.close()
        await self.connect(client)
        await client.send_message(email, sender=sender, recipients=[to])

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
