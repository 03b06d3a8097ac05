"""attribute history without a foreign key

History rows are append-only and profiles are never deleted; the per-row key check was
over half the cost of writing a new person's history in a CSV import.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 16:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attribute_changes", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_attribute_changes_profile_id_profiles"), type_="foreignkey"
        )


def downgrade() -> None:
    with op.batch_alter_table("attribute_changes", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_attribute_changes_profile_id_profiles"),
            "profiles",
            ["profile_id"],
            ["id"],
        )
