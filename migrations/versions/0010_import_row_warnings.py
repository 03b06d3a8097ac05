"""import row warnings, and when an import started

A row imported with a warning (a phone held by someone else, an address or number that
is not valid and was left out, an opt-out kept) is kept with its line, as a rejected
row is, so the marketer sees every one, not only the preview's. ``started_at``: the rate
of a running import is the rows done since it started (not since it was queued).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 22:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lifecycle.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("started_at", lifecycle.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "import_warnings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "import_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("warning", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"], ["imports.id"], name=op.f("fk_import_warnings_import_id_imports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_warnings")),
    )
    op.create_index(
        "ix_import_warnings_import_line", "import_warnings", ["import_id", "line"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_import_warnings_import_line", table_name="import_warnings")
    op.drop_table("import_warnings")
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_column("started_at")
