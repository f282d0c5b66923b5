"""notices

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 14:26:00.542616+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("starts_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("ends_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("all_villages", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("media_kind", sa.String(length=8), nullable=True),
        sa.Column("media_type", sa.String(length=40), nullable=True),
        sa.Column("media_storage_name", sa.String(length=200), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("withdrawn_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("created_at", server.db.UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "media_kind IN ('image', 'video') OR media_kind IS NULL",
            name=op.f("ck_notice_notices_media_kind"),
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_notice_notices_window")),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["auth_accounts.id"],
            name=op.f("fk_notice_notices_author_id_auth_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_notices")),
    )
    with op.batch_alter_table("notice_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_notices_author_id"), ["author_id"], unique=False)

    op.create_table(
        "notice_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("kiosk_id", sa.Integer(), nullable=False),
        sa.Column("first_shown_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("last_shown_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("times_shown", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["kiosk_id"],
            ["kiosk_devices.id"],
            name=op.f("fk_notice_deliveries_kiosk_id_kiosk_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notice_notices.id"],
            name=op.f("fk_notice_deliveries_notice_id_notice_notices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_deliveries")),
        sa.UniqueConstraint("notice_id", "kiosk_id", name=op.f("uq_notice_deliveries_notice_id")),
    )
    with op.batch_alter_table("notice_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_deliveries_kiosk_id"), ["kiosk_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_deliveries_notice_id"), ["notice_id"], unique=False)

    op.create_table(
        "notice_targets",
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notice_notices.id"],
            name=op.f("fk_notice_targets_notice_id_notice_notices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["village_id"],
            ["geo_villages.id"],
            name=op.f("fk_notice_targets_village_id_geo_villages"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("notice_id", "village_id", name=op.f("pk_notice_targets")),
    )


def downgrade() -> None:
    op.drop_table("notice_targets")
    with op.batch_alter_table("notice_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_deliveries_notice_id"))
        batch_op.drop_index(batch_op.f("ix_notice_deliveries_kiosk_id"))

    op.drop_table("notice_deliveries")
    with op.batch_alter_table("notice_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_notices_author_id"))

    op.drop_table("notice_notices")
