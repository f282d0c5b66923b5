"""duty calls

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 14:35:10.428094+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "duty_availability",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("updated_at", server.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["auth_accounts.id"],
            name=op.f("fk_duty_availability_account_id_auth_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_duty_availability")),
    )
    op.create_table(
        "duty_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kiosk_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("ring_until", server.db.UtcDateTime(), nullable=False),
        sa.Column("answered_by", sa.Integer(), nullable=True),
        sa.Column("answered_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("created_at", server.db.UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('ringing', 'answered', 'missed', 'cancelled')", name=op.f("ck_duty_calls_status")
        ),
        sa.ForeignKeyConstraint(
            ["answered_by"],
            ["auth_accounts.id"],
            name=op.f("fk_duty_calls_answered_by_auth_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"],
            ["kiosk_devices.id"],
            name=op.f("fk_duty_calls_kiosk_id_kiosk_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_duty_calls_room_id_rooms"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_calls")),
    )
    with op.batch_alter_table("duty_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duty_calls_kiosk_id"), ["kiosk_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("duty_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duty_calls_kiosk_id"))

    op.drop_table("duty_calls")
    op.drop_table("duty_availability")
