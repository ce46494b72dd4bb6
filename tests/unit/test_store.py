"""The store on SQLite and PostgreSQL: schema, WAL, insert-or-skip and additive upserts."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from engine.db import insert_ignore, make_engine, session_scope, table_of, upsert_add
from engine.models import Delivery, ExecutionErrorCount
from engine.runtime import Runtime
from tests.factories import execute, make_campaign


def test_migrations_create_every_table(rt: Runtime) -> None:
    tables = set(sa.inspect(rt.engine).get_table_names())
    assert tables >= {
        "organizations", "campaigns", "touchpoints", "contacts", "executions", "chunks",
        "deliveries", "execution_errors", "execution_rates", "alembic_version",
    }  # fmt: skip


def test_migrations_and_models_agree(rt: Runtime) -> None:
    """Every model change comes with its migration: autogenerate finds nothing left to do."""
    with rt.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60000


def test_a_delivery_is_recorded_once_whatever_the_retries(rt: Runtime) -> None:
    _, campaign_id = make_campaign(rt, contacts=3)
    execution_id = execute(rt, campaign_id)
    row = {"execution_id": execution_id, "touchpoint_id": "tp_1", "contact_id": 1, "status": "sent"}
    table = table_of(Delivery)
    with session_scope(rt.engine) as session:
        dialect = session.get_bind().dialect.name
        first = session.execute(insert_ignore(table, dialect).returning(table.c.id), [row]).all()
        again = session.execute(insert_ignore(table, dialect).returning(table.c.id), [row]).all()
    assert len(first) == 1 and again == []
    with session_scope(rt.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(table)) == 1


def test_error_counts_add_up_across_chunks(rt: Runtime) -> None:
    _, campaign_id = make_campaign(rt, contacts=3)
    execution_id = execute(rt, campaign_id)
    table = table_of(ExecutionErrorCount)
    for n in (2, 5):
        with session_scope(rt.engine) as session:
            dialect = session.get_bind().dialect.name
            rows = [
                {"execution_id": execution_id, "code": "USER_BLOCKED", "count": n, "message": "m"}
            ]
            session.execute(upsert_add(table, dialect, ["execution_id", "code"], "count", rows))
    with session_scope(rt.engine) as session:
        assert session.scalar(sa.select(table.c.count)) == 7


def test_upgrading_a_store_with_duplicate_runs_keeps_the_one_furthest_along(rt: Runtime) -> None:
    """Migration 0015 builds the one-active-execution index on a store that already broke it."""
    from alembic import command

    from engine.db import alembic_config
    from engine.models import Execution

    _, campaign_id = make_campaign(rt, contacts=3)
    with rt.engine.begin() as conn:
        cfg = alembic_config(rt.settings.database_url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0014")
    with rt.engine.begin() as conn:  # a double click under the previous release
        for id_, status, created in [
            ("exe_running", "running", "2026-01-01 10:00:00"),
            ("exe_double", "scheduled", "2026-01-01 10:00:01"),
            ("exe_old_done", "completed", "2025-12-01 10:00:00"),
        ]:
            conn.execute(
                sa.text(
                    "INSERT INTO executions (id, organization_id, campaign_id, status, priority,"
                    " test_mode, target_percentage, scheduled_at, plan_attempts, total,"
                    " processed, successful, failed, skipped, created_at, updated_at) SELECT"
                    " :id, organization_id, id, :status, 'normal', false, 100, :created, 0, 0,"
                    " 0, 0, 0, 0, :created, :created FROM campaigns WHERE id = :campaign"
                ),
                {"id": id_, "status": status, "created": created, "campaign": campaign_id},
            )
    with rt.engine.begin() as conn:
        cfg = alembic_config(rt.settings.database_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    with session_scope(rt.engine) as session:
        rows = session.execute(sa.select(Execution.id, Execution.status, Execution.finished_at))
        kept = {id_: (status, finished is not None) for id_, status, finished in rows}
    assert kept == {
        "exe_running": ("running", False),  # it has reached people: kept
        "exe_double": ("cancelled", True),
        "exe_old_done": ("completed", False),
    }
