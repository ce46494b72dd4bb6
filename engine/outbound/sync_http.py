"""The guard on httpx (lifecycle webhooks): a client that connects only to checked addresses.

No well-kept library fits here: ``advocate`` wraps requests and is unmaintained, ``safehttpx``
is async-only and resolves through a public DNS server, and neither knows an allowlist. httpx
itself connects through httpcore's network backend, so :class:`GuardedBackend` resolves the
host, checks every address, and opens the TCP connection to a checked address; httpcore then
does TLS with the URL's host name (SNI and certificate checks unchanged) and sends ``Host`` as
written. The name is resolved once per connection, by us: DNS rebinding does not pass.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

import httpcore
import httpx

from engine.outbound.policy import OutboundPolicy

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's blocking backend, connecting only to addresses the policy allows.

    Raises:
        TargetRefused: the host is, or resolves to, a refused address (any of them).
    """

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Resolve ``host``, check its addresses, connect to the first that answers."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host!r} does not resolve: {exc}") from exc
        for *_, sockaddr in infos:
            self._policy.check_address(host, str(sockaddr[0]))
        error: Exception = httpcore.ConnectError(f"{host!r} has no address")
        for *_, sockaddr in infos:
            try:
                return super().connect_tcp(
                    str(sockaddr[0]), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over :class:`GuardedBackend` (no proxy: a proxy would connect for us)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend; its pool does (httpcore's documented parameter).
        assert isinstance(self._pool, httpcore.ConnectionPool)
        self._pool._network_backend = GuardedBackend(policy)


def guarded_client(policy: OutboundPolicy, timeout_s: float) -> httpx.Client:
    """An httpx client that connects only where ``policy`` allows and follows no redirect."""
    return httpx.Client(
        transport=GuardedTransport(policy),
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
    )
