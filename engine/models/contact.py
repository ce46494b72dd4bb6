"""Contacts, the lists they are members of, their tags and typed custom fields (contact lists
API)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.models.base import BigIntId, json_column, new_id, utcnow


class ContactList(SQLModel, table=True):
    """An address list of an organization; the contact lists API's members belong to one."""

    __tablename__ = "contact_lists"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    name: str = Field(max_length=200)
    #: A private list's contacts (one bot action's recipients …) are targeted only by campaigns
    #: that name the list, never by an organization-wide audience.
    private: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime = Field(default_factory=utcnow)


class Contact(SQLModel, table=True):
    """A person of an organization's audience; with ``list_id``, a member of that list.

    Ids are integers so an audience splits into chunks of contiguous id ranges. Within a list
    a member is matched on email (unique per list).
    """

    __tablename__ = "contacts"
    # Conditions on Email / Phone / Name (the contact lists API's member listing) are scoped to a
    # list and its organization: these indexes lead with both so an equality or a range on
    # the field is one index range, and the count is an index-only scan. Conditions compare the
    # columns by code point (``COLLATE "C"`` on PostgreSQL, SQLite's default BINARY), so the
    # PostgreSQL indexes are built in that collation (``postgresql_ops``; on SQLite the
    # option is ignored and the default collation is the same order). See docs/contacts.md.
    __table_args__ = (
        sa.Index("ix_contacts_org_id", "organization_id", "id"),
        sa.UniqueConstraint("list_id", "email", name="uq_contacts_list_email"),
        sa.Index(
            "ix_contacts_list_email",
            "list_id",
            "organization_id",
            "email",
            postgresql_ops={"email": 'COLLATE "C"'},
        ),
        sa.Index(
            "ix_contacts_list_phone",
            "list_id",
            "organization_id",
            "phone",
            postgresql_ops={"phone": 'COLLATE "C"'},
        ),
        sa.Index(
            "ix_contacts_list_name",
            "list_id",
            "organization_id",
            "name",
            postgresql_ops={"name": 'COLLATE "C"'},
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    list_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("contact_lists.id", name="fk_contacts_list"), nullable=True
        ),
    )
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    unsubscribed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime | None = None


class Tag(SQLModel, table=True):
    """A tag name of an organization (``tag_ids`` / ``tag_names`` in the contact lists API)."""

    __tablename__ = "tags"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigIntId, primary_key=True))
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    name: str = Field(max_length=100)


class ContactTag(SQLModel, table=True):
    """A tag on a contact."""

    __tablename__ = "contact_tags"
    __table_args__ = (sa.Index("ix_contact_tags_tag", "tag_id", "contact_id"),)

    contact_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
        )
    )
    tag_id: int = Field(
        sa_column=sa.Column(
            sa.BigInteger, sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
        )
    )


class FieldType(StrEnum):
    """How a custom field's values compare in conditions."""

    string = "string"
    number = "number"
    date = "date"


class ContactField(SQLModel, table=True):
    """A custom field of an organization's contacts, with the type its conditions use."""

    __tablename__ = "contact_fields"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    id: str = Field(default_factory=lambda: new_id("fld"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    name: str = Field(max_length=100)
    type: str = Field(default=FieldType.string, max_length=16)


class ApiUser(SQLModel, table=True):
    """The contact lists API's ``api_user:api_key`` credential: Basic auth for one list of an
    organization."""

    __tablename__ = "api_users"

    id: str = Field(default_factory=lambda: new_id("apu"), primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organizations.id", index=True, max_length=32)
    list_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("contact_lists.id"), nullable=False)
    )
    api_user: str = Field(max_length=100, unique=True)
    #: SHA-256 digest of the api_key (:mod:`engine.hashing`).
    key_hash: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
