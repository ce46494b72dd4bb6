"""The SDK's entry point: :class:`Client`."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from engine.client.campaigns import Campaigns
from engine.client.http import Transport
from engine.client.webhooks import Webhooks


class Client:
    """A synchronous client of the campaign-engine HTTP API, over one :class:`httpx.Client`.

    Authenticate with an API key, with an access token (and its refresh token, to renew it),
    or log in with :meth:`login`. Use it as a context manager, or call :meth:`close`.

    Parameters:
        base_url: the server, e.g. ``"http://127.0.0.1:8000"``.
        api_key: an API key (``ce_…``, from ``campaign admin bootstrap``).
        token: an access token (from ``POST /api/v1/auth/login``).
        refresh_token: renews ``token`` when it expires.
        timeout: seconds to wait for a connection or an answer.
        http: an :class:`httpx.Client` to send through instead of a new one (its ``base_url``
            must be the server's); it is closed with this client.

    Example:
        >>> from engine.client import Client, NotFoundError
        >>> with Client("http://127.0.0.1:8000", api_key="ce_...") as client:
        ...     campaign = client.campaign.create({"name": "Welcome", "channel_type": "log"})
        ...     client.campaign.create_touchpoint(
        ...         {"name": "hi", "type": "message", "campaign_id": campaign["_id"],
        ...          "message": {"text": "Hi {{ name }}!"}}
        ...     )
        ...     client.campaign.execute(campaign["_id"], priority="high")
        ...     print(client.campaign.progress(campaign["_id"])["status"])
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
        self.base_url = base_url.rstrip("/")
        self._transport = Transport(
            self.base_url,
            api_key=api_key,
            token=token,
            refresh_token=refresh_token,
            timeout=timeout,
            http=http,
        )
        #: Campaigns and touchpoints: ``client.campaign.list()``, ``.get(id)`` …
        self.campaign = Campaigns(self._transport)
        #: Lifecycle webhooks: ``client.webhooks.create(url, events)`` …
        self.webhooks = Webhooks(self._transport)

    @classmethod
    def login(cls, base_url: str, user: str, password: str, **options: Any) -> Client:
        """Log in with a user's password; the client renews its token by itself.

        Args:
            base_url: the server.
            user: the user name.
            password: the user's password.
            **options: ``timeout`` or ``http``, as for :class:`Client`.

        Returns:
            A client holding an access token and a refresh token.

        Raises:
            AuthenticationError: wrong user or password (``INVALID_CREDENTIALS``).

        Example:
            >>> with Client.login("http://127.0.0.1:8000", "acme-admin", "secret") as client:
            ...     client.campaign.list()
        """
        client = cls(base_url, **options)
        try:
            client._transport.login(user, password)
        except BaseException:
            client.close()
            raise
        return client

    @property
    def token(self) -> str | None:
        """The bearer credential currently sent (the API key, or the latest access token)."""
        return self._transport.token

    def refresh(self) -> dict[str, Any]:
        """Renew the access token now (it is also renewed automatically when it expires).

        Returns:
            ``{"token", "refresh_token", "expires_in"}``.

        Raises:
            AuthenticationError: no refresh token, or it was refused.
        """
        return self._transport.refresh()

    def close(self) -> None:
        """Close the HTTP connections; the client cannot be used afterwards."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"


__all__ = ["Client"]
