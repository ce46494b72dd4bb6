"""The guard on SMTP (aiosmtplib): a socket connected only to a checked address.

aiosmtplib resolves and connects by itself unless given a connected socket; :func:`open_socket`
resolves the server's name, checks every address against the policy, and connects to one of
them. The client keeps the configured host name for TLS (SNI and certificate checks).
"""

from __future__ import annotations

import asyncio
import socket

from engine.outbound.policy import OutboundPolicy


async def open_socket(
    host: str, port: int, timeout_s: float, policy: OutboundPolicy
) -> socket.socket:
    """A non-blocking socket connected to ``host:port`` at an address ``policy`` allows.

    Raises:
        TargetRefused: ``host`` is, or resolves to, a refused address (any of its addresses).
        OSError: the name does not resolve, or no address accepts the connection
            (``TimeoutError`` after ``timeout_s``).
    """
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s)
    for *_, sockaddr in infos:
        policy.check_address(host, str(sockaddr[0]))
    error: OSError = OSError(f"{host!r} has no address")
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, sockaddr), timeout_s)
        except OSError as exc:  # refused, unreachable, timed out: try the next address
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error
