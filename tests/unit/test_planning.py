"""Planning cuts an execution's audience into chunks of contiguous contact ids: every recipient
in exactly one chunk, in id order, whether the database counts them or a sample is drawn."""

from __future__ import annotations

import sqlalchemy as sa

from engine.audience.recipients import in_sample
from engine.db import session_scope
from engine.execution.dispatch import claim_due_executions
from engine.execution.planning import plan_execution
from engine.models import Chunk, Contact, Execution, ExecutionRecipient
from engine.runtime import Runtime
from tests.factories import execute, make_campaign


def _plan(rt: Runtime, percentage: int, chunk_size: int) -> tuple[str, list[Chunk], list[int]]:
    """Plan a run of a 2,500-contact campaign whose every third contact was deleted."""
    _, campaign_id = make_campaign(rt, contacts=2500)
    with session_scope(rt.engine) as session:
        ids = sorted(session.scalars(sa.select(Contact.id)))
        session.execute(sa.delete(Contact).where(Contact.id.in_(ids[::3])))  # type: ignore[attr-defined]
    execution_id = execute(rt, campaign_id, target_percentage=percentage)
    with session_scope(rt.engine) as session:
        assert claim_due_executions(session) == [execution_id]  # as the scheduler does
    with session_scope(rt.engine) as session:
        assert plan_execution(session, execution_id, chunk_size)
    with session_scope(rt.engine) as session:
        chunks = list(
            session.scalars(
                sa.select(Chunk).where(Chunk.execution_id == execution_id).order_by(Chunk.chunk_no)  # type: ignore[arg-type]
            )
        )
        recipients = sorted(
            session.scalars(
                sa.select(ExecutionRecipient.contact_id).where(
                    ExecutionRecipient.execution_id == execution_id  # type: ignore[arg-type]
                )
            )
        )
        execution = session.get_one(Execution, execution_id)
        assert execution.total == 2 * sum(c.size for c in chunks)  # two messages each
    return execution_id, chunks, recipients


def _members(chunks: list[Chunk], ids: list[int]) -> list[list[int]]:
    return [[i for i in ids if c.first_contact_id <= i <= c.last_contact_id] for c in chunks]


def test_the_whole_audience_is_cut_into_full_chunks_in_id_order(rt: Runtime) -> None:
    _, chunks, recipients = _plan(rt, 100, chunk_size=400)

    assert len(recipients) == 1666
    assert [c.chunk_no for c in chunks] == [0, 1, 2, 3, 4]
    assert [c.size for c in chunks] == [400, 400, 400, 400, 66]
    members = _members(chunks, recipients)
    assert [len(m) for m in members] == [c.size for c in chunks]
    assert [m[0] for m in members] == [c.first_contact_id for c in chunks]
    assert [m[-1] for m in members] == [c.last_contact_id for c in chunks]
    assert [i for m in members for i in m] == recipients  # each once, in order


def test_a_sample_is_cut_from_the_sampled_contacts_only(rt: Runtime) -> None:
    execution_id, chunks, recipients = _plan(rt, 30, chunk_size=100)

    sampled = [i for i in recipients if in_sample(execution_id, i, 30)]
    assert 350 < len(sampled) < 650
    assert sum(c.size for c in chunks) == len(sampled)
    assert all(c.size == 100 for c in chunks[:-1]) and 0 < chunks[-1].size <= 100
    assert [c.first_contact_id for c in chunks] == sampled[::100]
