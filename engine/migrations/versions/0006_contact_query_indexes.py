"""contact query indexes

Conditions on Email / Phone / Name are scoped to (list_id, organization_id) and compare by
code point: the organization-leading indexes of 0005 give way to list-leading ones, built
with ``COLLATE "C"`` on PostgreSQL (``postgresql_ops``; SQLite ignores it, its default
BINARY collation is already code point order).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The new indexes: name -> the contact column after (list_id, organization_id).
_INDEXES = {
    "ix_contacts_list_email": "email",
    "ix_contacts_list_phone": "phone",
    "ix_contacts_list_name": "name",
}


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_org_email")
        batch_op.drop_index("ix_contacts_org_phone")
        batch_op.drop_index("ix_contacts_org_name")
        for name, column in _INDEXES.items():
            batch_op.create_index(
                name,
                ["list_id", "organization_id", column],
                unique=False,
                postgresql_ops={column: 'COLLATE "C"'},
            )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        for name in _INDEXES:
            batch_op.drop_index(name)
        batch_op.create_index("ix_contacts_org_email", ["organization_id", "email"], unique=False)
        batch_op.create_index("ix_contacts_org_name", ["organization_id", "name"], unique=False)
        batch_op.create_index("ix_contacts_org_phone", ["organization_id", "phone"], unique=False)
