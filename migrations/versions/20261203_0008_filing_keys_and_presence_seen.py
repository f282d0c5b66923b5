"""filing idempotency keys per kiosk; last time media was seen on an open presence

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "petition_filing_keys",
        sa.Column("kiosk_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("pin_sealed", sa.String(length=8), nullable=False),
        sa.Column(
            "created_at",
            server.db.UtcDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"],
            ["kiosk_devices.id"],
            name=op.f("fk_petition_filing_keys_kiosk_id_kiosk_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_filing_keys_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kiosk_id", "key_hash", name=op.f("pk_petition_filing_keys")),
    )
    with op.batch_alter_table("petition_filing_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_petition_filing_keys_petition_id"), ["petition_id"], unique=False
        )
    with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", server.db.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meeting_attendance", schema=None) as batch_op:
        batch_op.drop_column("last_seen_at")
    with op.batch_alter_table("petition_filing_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petition_filing_keys_petition_id"))
    op.drop_table("petition_filing_keys")
