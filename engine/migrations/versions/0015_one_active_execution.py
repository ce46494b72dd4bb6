"""One active execution per campaign (partial unique index), idempotent execute requests,
and executions that retry another for those it did not reach.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = "status IN ('scheduled', 'queued', 'running', 'paused')"
_KEYED = "idempotency_key IS NOT NULL"
#: Which of two active executions of a campaign to keep: the furthest along (it has reached
#: people; the other is most likely a double click's duplicate), then the oldest.
_RANK = (
    "(CASE {t}.status WHEN 'running' THEN 0 WHEN 'paused' THEN 1 WHEN 'queued' THEN 2 ELSE 3 END)"
)


def upgrade() -> None:
    """Apply this revision.

    A store that already holds two active executions of one campaign keeps the one furthest
    along (running, then paused, queued, scheduled; then the oldest); the others are cancelled
    (their pending chunks too), so the index can be built.
    """
    op.execute(
        f"""
        UPDATE executions SET status = 'cancelled', finished_at = CURRENT_TIMESTAMP,
            updated_at = CURRENT_TIMESTAMP,
            error = 'cancelled by upgrade: another execution of the campaign was active'
        WHERE {_ACTIVE} AND EXISTS (
            SELECT 1 FROM executions AS kept
            WHERE kept.campaign_id = executions.campaign_id
              AND kept.status IN ('scheduled', 'queued', 'running', 'paused')
              AND ({_RANK.format(t="kept")} < {_RANK.format(t="executions")}
                   OR ({_RANK.format(t="kept")} = {_RANK.format(t="executions")}
                       AND (kept.created_at < executions.created_at
                            OR (kept.created_at = executions.created_at
                                AND kept.id < executions.id))))
        )
        """
    )
    op.execute(
        "UPDATE chunks SET status = 'cancelled' WHERE status = 'pending' AND execution_id IN "
        "(SELECT id FROM executions WHERE status = 'cancelled')"
    )
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("retry_of", sa.String(length=32), nullable=True))
    op.create_index(
        "ux_executions_one_active",
        "executions",
        ["campaign_id"],
        unique=True,
        postgresql_where=sa.text(_ACTIVE),
        sqlite_where=sa.text(_ACTIVE),
    )
    op.create_index(
        "ux_executions_idempotency_key",
        "executions",
        ["organization_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text(_KEYED),
        sqlite_where=sa.text(_KEYED),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ux_executions_idempotency_key", table_name="executions")
    op.drop_index("ux_executions_one_active", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("retry_of")
        batch.drop_column("idempotency_key")
