"""retention: legal holds on requests and meetings, two-phase purge marks, the purge's audit log

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 11:15:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD = ("petitions", "meetings")
MARKED = ("petition_media", "meeting_recordings")


def upgrade() -> None:
    for table in HELD:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("retention_hold", sa.Text(), nullable=True))
    with op.batch_alter_table("petitions") as batch:
        batch.add_column(sa.Column("contact_purged_at", server.db.UtcDateTime(), nullable=True))
    for table in MARKED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("purged_at", server.db.UtcDateTime(), nullable=True))
    op.create_table(
        "ops_retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("finished_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_retention_runs")),
    )


def downgrade() -> None:
    op.drop_table("ops_retention_runs")
    for table in MARKED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("purged_at")
    with op.batch_alter_table("petitions") as batch:
        batch.drop_column("contact_purged_at")
    for table in HELD:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("retention_hold")
