"""Database engine factory, SQLite pragmas, migrations entry point and portable upserts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from engine.errors import NotFound

M = TypeVar("M", bound=SQLModel)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create a SQLAlchemy engine for ``url``.

    SQLite gets WAL mode, a busy timeout and ``BEGIN IMMEDIATE`` transactions, so worker
    threads queue for the single writer instead of failing with "database is locked".

    Args:
        url: a SQLAlchemy URL (``sqlite:///file.db``, ``postgresql+psycopg://…``).
        kwargs: passed to :func:`sqlalchemy.create_engine`.

    Returns:
        The engine.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 60}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook emit BEGIN itself (pysqlite's own BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads then
        # writes can fail with SQLITE_BUSY without waiting when another writer got in first.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Open a session as one unit of work: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Any:
    """Return an Alembic ``Config`` pointing at the packaged migrations for ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


#: PostgreSQL advisory lock held while migrating (any constant shared by all our processes).
MIGRATION_LOCK_KEY = 0x63616D70  # "camp"


def migrate(url: str, keys: Sequence[str] | None = None) -> None:
    """Bring the database at ``url`` to the newest schema (``alembic upgrade head``).

    Safe when several processes start at once: on PostgreSQL one migrates under an advisory
    lock while the others wait, then find the schema at head; SQLite has a single writer.
    ``keys`` (the process's verification keys) are what a migration that encrypts stored
    credentials uses; without them it reads ``SECRET_KEY`` from the environment.
    """
    from alembic import command

    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            if keys:
                cfg.attributes["secret_keys"] = tuple(keys)
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def get_owned(
    session: Session,
    model: type[M],
    key: Any,
    organization_id: str | None,
    *,
    what: str,
    code: str,
    **options: Any,
) -> M:
    """The ``model`` row with primary key ``key``, if it belongs to ``organization_id``.

    The one owned-object lookup: another organization's object is answered exactly like a
    missing one. No ``organization_id`` (internal callers) accepts any organization;
    ``options`` go to :meth:`Session.get` (``with_for_update``, ``populate_existing``).

    Raises:
        NotFound: ``code``, naming ``what`` and ``key``.
    """
    found = session.get(model, key, **options)
    owner = getattr(found, "organization_id", None)
    if found is None or (organization_id and owner != organization_id):
        raise NotFound(f"{what} {key!r} not found", code=code)
    return found


def table_of(model: type[SQLModel]) -> sa.Table:
    """Return the Core table of a table model, typed (SQLModel does not declare ``__table__``)."""
    return cast(sa.Table, model.__table__)  # type: ignore[attr-defined]


def insert_ignore(table: sa.Table, dialect: str) -> Any:
    """Return ``INSERT … ON CONFLICT DO NOTHING`` for ``table`` (``sqlite`` or ``postgresql``)."""
    stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return stmt.on_conflict_do_nothing()


def upsert_add(
    table: sa.Table, dialect: str, keys: list[str], add: str, rows: list[dict[str, Any]]
) -> Any:
    """Return an insert of ``rows`` that, on a key conflict, adds the new ``add`` column value.

    Example: counting errors by code, ``count = execution_errors.count + excluded.count``.
    """
    stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    stmt = stmt.values(rows)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={add: table.c[add] + stmt.excluded[add]}
    )
