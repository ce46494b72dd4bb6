"""The guard on aiohttp, which the provider channels (webhook, telegram, whatsapp) send with.

:func:`guarded_session` builds a session whose connector resolves names through
:class:`GuardedResolver` (every address a name resolves to is checked before aiohttp connects
to it, so DNS rebinding does not pass) and whose requests to a literal IP are checked as they
start (aiohttp does not ask a resolver about those). :func:`read_capped` reads a body up to the
policy's cap.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from engine.outbound.policy import OutboundPolicy, literal_address

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


def _literal_check(policy: OutboundPolicy) -> aiohttp.TraceConfig:
    """A trace hook refusing a request to a literal forbidden IP (no resolver sees those)."""

    async def on_request_start(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
    ) -> None:
        host = params.url.host or ""
        ip = literal_address(host)
        if ip is not None:
            policy.check_address(host, str(ip))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    return trace


def guarded_session(
    policy: OutboundPolicy, timeout: aiohttp.ClientTimeout, max_connections: int
) -> aiohttp.ClientSession:
    """A session that connects only where ``policy`` allows (call it on the event loop).

    It ignores proxy variables of the environment (a proxy would connect for us, unchecked).
    """
    connector = aiohttp.TCPConnector(limit=max_connections, resolver=GuardedResolver(policy))
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trace_configs=[_literal_check(policy)],
        trust_env=False,
    )


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
