"""a new profile's first attributes as one history row (attribute_changes.name NULL)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attribute_changes", schema=None) as batch_op:
        batch_op.alter_column("name", existing_type=sa.String(length=255), nullable=True)


def downgrade() -> None:
    # Each first-values row becomes one row per attribute again, as before.
    changes = sa.table(
        "attribute_changes",
        sa.column("id", sa.BigInteger),
        sa.column("profile_id", sa.BigInteger),
        sa.column("name", sa.String),
        sa.column("old_value", sa.JSON),
        sa.column("new_value", sa.JSON),
        sa.column("source", sa.String),
        sa.column("changed_at", sa.DateTime(timezone=True)),
        sa.column("recorded_at", sa.DateTime(timezone=True)),
        sa.column("via", sa.String),
    )
    bind = op.get_bind()
    firsts = bind.execute(sa.select(changes).where(changes.c.name.is_(None))).mappings().all()
    rows = [
        {**{k: v for k, v in first.items() if k != "id"}, "name": name, "new_value": value}
        for first in firsts
        for name, value in (first["new_value"] or {}).items()
    ]
    if rows:
        bind.execute(sa.insert(changes), rows)
    bind.execute(sa.delete(changes).where(changes.c.name.is_(None)))
    with op.batch_alter_table("attribute_changes", schema=None) as batch_op:
        batch_op.alter_column("name", existing_type=sa.String(length=255), nullable=False)
