"""rooms: ad-hoc video-meeting rooms and their invitations (officials and kiosks)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:20:00.405519+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("created_at", server.db.UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["auth_accounts.id"],
            name=op.f("fk_rooms_created_by_auth_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rooms")),
    )
    op.create_table(
        "room_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("kiosk_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(account_id IS NULL) <> (kiosk_id IS NULL)", name=op.f("ck_room_invitations_one_invitee")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["auth_accounts.id"],
            name=op.f("fk_room_invitations_account_id_auth_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"],
            ["kiosk_devices.id"],
            name=op.f("fk_room_invitations_kiosk_id_kiosk_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_room_invitations_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_room_invitations")),
        sa.UniqueConstraint("room_id", "account_id", name="uq_room_invitations_room_account"),
        sa.UniqueConstraint("room_id", "kiosk_id", name="uq_room_invitations_room_kiosk"),
    )
    with op.batch_alter_table("room_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_room_invitations_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_room_invitations_kiosk_id"), ["kiosk_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_room_invitations_room_id"), ["room_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("room_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_room_invitations_room_id"))
        batch_op.drop_index(batch_op.f("ix_room_invitations_kiosk_id"))
        batch_op.drop_index(batch_op.f("ix_room_invitations_account_id"))

    op.drop_table("room_invitations")
    op.drop_table("rooms")
