"""SMTP failures as delivery errors: what is worth retrying and what never will be.

:func:`classify` maps an aiosmtplib (or socket) error to the
:class:`~engine.errors.TransientDeliveryError` or :class:`~engine.errors.PermanentDeliveryError`
the Sender acts on: 4xx replies, timeouts and network errors are transient; 5xx replies, refused
credentials (``INVALID_CREDENTIALS``) and TLS failures are permanent; 550/551/553/554 to
RCPT TO is ``INVALID_RECIPIENT``.
"""

from __future__ import annotations

import ssl

import aiosmtplib

from engine.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

#: Permanent replies to RCPT TO that mean "no such mailbox" (user unknown, relaying denied …).
INVALID_RECIPIENT_CODES = frozenset({550, 551, 553, 554})
#: Longest server reply text kept in an error message.
MAX_REPLY_TEXT = 300


def classify(exc: Exception, secret: str | None = None) -> DeliveryError:
    """Map an SMTP client error to the delivery error the Sender acts on.

    ``secret`` (the password) is masked in any server text quoted.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]  # one recipient per message
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return _auth_error(exc)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _reply_error(exc, secret)
    if _is_tls_error(exc):
        return PermanentDeliveryError(f"TLS with the SMTP server failed: {exc}", code="TLS_ERROR")
    if isinstance(exc, TimeoutError):
        return TransientDeliveryError(f"SMTP timeout: {exc}", code="TIMEOUT")
    if isinstance(exc, OSError):  # refused, reset, disconnected (SMTPConnectError …)
        return TransientDeliveryError(f"SMTP network error: {exc}", code="NETWORK_ERROR")
    # Anything else the client refuses: no STARTTLS, no usable AUTH method, no SMTPUTF8 …
    return PermanentDeliveryError(f"SMTP error: {exc}", code="SMTP_ERROR")


def _reply_text(exc: aiosmtplib.SMTPResponseException, secret: str | None) -> str:
    text = " ".join(str(exc.message).split())[:MAX_REPLY_TEXT]
    return text.replace(secret, "***") if secret else text


def _reply_error(exc: aiosmtplib.SMTPResponseException, secret: str | None) -> DeliveryError:
    """A server's refusal: 5xx is permanent, anything else is worth retrying."""
    code = exc.code
    stage = "RCPT TO" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "the message"
    text = f"SMTP server answered {code} to {stage}: {_reply_text(exc, secret)}"
    if not 500 <= code < 600:
        return TransientDeliveryError(text, code=f"SMTP_{code}")
    if stage == "RCPT TO" and code in INVALID_RECIPIENT_CODES:
        return PermanentDeliveryError(text, code="INVALID_RECIPIENT")
    return PermanentDeliveryError(text, code=f"SMTP_{code}")


def _auth_error(exc: aiosmtplib.SMTPAuthenticationError) -> DeliveryError:
    # The server's text is left out: a server may echo what it was sent.
    if exc.code == 535:
        return PermanentDeliveryError(
            "SMTP server refused the username and password (535)", code="INVALID_CREDENTIALS"
        )
    if 500 <= exc.code < 600:
        return PermanentDeliveryError(
            f"SMTP server refused the login ({exc.code})", code=f"SMTP_{exc.code}"
        )
    return TransientDeliveryError(
        f"SMTP server could not log in now ({exc.code})", code=f"SMTP_{exc.code}"
    )


def _is_tls_error(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, a TLS failure (an untrusted certificate …)."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ssl.SSLError):
            return True
        current = current.__cause__
    return False
