"""Access logs without credentials: ``?apikey=…`` and other secrets in query strings redacted.

The bot campaigns API takes its key as ``?apikey=`` (as documented for its clients), and links
or webhooks may carry ``?token=``; uvicorn's access log writes every request's full target, so
the key would sit in log files and log pipelines readable by more people than the key's owner.
:class:`RedactSecrets` rewrites such values to ``***`` before any handler formats the line.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

#: Query parameters whose values are credentials (compared lower-cased, after URL-decoding,
#: as the API reads them).
SECRET_PARAMETERS = frozenset(
    {
        "access_token", "api-key", "api_key", "apikey", "auth", "authorization", "client_secret",
        "hub.verify_token", "id_token", "jwt", "key", "password", "refresh_token", "secret",
        "sig", "signature", "token",
    }
)  # fmt: skip
#: What a redacted value is replaced with.
REDACTED = "***"
#: The logger uvicorn writes one line per request to.
ACCESS_LOGGER = "uvicorn.access"


def redact_target(target: str) -> str:
    """``target`` (a path with its query) with the values of :data:`SECRET_PARAMETERS` hidden.

    Example:
        >>> redact_target("/api/v1/triggers?apikey=k_123&x=1")
        '/api/v1/triggers?apikey=***&x=1'
    """
    path, question, rest = target.partition("?")
    if not question:
        return target
    query, hash_, fragment = rest.partition("#")
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        if equals and unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
            pair = f"{name}={REDACTED}"
        pairs.append(pair)
    return f"{path}?{'&'.join(pairs)}{hash_}{fragment}"


class RedactSecrets(logging.Filter):
    """A logging filter that passes every record, its query-string secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the request target among the record's arguments (uvicorn's third)."""
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "?" in a for a in record.args
        ):
            record.args = tuple(
                redact_target(a) if isinstance(a, str) and "?" in a else a for a in record.args
            )
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = redact_target(record.msg)
        return True


def redact_access_log() -> None:
    """Put :class:`RedactSecrets` on uvicorn's access logger (once per process).

    A logger's filters outlive uvicorn's logging set-up (``dictConfig`` replaces handlers, not
    filters), so this works whether the API runs under ``campaign api`` or ``uvicorn --factory``.
    """
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
