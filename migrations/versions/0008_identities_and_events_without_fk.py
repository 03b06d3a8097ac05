"""identities and events without a foreign key to profiles

Profiles are never deleted (a merged one stays, pointing at its survivor), and rows of
both tables are only written beside their profile by lifecycle.profiles and
lifecycle.events. The key's check, one lookup per row, was a third of the time of an
import's identities COPY (docs/import.md), as it was for the history (0007).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("identities", "events")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(
                batch_op.f(f"fk_{table}_profile_id_profiles"), type_="foreignkey"
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_profile_id_profiles"), "profiles", ["profile_id"], ["id"]
            )
