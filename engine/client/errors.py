"""The SDK's errors: one tree under :class:`ApiError`, chosen by the HTTP status.

Every error the API answers carries ``{"success": false, "error": {"code", "message"}}``; the SDK
raises the subclass for the status with that code and message. A request that never got an answer
(refused connection, timeout) raises :class:`ApiConnectionError`.

Example:
    >>> try:
    ...     client.campaign.get("nope")
    ... except NotFoundError as exc:
    ...     print(exc.status, exc.code)
    404 CAMPAIGN_NOT_FOUND
"""

from __future__ import annotations

import builtins
from typing import Any

import httpx


class ApiError(Exception):
    """Base of every error the SDK raises.

    Attributes:
        status: the HTTP status, or ``None`` when no answer arrived.
        code: the API's machine-readable code (``CAMPAIGN_NOT_FOUND``, ``VALIDATION_FAILED`` …).
        message: the API's sentence for humans.
        details: extra information the API gave (e.g. one entry per invalid field), or ``[]``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "API_ERROR",
        details: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details: list[Any] = details or []

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status is not None else ""
        return f"{prefix}{self.code}: {self.message}"


class AuthenticationError(ApiError):
    """401: the API key or token is missing, wrong or expired (and could not be refreshed)."""


class NotFoundError(ApiError):
    """404: no such object in the caller's organization (or no such route)."""


class ConflictError(ApiError):
    """409: the object's status forbids the request (pause what isn't running, delete a run …)."""


class ValidationError(ApiError):
    """400, 413 or 422: the request's parameters or body were refused."""


class ServerError(ApiError):
    """5xx: the server failed; the request may be retried later."""


class ApiConnectionError(ApiError, builtins.ConnectionError):
    """No answer: the server could not be reached, or it did not answer in time.

    It is also a built-in :class:`ConnectionError`, so ``except ConnectionError`` catches it.
    """


#: The error class of each HTTP status the API uses; other 4xx are a plain :class:`ApiError`.
ERROR_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: ValidationError,
    422: ValidationError,
}


def error_for(response: httpx.Response) -> ApiError:
    """Build the error for a failed ``response`` from its status and envelope.

    Args:
        response: an answer with a 4xx or 5xx status.

    Returns:
        The :class:`ApiError` subclass for the status, with the envelope's code and message
        (``HTTP_<status>`` and the body's text when the body is not the API's envelope).
    """
    status = response.status_code
    cls = ServerError if status >= 500 else ERROR_BY_STATUS.get(status, ApiError)
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code"):
        details = error.get("details")
        return cls(
            str(error.get("message") or error["code"]),
            status=status,
            code=str(error["code"]),
            details=details if isinstance(details, list) else None,
        )
    text = response.text.strip()[:500] or response.reason_phrase or "no message"
    return cls(text, status=status, code=f"HTTP_{status}")


__all__ = [
    "ERROR_BY_STATUS",
    "ApiConnectionError",
    "ApiError",
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "ServerError",
    "ValidationError",
    "error_for",
]
