"""A send batch's outcomes are recorded exactly once: deliveries, counters and error counts.

Runs on SQLite and PostgreSQL (each has its own delivery insert).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select

from engine.db import session_scope
from engine.execution.dispatch import claim_due_executions
from engine.execution.planning import plan_execution
from engine.execution.recording import record_batch
from engine.execution.sending import SendOutcome
from engine.models import Chunk, Delivery, Execution, ExecutionErrorCount
from engine.runtime import Runtime
from tests.factories import execute, make_campaign


def _first_chunk(rt: Runtime) -> Chunk:
    """A planned execution's first chunk (its contacts need not exist for recording)."""
    _, campaign_id = make_campaign(rt, contacts=5)
    execute(rt, campaign_id)
    with session_scope(rt.engine) as session:
        for execution_id in claim_due_executions(session):
            plan_execution(session, execution_id, chunk_size=100)
    with session_scope(rt.engine) as session:
        chunk = session.exec(select(Chunk).order_by(col(Chunk.id))).first()
        assert chunk is not None
        return chunk


def _outcome(contact_id: int) -> SendOutcome:
    kind = contact_id % 3
    if kind == 0:
        return SendOutcome(contact_id, "sent", 1, provider_message_id=f"m-{contact_id}")
    if kind == 1:
        code = "E_TIMEOUT" if contact_id % 2 else "E_REFUSED"
        return SendOutcome(contact_id, "failed", 3, error_code=code, error_message="no luck")
    return SendOutcome(contact_id, "skipped", 0, variation="control")


def _record(rt: Runtime, chunk: Chunk, outcomes: list[SendOutcome]) -> None:
    with session_scope(rt.engine) as session:
        record_batch(session, chunk, chunk.attempts, outcomes)


def _counters(rt: Runtime, execution_id: str) -> tuple[int, int, int, int]:
    with session_scope(rt.engine) as session:
        e = session.get(Execution, execution_id)
        assert e is not None
        return (e.processed, e.successful, e.failed, e.skipped)


def test_a_large_batch_records_exactly_its_rows(rt: Runtime) -> None:
    chunk = _first_chunk(rt)
    # Out of contact order, as a batch's sends may finish.
    outcomes = [_outcome(c) for c in reversed(range(1, 1001))]
    # A provider's text is fitted to the columns: NUL characters dropped, over-long cut.
    outcomes[0] = SendOutcome(1000, "failed", 2, error_code="E\x00" + "X" * 100)
    outcomes[1] = SendOutcome(999, "sent", 1, provider_message_id="p" * 300, variation="v" * 80)

    _record(rt, chunk, outcomes)

    with session_scope(rt.engine) as session:
        stored = {
            d.contact_id: (str(d.status), d.error_code, d.attempts, d.provider_message_id)
            for d in session.exec(select(Delivery))
        }
        variation = session.scalar(
            sa.select(col(Delivery.variation)).where(col(Delivery.contact_id) == 999)
        )
        errors = {
            e.code: e.count
            for e in session.exec(
                select(ExecutionErrorCount).where(
                    col(ExecutionErrorCount.execution_id) == chunk.execution_id
                )
            )
        }
    expected = {
        o.contact_id: (o.status, o.error_code, o.attempts, o.provider_message_id)
        for o in outcomes[2:]
    }
    expected[1000] = ("failed", "E" + "X" * 63, 2, None)
    expected[999] = ("sent", None, 1, "p" * 200)
    assert stored == expected
    assert variation == "v" * 64
    statuses = [s for s, *_ in expected.values()]
    assert _counters(rt, chunk.execution_id) == (
        1000,
        statuses.count("sent"),
        statuses.count("failed"),
        statuses.count("skipped"),
    )
    codes = [c for s, c, *_ in expected.values() if s == "failed"]
    assert errors == {code: codes.count(code) for code in set(codes)}


def test_a_batch_recorded_twice_counts_once(rt: Runtime) -> None:
    chunk = _first_chunk(rt)
    batch = [_outcome(c) for c in range(1, 61)]

    _record(rt, chunk, batch)
    _record(rt, chunk, batch)  # a worker presumed dead records the same batch again
    # A later attempt's batch overlapping the first: only the new contacts count.
    _record(rt, chunk, [_outcome(c) for c in range(41, 81)])

    with session_scope(rt.engine) as session:
        rows = session.scalar(sa.select(sa.func.count()).select_from(Delivery))
        errors = sum(
            e.count
            for e in session.exec(
                select(ExecutionErrorCount).where(
                    col(ExecutionErrorCount.execution_id) == chunk.execution_id
                )
            )
        )
    statuses = [_outcome(c).status for c in range(1, 81)]
    assert rows == 80
    assert _counters(rt, chunk.execution_id) == (
        80,
        statuses.count("sent"),
        statuses.count("failed"),
        statuses.count("skipped"),
    )
    assert errors == statuses.count("failed")
