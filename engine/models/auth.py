"""Users and API keys: who may act for an organization. Secrets are stored hashed only."""

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


class ApiKey(SQLModel, table=True):
    """A machine credential of an organization: ``Authorization: Bearer <key>`` and friends.

    The key is shown once at creation; only its public ``prefix`` (for lookup) and an argon2id
    hash of the whole key are stored.
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
