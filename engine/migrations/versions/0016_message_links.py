"""message links: the small ids that click and unsubscribe tokens refer to

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "message_links",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("campaign_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("execution_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("touchpoint_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column(
            "urls",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("execution_id", "touchpoint_id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("message_links")
