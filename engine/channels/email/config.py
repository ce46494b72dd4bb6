"""What an email ``channel_config`` may hold: its checks, run without connecting to the server.

The keys are listed in :mod:`engine.channels.email`. :func:`validate_config` raises
:class:`~engine.errors.ValidationFailed` (``INVALID_CHANNEL_CONFIG``) for the first problem.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError

from engine.channels.email.mime import parse_address
from engine.errors import ValidationFailed

SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_CONNECTIONS = 4
MAX_CONNECTIONS = 50
DEFAULT_TIMEOUT_S = 30.0
#: Longest ``timeout_s`` a campaign may set: a server that accepts and never answers must not
#: hold a worker's chunk for longer than this per command.
MAX_TIMEOUT_S = 120.0


def validate_config(config: dict[str, Any]) -> None:
    """Check the server, security, credentials, addresses and limits, without connecting.

    Raises:
        ValidationFailed: ``INVALID_CHANNEL_CONFIG``, naming the key that cannot work.
    """
    _check_server(config)
    _check_credentials(config)
    _check_tls(config)
    _check_limits(config)
    _check_addresses(config)
    _check_texts(config)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _invalid(text: str) -> ValidationFailed:
    return ValidationFailed(f"email channel: {text}", code="INVALID_CHANNEL_CONFIG")


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
            parse_address(value)
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
