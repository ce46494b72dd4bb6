"""Login sessions (token families) whose refresh tokens are used once, and disabled users.

Refresh tokens issued before this revision carry no ``jti``: they are refused, so their users
log in again once.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sqlmodel.sql.sqltypes.AutoString(length=32)
_TIME = sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled_at", _TIME, nullable=True))
    op.create_table(
        "token_families",
        sa.Column("id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_token_families_user_id", "token_families", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("jti", _ID, nullable=False),
        sa.Column("family_id", _ID, nullable=False),
        sa.Column("issued_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(["family_id"], ["token_families.id"]),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_refresh_tokens_family_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_token_families_user_id", table_name="token_families")
    op.drop_table("token_families")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
