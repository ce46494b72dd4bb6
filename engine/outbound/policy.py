"""What the outbound guard refuses, and the check of a host when a tenant configures it.

:class:`OutboundPolicy` says whether one IP address may be connected to: never loopback,
private (RFC 1918), link-local (cloud metadata), CGNAT, multicast, reserved, unspecified or
IPv6 ULA addresses, nor IPv6 forms that embed a forbidden IPv4 (``::ffff:127.0.0.1``) — unless
the operator lists its network in ``OUTBOUND_ALLOWED_NETWORKS``. The connect-time guards of
each client library ask it about every address they are about to connect to.

:func:`check_configured_host` runs when a tenant stores a URL or host: it refuses a literal
forbidden address or a ``localhost`` name with a 4xx at once (without resolving: the
connect-time check is the real guard).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from engine.errors import PermanentDeliveryError, ValidationFailed

if TYPE_CHECKING:
    from engine.config import Settings

#: The error code of a refused target, at configuration time and at send time.
REFUSED_CODE = "OUTBOUND_TARGET_REFUSED"
#: Default cap of a response body read from a provider or receiver (1 MiB).
DEFAULT_MAX_RESPONSE_BYTES = 1 << 20

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Refused whatever ``ipaddress`` thinks of them (its ``is_global`` moved between versions).
_REFUSED_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT (shared address space)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local: cloud metadata lives at 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and broadcast
        "::/128",
        "::1/128",
        "fc00::/7",  # unique local (ULA)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
#: IPv6 prefixes whose last 32 bits are an IPv4 address (NAT64).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
#: Names that are this machine by definition (RFC 6761), refused without resolving.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
#: The loopback networks, for a run that reaches a sink on this machine on purpose (the demo).
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


class TargetRefused(PermanentDeliveryError):
    """A connection to a forbidden address was refused (never retried).

    Raised by the connect-time guards; the Sender records it as a permanent delivery failure
    with the code ``OUTBOUND_TARGET_REFUSED``.
    """

    code = REFUSED_CODE


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, Teredo, NAT64)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    value = int(ip)
    if any(ip in net for net in _NAT64) or (value >> 32 == 0 and value > 1):
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)  # NAT64, or deprecated ::a.b.c.d
    return None


def is_internal(ip: IPAddress) -> bool:
    """Whether ``ip`` is refused by default: anything not a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%")[0])
        v4 = embedded_ipv4(ip)
        if v4 is not None:
            return is_internal(v4)
    return (
        any(ip in net for net in _REFUSED_NETWORKS)
        or not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; raises ``ValueError`` naming a bad one."""
    networks = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not a network (CIDR such as 10.0.0.0/8)") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which addresses outbound connections may reach, and how much of an answer is read.

    Attributes:
        allowed_networks: networks reachable on purpose though internal
            (``OUTBOUND_ALLOWED_NETWORKS``: an SMTP relay on the LAN, a loopback sink for tests).
        max_response_bytes: most bytes of a response body read (``MAX_RESPONSE_BYTES``).

    Example:
        >>> OutboundPolicy().allows(ipaddress.ip_address("169.254.169.254"))
        False
    """

    allowed_networks: tuple[Network, ...] = ()
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        """The policy the operator configured."""
        return cls(parse_networks(settings.outbound_allowed_networks), settings.max_response_bytes)

    def allows(self, ip: IPAddress) -> bool:
        """Whether a connection to ``ip`` may be opened."""
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (v4 := embedded_ipv4(ip)) is not None:
            candidates.append(v4)
        for candidate in candidates:
            if any(
                candidate.version == net.version and candidate in net
                for net in self.allowed_networks
            ):
                return True
        return not is_internal(ip)

    def check_address(self, host: str, address: str) -> None:
        """Raise :class:`TargetRefused` unless ``address`` (that ``host`` resolved to) is allowed.

        The message names the host, not the address: a tenant must not map the inside.
        """
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            raise TargetRefused(f"refused to connect to {host!r}: not an IP address") from None
        if not self.allows(ip):
            raise TargetRefused(
                f"refused to connect to {host!r}: it is an internal address (loopback, private, "
                "link-local or reserved); an operator may allow its network with "
                "OUTBOUND_ALLOWED_NETWORKS"
            )


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally (``[::1]``, ``127.1``, ``2130706433`` too), if any."""
    name = host.strip().strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if name and all(c in "0123456789abcdefxABCDEFX." for c in name):
        try:  # the legacy numeric forms socket resolves: 127.1, 0x7f.1, 2130706433
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def check_configured_host(host: str, policy: OutboundPolicy, what: str) -> None:
    """Refuse, when it is configured, a host that can only be internal.

    A literal forbidden address, or a name of this machine (``localhost``), is refused at once
    unless the policy allows it. Other names are not resolved here (the answer may change):
    the connect-time guard checks what they resolve to.

    Raises:
        ValidationFailed: ``OUTBOUND_TARGET_REFUSED``, naming ``what`` (``channel_config.url`` …).
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    ip = literal_address(name)
    if ip is not None:
        refused = not policy.allows(ip)
    elif name in _LOCAL_NAMES or name.endswith(".localhost"):
        refused = not any(policy.allows(a) for a in _LOOPBACK)
    else:
        return
    if refused:
        raise ValidationFailed(
            f"{what} names an internal address ({host!r}: loopback, private, link-local or "
            "reserved), which the engine does not connect to; an operator may allow its "
            "network with OUTBOUND_ALLOWED_NETWORKS",
            code=REFUSED_CODE,
        )


def check_configured_url(url: str, policy: OutboundPolicy, what: str) -> None:
    """:func:`check_configured_host` on the host of ``url`` (a URL without one is left alone)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return
    if host:
        check_configured_host(host, policy, what)


def process_policy() -> OutboundPolicy:
    """The policy of this process's settings (read from the environment)."""
    from engine.config import get_settings  # the settings module imports nothing of ours

    return OutboundPolicy.from_settings(get_settings())
