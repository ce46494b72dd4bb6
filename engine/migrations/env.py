"""Alembic environment: migrates the URL in the config, using the SQLModel metadata."""

import sqlalchemy as sa
from alembic import context
from sqlmodel import SQLModel

import engine.models  # noqa: F401  (registers every table on the metadata)
from engine.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    """Run migrations on the connection ``engine.db.migrate`` passes, or on ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


run_migrations()
