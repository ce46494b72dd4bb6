"""The ``email`` channel itself: validates, builds, sends over a pooled client, classifies.

Its configuration and message format are described in :mod:`engine.channels.email`.
"""

from __future__ import annotations

from typing import Any

import aiosmtplib

from engine.aio import EventLoopThread
from engine.channels.base import OutgoingMessage
from engine.channels.email.config import DEFAULT_CONNECTIONS, DEFAULT_TIMEOUT_S, validate_config
from engine.channels.email.errors import classify
from engine.channels.email.mime import build_email
from engine.channels.email.pool import Endpoint, Pool
from engine.config import Settings
from engine.errors import PermanentDeliveryError, ValidationFailed
from engine.outbound import OutboundPolicy, check_configured_host


class EmailChannel:
    """Sends each message as an email through the campaign's SMTP server.

    One process keeps a small pool of connected, authenticated clients per server and account
    on its event loop: sending many messages over one connection is what makes SMTP fast.
    ``Message-ID`` derives from the idempotency key, so a retried send carries the same id
    (receivers can drop the duplicate); it is the provider message id returned.
    4xx replies, timeouts and network errors are transient; 5xx replies, refused credentials
    (``INVALID_CREDENTIALS``) and TLS failures are permanent; 550/551/553/554 to RCPT TO is
    ``INVALID_RECIPIENT``. A server the outbound guard refuses (an internal address not in
    ``OUTBOUND_ALLOWED_NETWORKS``) is a permanent ``OUTBOUND_TARGET_REFUSED``.
    """

    name = "email"

    @classmethod
    def from_settings(cls, settings: Settings, loop: EventLoopThread) -> EmailChannel:
        """Build the process's instance from the settings (the registry calls this)."""
        return cls(loop, settings.http_timeout_s, policy=OutboundPolicy.from_settings(settings))

    def __init__(
        self,
        loop: EventLoopThread,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connections: int = DEFAULT_CONNECTIONS,
        policy: OutboundPolicy | None = None,
    ) -> None:
        self._loop = loop
        #: Where it may connect; without one, nowhere internal.
        self._policy = policy or OutboundPolicy()
        self._timeout_s = timeout_s
        self._connections = connections
        # Used on the event loop's thread only.
        self._pools: dict[Endpoint, Pool] = {}

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Check the server, security, credentials, addresses and limits, without connecting."""
        validate_config(config)

    @staticmethod
    def check_targets(config: dict[str, Any], policy: OutboundPolicy) -> None:
        """Refuse a ``host`` that can only be internal (``OUTBOUND_TARGET_REFUSED``)."""
        if isinstance(config.get("host"), str):
            check_configured_host(config["host"], policy, "email channel_config.host")

    def rate_key(self, config: dict[str, Any]) -> str:
        """One key per server and account (the sender address when there is no login)."""
        account = config.get("username") or config.get("from_email") or ""
        return f"email:{config.get('host', '')}:{account}"

    def _pool(self, config: dict[str, Any]) -> Pool:
        # Validated again here (addresses are cached, so it is cheap): a config that skipped
        # validation fails its deliveries instead of sending in clear or crashing mid-build.
        try:
            validate_config(config)
        except ValidationFailed as exc:
            raise PermanentDeliveryError(exc.message, code=exc.code) from None
        endpoint = Endpoint.from_config(config, self._timeout_s, self._connections)
        pool = self._pools.get(endpoint)
        if pool is None:
            pool = self._pools[endpoint] = Pool(endpoint, self._policy)
        return pool

    async def send_async(self, message: OutgoingMessage) -> str | None:
        """Send the message; return its ``Message-ID``."""
        pool = self._pool(message.config)
        email, sender, to = build_email(message)
        async with pool.client() as client:
            try:
                await pool.send(client, email, sender, to)
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
