"""foundation: geo, org, accounts, sessions, kiosks

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:50:02.498944+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_login_throttle",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("locked_until", server.db.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_login_throttle")),
    )
    op.create_table(
        "geo_divisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name_ko", sa.String(length=40), nullable=False),
        sa.Column("name_en", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_geo_divisions")),
        sa.UniqueConstraint("name_ko", name=op.f("uq_geo_divisions_name_ko")),
    )
    op.create_table(
        "org_departments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name_ko", sa.String(length=60), nullable=False),
        sa.Column("name_en", sa.String(length=120), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_departments")),
        sa.UniqueConstraint("name_ko", name=op.f("uq_org_departments_name_ko")),
    )
    op.create_table(
        "auth_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("last_login_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("created_at", server.db.UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("role IN ('official', 'admin')", name=op.f("ck_auth_accounts_role")),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["org_departments.id"],
            name=op.f("fk_auth_accounts_department_id_org_departments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_auth_accounts_username")),
    )
    with op.batch_alter_table("auth_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_accounts_department_id"), ["department_id"], unique=False)

    op.create_table(
        "geo_villages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("division_id", sa.Integer(), nullable=False),
        sa.Column("name_ko", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["division_id"],
            ["geo_divisions.id"],
            name=op.f("fk_geo_villages_division_id_geo_divisions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_geo_villages")),
        sa.UniqueConstraint("division_id", "name_ko", name=op.f("uq_geo_villages_division_id")),
    )
    with op.batch_alter_table("geo_villages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_geo_villages_division_id"), ["division_id"], unique=False)

    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("created_at", server.db.UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["auth_accounts.id"],
            name=op.f("fk_auth_sessions_account_id_auth_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_sessions_account_id"), ["account_id"], unique=False)

    op.create_table(
        "kiosk_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("enrollment_code_hash", sa.String(length=64), nullable=True),
        sa.Column("enrollment_expires_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("enrolled_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("revoked_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("last_seen_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("created_at", server.db.UtcDateTime(), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_id"],
            ["geo_villages.id"],
            name=op.f("fk_kiosk_devices_village_id_geo_villages"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosk_devices")),
        sa.UniqueConstraint("enrollment_code_hash", name=op.f("uq_kiosk_devices_enrollment_code_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_kiosk_devices_token_hash")),
    )
    with op.batch_alter_table("kiosk_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kiosk_devices_village_id"), ["village_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kiosk_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kiosk_devices_village_id"))

    op.drop_table("kiosk_devices")
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_sessions_account_id"))

    op.drop_table("auth_sessions")
    with op.batch_alter_table("geo_villages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_geo_villages_division_id"))

    op.drop_table("geo_villages")
    with op.batch_alter_table("auth_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_accounts_department_id"))

    op.drop_table("auth_accounts")
    op.drop_table("org_departments")
    op.drop_table("geo_divisions")
    op.drop_table("auth_login_throttle")
