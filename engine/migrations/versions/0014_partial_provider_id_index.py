"""The deliveries' provider-id index covers only rows that have one (partial index).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHERE = sa.text("provider_message_id IS NOT NULL")


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index("ix_deliveries_provider_message_id", table_name="deliveries")
    op.create_index(
        "ix_deliveries_provider_message_id",
        "deliveries",
        ["provider_message_id"],
        postgresql_where=_WHERE,
        sqlite_where=_WHERE,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_deliveries_provider_message_id", table_name="deliveries")
    op.create_index("ix_deliveries_provider_message_id", "deliveries", ["provider_message_id"])
