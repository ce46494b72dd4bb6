"""One error tree for the whole engine; each adapter maps it in exactly one place."""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose.

    Attributes:
        code: machine-readable code (``NOT_FOUND``, ``VALIDATION_FAILED`` …).
        message: a sentence for humans naming the problem.
    """

    code = "ENGINE_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(EngineError):
    """The named object does not exist (or belongs to another organization)."""

    code = "NOT_FOUND"


class InvalidTransition(EngineError):
    """The object's current status does not allow the requested change."""

    code = "INVALID_TRANSITION"


class Conflict(EngineError):
    """The object would clash with one that exists (a taken name, an email already listed)."""

    code = "CONFLICT"


class ValidationFailed(EngineError):
    """The input is well-formed but not acceptable (unknown channel, empty audience …)."""

    code = "VALIDATION_FAILED"


class AuthenticationFailed(EngineError):
    """Credentials are missing, wrong, expired or revoked."""

    code = "UNAUTHORIZED"


class TooManyAttempts(EngineError):
    """Too many failed password checks for a user or a client address: retry later.

    Attributes:
        retry_after: seconds until an attempt is accepted again.
    """

    code = "TOO_MANY_ATTEMPTS"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class DeliveryError(EngineError):
    """A channel could not deliver one message."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying: timeouts, 5xx, 429. ``retry_after`` is the provider's hint in seconds."""

    code = "PROVIDER_UNAVAILABLE"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Never worth retrying for this contact: blocked, invalid recipient, rejected payload."""

    code = "PERMANENT_FAILURE"
