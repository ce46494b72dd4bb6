"""The guard on aiohttp, which the provider channels (webhook, telegram, whatsapp) send with.

:func:`guarded_session` builds a session whose connector resolves names through
:class:`GuardedResolver` (every address a name resolves to is checked before aiohttp connects
to it, so DNS rebinding does not pass) and whose sockets are made by :func:`_guarded_socket`,
which checks the address of every connection it is asked for: a literal IP too, which aiohttp
does not ask a resolver about. Checking per connection, not per request (a trace hook), keeps
the guard off the path of requests on kept-alive connections. :func:`read_capped` reads a body
up to the policy's cap.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from engine.outbound.policy import OutboundPolicy

if TYPE_CHECKING:
    from aiohappyeyeballs import AddrInfoType  # aiohttp's own dependency

#: Bytes read at a time from a response body.
_CHUNK = 64 * 1024


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses forbidden addresses.

    Raises:
        TargetRefused: the name resolves to an address the policy refuses (any of them: a
            name that answers with both a public and an internal address is refused).
    """

    def __init__(self, policy: OutboundPolicy, resolver: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of ``host``, each checked against the policy."""
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            self._policy.check_address(host, result["host"])
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._resolver.close()


def _guarded_socket(policy: OutboundPolicy) -> Callable[[AddrInfoType], socket.socket]:
    """The connector's socket factory: a socket only for an address the policy allows.

    Raises:
        TargetRefused: the address is forbidden (nothing was connected).
    """

    def make(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, address = addr_info
        policy.check_address(str(address[0]), str(address[0]))
        return socket.socket(family=family, type=type_, proto=proto)

    return make


def guarded_session(
    policy: OutboundPolicy, timeout: aiohttp.ClientTimeout, max_connections: int
) -> aiohttp.ClientSession:
    """A session that connects only where ``policy`` allows (call it on the event loop).

    It ignores proxy variables of the environment (a proxy would connect for us, unchecked).
    """
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        resolver=GuardedResolver(policy),
        socket_factory=_guarded_socket(policy),
    )
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


async def read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes | None:
    """The response body, or ``None`` when it is longer than ``cap`` bytes (never read whole)."""
    if response.content_length is not None and response.content_length > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
