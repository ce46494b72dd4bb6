"""Contact lists of an organization: create, find, list and delete them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.db import get_owned
from engine.errors import Conflict, ValidationFailed
from engine.models import ApiUser, CampaignAction, Contact, ContactList, ContactTag


def get_or_create_list(session: Session, organization_id: str, name: str) -> ContactList:
    """The organization's list called ``name``, created if needed."""
    found = session.exec(
        select(ContactList).where(
            col(ContactList.organization_id) == organization_id, col(ContactList.name) == name
        )
    ).first()
    if found is None:
        found = ContactList(organization_id=organization_id, name=name)
        session.add(found)
        session.flush()
    return found


def create_list(session: Session, organization_id: str, name: str) -> ContactList:
    """Create a list.

    Raises:
        ValidationFailed: the name is empty or too long. Conflict: it is taken (``LIST_EXISTS``).
    """
    name = name.strip()
    if not 0 < len(name) <= 200:
        raise ValidationFailed("a list name has 1 to 200 characters", code="INVALID_NAME")
    taken = session.exec(
        select(ContactList.id).where(
            col(ContactList.organization_id) == organization_id, col(ContactList.name) == name
        )
    ).first()
    if taken is not None:
        raise Conflict(f"a list named {name!r} exists", code="LIST_EXISTS")
    return get_or_create_list(session, organization_id, name)


def get_list(session: Session, organization_id: str, list_id: int) -> ContactList:
    """One list of the organization.

    Raises:
        NotFound: no such list in this organization (``LIST_NOT_FOUND``).
    """
    return get_owned(
        session, ContactList, list_id, organization_id, what="list", code="LIST_NOT_FOUND"
    )


def list_sizes(session: Session, list_ids: list[int]) -> dict[int, int]:
    """How many contacts each list holds."""
    if not list_ids:
        return {}
    rows = session.execute(
        sa.select(col(Contact.list_id), sa.func.count())
        .where(col(Contact.list_id).in_(list_ids))
        .group_by(col(Contact.list_id))
    )
    return {list_id: int(count) for list_id, count in rows}


def all_lists(session: Session, organization_id: str) -> list[ContactList]:
    """The organization's lists, by name."""
    return list(
        session.exec(
            select(ContactList)
            .where(col(ContactList.organization_id) == organization_id)
            .order_by(col(ContactList.name))
        )
    )


def delete_list(session: Session, organization_id: str, list_id: int) -> int:
    """Delete a list, its members and its api users; return how many members went with it.

    Raises:
        NotFound: no such list in this organization.
        Conflict: a bot campaign action sends to the list (``IN_USE_BY_ACTION``).
    """
    found = get_list(session, organization_id, list_id)
    _check_no_action(session, list_id)
    members = sa.select(col(Contact.id)).where(col(Contact.list_id) == found.id)
    session.execute(sa.delete(ContactTag).where(col(ContactTag.contact_id).in_(members)))
    deleted = session.execute(sa.delete(Contact).where(col(Contact.list_id) == found.id))
    session.execute(sa.delete(ApiUser).where(col(ApiUser.list_id) == found.id))
    session.delete(found)
    session.flush()
    return int(deleted.rowcount or 0)  # type: ignore[attr-defined]


def _check_no_action(session: Session, list_id: int) -> None:
    """Refuse to delete the recipients of a bot campaign action (bot campaigns API): its campaign
    sends to them and its log file lists them."""
    action = session.scalars(
        sa.select(col(CampaignAction.id)).where(col(CampaignAction.list_id) == list_id).limit(1)
    ).first()
    if action is not None:
        raise Conflict(
            f"list {list_id} holds the recipients of bot action {action!r}; it cannot be "
            "deleted while the action exists",
            code="IN_USE_BY_ACTION",
        )
