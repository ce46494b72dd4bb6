"""The outbound guard: every connection the engine opens to an address a tenant chose.

Webhook receivers, Telegram/WhatsApp ``base_url`` and SMTP servers are configured by tenants,
so without a guard one tenant could make the engine reach its own network (cloud metadata,
Redis, PostgreSQL) and read the answers back through delivery logs. The guard resolves each
host and refuses loopback, private, link-local, CGNAT, multicast, reserved and unspecified
addresses (and IPv6 ULA, or IPv6 forms that embed a forbidden IPv4) *at connect time*, on the
addresses actually connected to, so a name that resolves elsewhere later (DNS rebinding) does
not pass. Networks an operator reaches on purpose are listed in ``OUTBOUND_ALLOWED_NETWORKS``.

One module per client library, one policy for all:

- :mod:`~engine.outbound.policy`: what is refused (:class:`OutboundPolicy`), the config-time
  check of a configured host, and :class:`TargetRefused`.
- :mod:`~engine.outbound.aio_http`: aiohttp (provider channels): a checking resolver and a
  connector, and capped body reads.
- :mod:`~engine.outbound.sync_http`: httpx (lifecycle webhooks): a transport that connects only
  to checked addresses.
- :mod:`~engine.outbound.smtp`: aiosmtplib (email): a socket connected to a checked address.
"""

from engine.outbound.policy import (
    REFUSED_CODE,
    OutboundPolicy,
    TargetRefused,
    check_configured_host,
    check_configured_url,
)

__all__ = [
    "REFUSED_CODE",
    "OutboundPolicy",
    "TargetRefused",
    "check_configured_host",
    "check_configured_url",
]
