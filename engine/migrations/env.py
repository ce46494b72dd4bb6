"""Alembic environment: migrates the URL in the config, using the SQLModel metadata."""

import sqlalchemy as sa
from alembic import context
from sqlmodel import SQLModel

import engine.models  # noqa: F401  (registers every table on the metadata)
from engine.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    """Run migrations online against ``sqlalchemy.url``."""
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
