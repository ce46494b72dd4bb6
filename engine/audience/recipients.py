"""An execution's recipients: the audience frozen at planning (or a retry's copy of its
first run's), its ``targetPercentage`` sample, and its test contacts.

``execution_recipients`` holds one contact per person; :func:`in_sample` decides the sample per
contact and execution id, the same in the planner and in every worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import islice

import sqlalchemy as sa
from sqlmodel import Session, col

from engine.audience.audience_spec import AudienceSpec, campaign_audience
from engine.audience.targeting import audience_ids, count_audience
from engine.db import table_of
from engine.models import Campaign, ChannelBlock, ContactTag, Execution, ExecutionRecipient, Tag

#: The tag of an organization's test contacts: a test-mode execution sends only to them.
TEST_TAG = "test-contact"


def freeze_recipients(
    session: Session,
    execution_id: str,
    campaign: Campaign,
    as_of: datetime,
    test_mode: bool = False,
) -> None:
    """Write the execution's recipients: one contact (the lowest id) per person in the audience.

    In test mode the recipients are the organization's test contacts (tagged
    :data:`TEST_TAG`) when it has any; otherwise the real audience, whom the workers then only
    render messages for (a dry run).

    One ``INSERT … SELECT`` in id order inside the planning transaction, so the database does
    the work and the primary key grows at its end.
    """
    spec = campaign_audience(campaign)
    if test_mode:
        tested = AudienceSpec(tags=(TEST_TAG,))
        if count_audience(session, campaign.organization_id, tested, as_of, campaign.channel):
            spec = tested
    people = audience_ids(
        session, campaign.organization_id, spec, as_of, campaign.channel
    ).subquery()
    rows = sa.select(sa.literal(execution_id), people.c.contact_id).order_by(people.c.contact_id)
    session.execute(
        sa.insert(table_of(ExecutionRecipient)).from_select(["execution_id", "contact_id"], rows)
    )


def copy_recipients(session: Session, source_id: str, execution_id: str, channel: str) -> None:
    """Give ``execution_id`` the recipients ``source_id`` was sent to (its sample, if it had one),
    except contacts ``channel`` has blocked since.

    One ``INSERT … SELECT`` when the source targeted everyone; otherwise its sampled contacts
    are copied in batches (the sample is decided per execution id, in Python).
    """
    source = session.get_one(Execution, source_id)
    table = table_of(ExecutionRecipient)
    if source.target_percentage >= 100:
        rows = (
            sa.select(sa.literal(execution_id), col(ExecutionRecipient.contact_id))
            .where(col(ExecutionRecipient.execution_id) == source_id)
            .order_by(col(ExecutionRecipient.contact_id))
        )
        session.execute(sa.insert(table).from_select(["execution_id", "contact_id"], rows))
        _drop_blocked(session, execution_id, channel)
        return
    # Read before writing: a streaming read and inserts into the same table don't interleave
    # on every driver.
    sampled = iter(list(iter_recipient_ids(session, source_id, source.target_percentage)))
    while block := list(islice(sampled, 10_000)):
        session.execute(
            sa.insert(table), [{"execution_id": execution_id, "contact_id": c} for c in block]
        )
    _drop_blocked(session, execution_id, channel)


def _drop_blocked(session: Session, execution_id: str, channel: str) -> None:
    """Remove the recipients ``channel`` can no longer reach (blocked since they were frozen)."""
    blocked = sa.select(col(ChannelBlock.contact_id)).where(col(ChannelBlock.channel) == channel)
    session.execute(
        sa.delete(ExecutionRecipient).where(
            col(ExecutionRecipient.execution_id) == execution_id,
            col(ExecutionRecipient.contact_id).in_(blocked),
        )
    )


def test_contacts(session: Session, organization_id: str, contact_ids: Sequence[int]) -> set[int]:
    """Which of ``contact_ids`` are test contacts (tagged :data:`TEST_TAG`)."""
    if not contact_ids:
        return set()
    return set(
        session.scalars(
            sa.select(col(ContactTag.contact_id))
            .join(Tag, col(Tag.id) == col(ContactTag.tag_id))
            .where(
                col(Tag.organization_id) == organization_id,
                col(Tag.name) == TEST_TAG,
                col(ContactTag.contact_id).in_(list(contact_ids)),
            )
        )
    )


def in_sample(execution_id: str, contact_id: int, percentage: int) -> bool:
    """Return whether a contact falls in an execution's ``targetPercentage`` sample.

    Deterministic: the same contact gets the same answer for the same execution, in the
    planner and in every worker.
    """
    if percentage >= 100:
        return True
    digest = hashlib.blake2b(f"{execution_id}:{contact_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100 < percentage


#: Chunk ranges of a whole audience, counted by the database: each recipient's rank in id
#: order, divided by the chunk size, names its chunk (integer division on both stores).
_RANGES = sa.text(
    """
    SELECT min(contact_id), max(contact_id), count(*)
    FROM (SELECT contact_id, (row_number() OVER (ORDER BY contact_id) - 1) / :size AS chunk_no
          FROM execution_recipients WHERE execution_id = :execution_id) AS ranked
    GROUP BY chunk_no
    ORDER BY chunk_no
    """
)


def recipient_ranges(
    session: Session, execution_id: str, percentage: int, size: int
) -> Iterator[tuple[int, int, int]]:
    """The execution's sampled recipients cut into chunks of ``size`` in id order, as
    ``(first contact id, last contact id, recipients)``.

    The whole audience (100 %) is cut by the database in one query; a sample is decided per
    contact in Python (:func:`in_sample`), streaming the ids.
    """
    if percentage >= 100:
        params = {"execution_id": execution_id, "size": size}
        for first, last, count in session.connection().execute(_RANGES, params):
            yield int(first), int(last), int(count)
        return
    ids = iter_recipient_ids(session, execution_id, percentage)
    while block := list(islice(ids, size)):
        yield block[0], block[-1], len(block)


def iter_recipient_ids(session: Session, execution_id: str, percentage: int) -> Iterator[int]:
    """Yield the execution's sampled recipients in ascending id order, streaming."""
    query = (
        sa.select(col(ExecutionRecipient.contact_id))
        .where(col(ExecutionRecipient.execution_id) == execution_id)
        .order_by(col(ExecutionRecipient.contact_id))
        .execution_options(yield_per=10_000)
    )
    for (contact_id,) in session.execute(query):
        if in_sample(execution_id, contact_id, percentage):
            yield contact_id
