"""What every contact writer shares: address normalisation, tags and custom fields.

Emails and phones are stored normalised — emails lower-cased by email-validator, phones without
separators — so that matching, deduplication and the suppression list compare like with like,
whichever door (API, the contact lists API, CSV, sheet) a contact came through.
"""

from __future__ import annotations

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session, col, select

from engine.errors import ValidationFailed
from engine.models import ContactField, ContactTag, Tag

#: Written between a phone number's digits, dropped when normalising.
_SEPARATORS = str.maketrans("", "", " -().")


def normalise_email(text: str, code: str = "INVALID_EMAIL") -> str:
    """The email as contacts store it (normalised, lower-case).

    Raises:
        ValidationFailed: ``code``, naming why it is not an email.
    """
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationFailed(f"invalid email: {exc}", code=code) from exc


def normalise_phone(text: str, code: str = "INVALID_PHONE") -> str:
    """The phone number as contacts store it: an optional ``+`` and 4 to 20 digits.

    Raises:
        ValidationFailed: ``code``, when it is not such a number once separators are dropped.
    """
    compact = text.strip().translate(_SEPARATORS)
    digits = compact[1:] if compact.startswith("+") else compact
    if 4 <= len(digits) <= 20 and digits.isascii() and digits.isdigit():
        return compact
    raise ValidationFailed(f"{text!r} is not a phone number", code=code)


def normalise_address(address: str) -> str:
    """An email or a phone number, normalised as contacts store them.

    Raises:
        ValidationFailed: ``INVALID_ADDRESS`` for text that is neither.
    """
    if "@" in address:
        return normalise_email(address, code="INVALID_ADDRESS")
    return normalise_phone(address, code="INVALID_ADDRESS")


def tags_by_contact(session: Session, contact_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """Each contact's ``(tag id, tag name)`` pairs, in tag id order."""
    found: dict[int, list[tuple[int, str]]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return found
    rows = session.execute(
        sa.select(col(ContactTag.contact_id), col(Tag.id), col(Tag.name))
        .join(Tag, col(Tag.id) == col(ContactTag.tag_id))
        .where(col(ContactTag.contact_id).in_(contact_ids))
        .order_by(col(Tag.id))
    )
    for contact_id, tag_id, name in rows:
        found[contact_id].append((tag_id, name))
    return found


def tag_ids(session: Session, organization_id: str, names: list[str]) -> dict[str, int]:
    """Ids of the named tags, creating the missing ones."""
    if not names:
        return {}
    have = {
        t.name: t.id
        for t in session.exec(
            select(Tag).where(col(Tag.organization_id) == organization_id, col(Tag.name).in_(names))
        )
    }
    for name in names:
        if name not in have:
            tag = Tag(organization_id=organization_id, name=name)
            session.add(tag)
            session.flush()
            have[name] = tag.id
    return {k: v for k, v in have.items() if v is not None}


def set_tags(session: Session, organization_id: str, contact_id: int, names: list[str]) -> None:
    """Replace a contact's tags with ``names`` (tags are created as needed)."""
    ids = tag_ids(session, organization_id, names)
    session.execute(sa.delete(ContactTag).where(col(ContactTag.contact_id) == contact_id))
    for name in names:
        session.add(ContactTag(contact_id=contact_id, tag_id=ids[name]))


def register_fields(session: Session, organization_id: str, names: set[str]) -> None:
    """Custom fields seen in data become known (as strings) so conditions can name them."""
    if not names:
        return
    known = set(
        session.scalars(
            sa.select(col(ContactField.name)).where(
                col(ContactField.organization_id) == organization_id,
                col(ContactField.name).in_(names),
            )
        )
    )
    for name in sorted(names - known):
        session.add(ContactField(organization_id=organization_id, name=name))
