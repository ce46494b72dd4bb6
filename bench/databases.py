"""The benchmarks' PostgreSQL database: created when missing (the scripts' own setup)."""

from __future__ import annotations

import sqlalchemy as sa

from engine.db import make_engine


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist (others: nothing)."""
    target = sa.engine.make_url(url)
    if target.get_backend_name() != "postgresql" or not target.database:
        return
    admin = make_engine(
        target.set(database="postgres").render_as_string(hide_password=False),
        poolclass=sa.pool.NullPool,
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        exists = conn.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
