"""ops: the system page's history (per-minute samples rolled up to hours)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 11:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ops_system_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", server.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("rooms", sa.Float(), nullable=False),
        sa.Column("participants", sa.Float(), nullable=False),
        sa.Column("forwarded_bps", sa.Float(), nullable=False),
        sa.Column("kiosks_online", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_system_samples")),
    )
    op.create_index("ix_ops_system_samples_at", "ops_system_samples", ["at"])
    op.create_table(
        "ops_hall_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", server.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("hall", sa.String(length=120), nullable=False),
        sa.Column("present_minutes", sa.Float(), nullable=False),
        sa.Column("weak_minutes", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_hall_samples")),
    )
    op.create_index("ix_ops_hall_samples_at", "ops_hall_samples", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ops_hall_samples_at", table_name="ops_hall_samples")
    op.drop_table("ops_hall_samples")
    op.drop_index("ix_ops_system_samples_at", table_name="ops_system_samples")
    op.drop_table("ops_system_samples")
