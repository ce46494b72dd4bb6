"""Consent: unsubscribing contacts and the organization's suppression list.

An unsubscribed contact keeps its data but is never targeted again (``unsubscribe_time``).
A contact a channel reports as unreachable for good (``USER_BLOCKED``) is blocked on that
channel only (:class:`~engine.models.ChannelBlock`).
A suppressed address (email or phone) is never messaged, whichever list or contact carries it:
the planner leaves it out, and a worker skips it (``SUPPRESSED``) if it was added mid-run.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, col, select

from engine.audience.contact_data import normalise_address
from engine.audience.contacts import get_contact
from engine.db import insert_ignore, table_of
from engine.errors import NotFound, ValidationFailed
from engine.models import ChannelBlock, Contact, Suppression
from engine.models.base import utcnow

#: Most addresses one suppression call may carry.
MAX_SUPPRESS_BATCH = 1000


#: The suppression reason an unsubscription writes (and a resubscription removes).
UNSUBSCRIBED = "unsubscribed"


def _addresses(contact: Contact) -> list[str]:
    """The contact's email and phone that can go on the suppression list."""
    found = []
    for address in (contact.email, contact.phone):
        if not address:
            continue
        try:
            found.append(normalise_address(address))
        except ValidationFailed:
            continue  # stored before addresses were normalised: nothing to suppress it by
    return found


def unsubscribe(session: Session, organization_id: str, contact_id: int) -> Contact:
    """Mark a contact unsubscribed (idempotent: the first time is kept) and suppress its email
    and phone, so the person is never targeted through another list either.

    Raises:
        NotFound: no such contact in the organization.
    """
    contact = get_contact(session, organization_id, contact_id)
    if contact.unsubscribed_at is None:
        contact.unsubscribed_at = utcnow()
        contact.updated_at = contact.unsubscribed_at
        session.flush()
    addresses = _addresses(contact)
    if addresses:
        # The person opted out, not one of their listings: their other contacts (same email
        # or phone in another list, a later import) are left out through the suppression list.
        suppress(session, organization_id, addresses, reason=UNSUBSCRIBED)
    return contact


def resubscribe(session: Session, organization_id: str, contact_id: int) -> Contact:
    """Clear a contact's unsubscription (the contact asked to receive messages again), and the
    suppressions the unsubscription wrote (not those added for other reasons).

    Raises:
        NotFound: no such contact in the organization.
    """
    contact = get_contact(session, organization_id, contact_id)
    if contact.unsubscribed_at is not None:
        contact.unsubscribed_at = None
        contact.updated_at = utcnow()
        session.flush()
    session.execute(
        sa.delete(Suppression).where(
            col(Suppression.organization_id) == organization_id,
            col(Suppression.address).in_(_addresses(contact)),
            col(Suppression.reason) == UNSUBSCRIBED,
        )
    )
    return contact


def suppress(
    session: Session, organization_id: str, addresses: list[str], reason: str = "manual"
) -> list[Suppression]:
    """Put addresses on the suppression list; those already there are kept as they are.

    All or nothing: one invalid address refuses the whole call.

    Raises:
        ValidationFailed: ``INVALID_ADDRESS`` naming the first bad one, or more than 1000.
    """
    if not addresses or len(addresses) > MAX_SUPPRESS_BATCH:
        raise ValidationFailed(
            f"give 1 to {MAX_SUPPRESS_BATCH} addresses", code="INVALID_ADDRESSES"
        )
    if not 0 < len(reason) <= 64:
        raise ValidationFailed("reason has 1 to 64 characters", code="INVALID_REASON")
    wanted = list(dict.fromkeys(normalise_address(a) for a in addresses))
    have = {
        s.address: s
        for s in session.exec(
            select(Suppression).where(
                col(Suppression.organization_id) == organization_id,
                col(Suppression.address).in_(wanted),
            )
        )
    }
    for address in wanted:
        if address not in have:
            have[address] = Suppression(
                organization_id=organization_id, address=address, reason=reason
            )
            session.add(have[address])
    session.flush()
    return [have[a] for a in wanted]


def unsuppress(session: Session, organization_id: str, address: str) -> None:
    """Take an address off the suppression list.

    Raises:
        NotFound: the address is not on the list.
    """
    normalised = normalise_address(address)
    deleted = session.execute(
        sa.delete(Suppression).where(
            col(Suppression.organization_id) == organization_id,
            col(Suppression.address) == normalised,
        )
    )
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"{normalised!r} is not suppressed", code="SUPPRESSION_NOT_FOUND")


def list_suppressions(
    session: Session, organization_id: str, *, offset: int = 0, limit: int = 20
) -> tuple[list[Suppression], int]:
    """A page of the suppression list, newest first, and its size."""
    where = col(Suppression.organization_id) == organization_id
    total = int(
        session.scalar(sa.select(sa.func.count()).select_from(Suppression).where(where)) or 0
    )
    rows = session.exec(
        select(Suppression)
        .where(where)
        .order_by(col(Suppression.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total or 0)


#: Delivery error codes after which a channel never tries the contact again.
BLOCKING_CODES = frozenset({"USER_BLOCKED"})


def block_contacts(
    session: Session, channel: str, outcomes: Iterable[tuple[int, str | None]]
) -> int:
    """Record the contacts a channel can no longer reach, from ``(contact id, error code)``.

    Returns how many outcomes carried a blocking code (already-blocked contacts stay as they are).
    """
    rows = [
        {"contact_id": contact_id, "channel": channel, "code": code, "created_at": utcnow()}
        for contact_id, code in outcomes
        if code in BLOCKING_CODES
    ]
    if rows:
        dialect = session.get_bind().dialect.name
        session.execute(insert_ignore(table_of(ChannelBlock), dialect), rows)
    return len(rows)
