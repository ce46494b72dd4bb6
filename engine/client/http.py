"""One HTTP session to the API: credentials, the ``{"success", "data"}`` envelope, errors.

:class:`Transport` owns the single :class:`httpx.Client` of a :class:`~engine.client.Client`. It
sends ``Authorization: Bearer <api key | access token>``, unwraps ``data`` from every success,
raises the :mod:`engine.client.errors` class of every failure, and renews an access token with
its refresh token (``POST /api/v1/auth/refresh``) shortly before it expires or when the API
answers ``TOKEN_EXPIRED``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import httpx

from engine import __version__
from engine.client.errors import ApiConnectionError, ApiError, AuthenticationError, error_for

#: Seconds before an access token's announced expiry at which it is renewed.
REFRESH_MARGIN_S = 30.0
#: The API's codes for an access token that a refresh token can renew.
EXPIRED_CODES = frozenset({"TOKEN_EXPIRED"})


def _json_default(value: Any) -> Any:
    """Dates become ISO 8601 strings (``scheduledAt``, ``startDate`` …)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(body: Any) -> bytes:
    """Serialize a request body; ``datetime`` and ``date`` values become ISO 8601 strings."""
    return json.dumps(body, default=_json_default).encode()


class Transport:
    """Sends requests to the API and returns the ``data`` of its envelope.

    Parameters:
        base_url: the server, e.g. ``"http://127.0.0.1:8000"`` (``/api/v1`` is added per call).
        api_key: an API key (``ce_…``); never expires.
        token: an access token from ``/api/v1/auth/login``.
        refresh_token: renews ``token`` when it expires.
        timeout: seconds to wait for a connection or an answer.
        http: an :class:`httpx.Client` to use instead of a new one (closed with this transport).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        refresh_token: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        if api_key and token:
            raise ValueError("give api_key or token, not both")
        self._http = http or httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"User-Agent": f"campaign-engine-sdk/{__version__}"},
        )
        self._credential = api_key or token
        self._refresh_token = refresh_token
        self._expires_at: float | None = None
        # One renewal at a time: a refresh token is used once, and presenting it twice ends the
        # login. Reentrant: a due renewal calls :meth:`refresh` while holding it.
        self._lock = threading.RLock()

    @property
    def token(self) -> str | None:
        """The bearer credential currently sent (API key or access token)."""
        return self._credential

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def login(self, user: str, password: str) -> dict[str, Any]:
        """Exchange a user's password for tokens and use them from now on.

        Returns:
            ``{"token", "refresh_token", "expires_in"}`` as the API answered.

        Raises:
            AuthenticationError: wrong user or password (``INVALID_CREDENTIALS``).
        """
        tokens = self._call("POST", "/api/v1/auth/login", {"user": user, "password": password})
        self._use_tokens(tokens)
        return tokens

    def refresh(self) -> dict[str, Any]:
        """Renew the access token with the refresh token, and keep the new refresh token (each is
        used once).

        Returns:
            The new ``{"token", "refresh_token", "expires_in"}``.

        Raises:
            AuthenticationError: there is no refresh token, or it is invalid or expired.
        """
        if not self._refresh_token:
            raise AuthenticationError(
                "the access token expired and there is no refresh token",
                status=401,
                code="NO_REFRESH_TOKEN",
            )
        with self._lock:
            tokens = self._call(
                "POST", "/api/v1/auth/refresh", {"refresh_token": self._refresh_token}
            )
            self._use_tokens(tokens)  # the answer's refresh token replaces the used one
        return tokens

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one authenticated request and return the ``data`` of the answer.

        Args:
            method: ``GET``, ``POST``, ``PUT`` or ``DELETE``.
            path: e.g. ``/api/v1/campaigns``.
            body: a JSON-able body, or ``None`` for no body.
            params: query parameters; ``None`` values are left out.
            headers: more request headers (``Idempotency-Key``).

        Returns:
            The envelope's ``data``.

        Raises:
            ApiError: the subclass for the answer's status (see :mod:`engine.client.errors`).
        """
        self._refresh_if_due()
        sent = self._credential
        try:
            return self._call(method, path, body, params, headers)
        except AuthenticationError as exc:
            if exc.code not in EXPIRED_CODES or not self._refresh_token:
                raise
        with self._lock:
            if self._credential == sent:  # another thread may have renewed it meanwhile
                self.refresh()
        return self._call(method, path, body, params, headers)

    def _refresh_if_due(self) -> None:
        if self._expires_at is None or time.monotonic() < self._expires_at - REFRESH_MARGIN_S:
            return
        with self._lock:
            if self._expires_at is not None and time.monotonic() >= (
                self._expires_at - REFRESH_MARGIN_S
            ):
                self.refresh()

    def _use_tokens(self, tokens: Mapping[str, Any]) -> None:
        self._credential = str(tokens["token"])
        self._refresh_token = tokens.get("refresh_token") or self._refresh_token
        expires_in = tokens.get("expires_in")
        self._expires_at = (
            time.monotonic() + float(expires_in) if isinstance(expires_in, int | float) else None
        )

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Any:
        headers = {"Accept": "application/json", **(extra_headers or {})}
        if self._credential:
            headers["Authorization"] = f"Bearer {self._credential}"
        content = None
        if body is not None:
            content = encode_json(body)
            headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method, path, content=content, params=query, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise ApiConnectionError(f"{method} {path} timed out: {exc}", code="TIMEOUT") from exc
        except httpx.TransportError as exc:
            raise ApiConnectionError(
                f"{method} {path} failed: {exc or type(exc).__name__}", code="CONNECTION_FAILED"
            ) from exc
        if response.is_error:
            raise error_for(response)
        return _data(response)


def _data(response: httpx.Response) -> Any:
    """The ``data`` of a success envelope (the whole body when there is no envelope)."""
    if not response.content:
        return None
    try:
        body = response.json()
    except ValueError as exc:
        raise ApiError(
            f"the answer is not JSON: {response.text[:200]!r}",
            status=response.status_code,
            code="INVALID_RESPONSE",
        ) from exc
    if isinstance(body, dict) and "success" in body:
        return body.get("data")
    return body


__all__ = ["EXPIRED_CODES", "REFRESH_MARGIN_S", "Transport", "encode_json"]
