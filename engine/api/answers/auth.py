"""Answers about access: login tokens (both APIs' shapes), API keys and users."""

from __future__ import annotations

from pydantic import BaseModel

from engine.api.answers.base import Time, WireModel
from engine.models import (
    ApiKey,
    User,
)
from engine.services.auth import Tokens


class BotTokens(BaseModel):
    """The bot campaigns API's tokens: ``{"token", "refresh_token"}``."""

    token: str
    refresh_token: str


class TokensOut(BotTokens):
    """An access ``token``, the ``refresh_token`` that renews it, and ``expires_in`` seconds."""

    expires_in: int

    @classmethod
    def of(cls, tokens: Tokens) -> TokensOut:
        """From the issued tokens."""
        return cls(
            token=tokens.token, refresh_token=tokens.refresh_token, expires_in=tokens.expires_in
        )


class ApiKeyOut(WireModel):
    """An API key of the organization: its public prefix and use, never the key itself."""

    id: str
    name: str
    prefix: str
    created_at: Time
    last_used_at: Time
    revoked_at: Time

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        """From the stored key."""
        return cls.model_validate(key)


class UserOut(WireModel):
    """A user of the organization (``disabledAt`` once disabled)."""

    id: str
    username: str
    created_at: Time
    disabled_at: Time

    @classmethod
    def of(cls, user: User) -> UserOut:
        """From the stored user."""
        return cls.model_validate(user)
