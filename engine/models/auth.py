"""Users, API keys and login sessions: who may act for an organization. Secrets are stored
hashed only."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from engine.models.base import new_id, utcnow


class User(SQLModel, table=True):
    """A person who logs in (``POST /api/v1/auth/login``) and acts for one organization."""

    __tablename__ = "users"

    id: str = Field(default_factory=lambda: new_id("usr"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    username: str = Field(max_length=200, unique=True)
    #: argon2id hash of the password.
    password_hash: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    #: Set when an administrator disables the user: its logins, access and refresh tokens stop
    #: working at once.
    disabled_at: datetime | None = None


class ApiKey(SQLModel, table=True):
    """A machine credential of an organization: ``Authorization: Bearer <key>`` and friends.

    The key is shown once at creation; only its public ``prefix`` (for lookup) and the SHA-256
    digest of the whole key are stored (:mod:`engine.hashing`).
    """

    __tablename__ = "api_keys"

    id: str = Field(default_factory=lambda: new_id("key"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    name: str = Field(default="", max_length=200)
    prefix: str = Field(max_length=32, unique=True)
    key_hash: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenFamily(SQLModel, table=True):
    """One login of a user: the chain of refresh tokens it gave, each replacing the last.

    Every access token names its family (claim ``fam``), so revoking the family (a used refresh
    token presented again: a thief or a replay) ends the whole login at once.
    """

    __tablename__ = "token_families"

    id: str = Field(default_factory=lambda: new_id("tfm"), primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    #: The login's end: refreshing never moves it (``REFRESH_TOKEN_TTL_S`` after the login).
    expires_at: datetime
    revoked_at: datetime | None = None


class RefreshToken(SQLModel, table=True):
    """One refresh token of a family, by its ``jti``: usable once, then replaced by the next."""

    __tablename__ = "refresh_tokens"

    jti: str = Field(primary_key=True, max_length=32)
    family_id: str = Field(foreign_key="token_families.id", index=True, max_length=32)
    issued_at: datetime = Field(default_factory=utcnow)
    #: When it was exchanged for the next one; presenting it again revokes the family.
    used_at: datetime | None = None
