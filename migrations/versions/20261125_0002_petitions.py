"""petitions: requests, media, support, notes, audit trail, answer templates, PIN throttle

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:00:49.729889+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "petition_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_petition_counters")),
    )
    op.create_table(
        "petition_pin_throttle",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("locked_until", server.db.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_petition_pin_throttle")),
    )
    op.create_table(
        "petition_answer_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at",
            server.db.UtcDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["org_departments.id"],
            name=op.f("fk_petition_answer_templates_department_id_org_departments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petition_answer_templates")),
    )
    with op.batch_alter_table("petition_answer_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_petition_answer_templates_department_id"), ["department_id"], unique=False
        )

    op.create_table(
        "petitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("receipt_no", sa.String(length=20), nullable=False),
        sa.Column("receipt_year", sa.Integer(), nullable=False),
        sa.Column("receipt_seq", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("kiosk_id", sa.Integer(), nullable=True),
        sa.Column("petition_type", sa.String(length=32), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("info_requests_count", sa.Integer(), nullable=False),
        sa.Column("info_request_text", sa.Text(), nullable=True),
        sa.Column("paused_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("extended", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("resident_name", sa.String(length=60), nullable=True),
        sa.Column("resident_phone", sa.String(length=20), nullable=False),
        sa.Column("pin_hash", sa.String(length=255), nullable=False),
        sa.Column("is_public", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("received_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("due_at", server.db.UtcDateTime(), nullable=False),
        sa.Column("answer_text", sa.Text(), nullable=True),
        sa.Column("answered_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("answered_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", server.db.UtcDateTime(), nullable=True),
        sa.Column("support_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            server.db.UtcDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["answered_by"],
            ["auth_accounts.id"],
            name=op.f("fk_petitions_answered_by_auth_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["auth_accounts.id"],
            name=op.f("fk_petitions_assignee_id_auth_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["org_departments.id"],
            name=op.f("fk_petitions_department_id_org_departments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"],
            ["kiosk_devices.id"],
            name=op.f("fk_petitions_kiosk_id_kiosk_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["village_id"],
            ["geo_villages.id"],
            name=op.f("fk_petitions_village_id_geo_villages"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petitions")),
        sa.UniqueConstraint("receipt_no", name=op.f("uq_petitions_receipt_no")),
        sa.UniqueConstraint("receipt_year", "receipt_seq", name="uq_petitions_receipt_year_seq"),
    )
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_petitions_department_id"), ["department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_petitions_kiosk_id"), ["kiosk_id"], unique=False)
        batch_op.create_index("ix_petitions_status_due_at", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_petitions_village_id"), ["village_id"], unique=False)

    op.create_table(
        "petition_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("at", server.db.UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_events_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petition_events")),
    )
    with op.batch_alter_table("petition_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_petition_events_petition_id"), ["petition_id"], unique=False)

    op.create_table(
        "petition_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("storage_name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=60), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("has_video", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "created_at",
            server.db.UtcDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_media_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petition_media")),
        sa.UniqueConstraint("storage_name", name=op.f("uq_petition_media_storage_name")),
    )
    with op.batch_alter_table("petition_media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_petition_media_petition_id"), ["petition_id"], unique=False)

    op.create_table(
        "petition_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=80), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            server.db.UtcDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["auth_accounts.id"],
            name=op.f("fk_petition_notes_author_id_auth_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_notes_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petition_notes")),
    )
    with op.batch_alter_table("petition_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_petition_notes_petition_id"), ["petition_id"], unique=False)

    op.create_table(
        "petition_supports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("kiosk_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            server.db.UtcDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"],
            ["kiosk_devices.id"],
            name=op.f("fk_petition_supports_kiosk_id_kiosk_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_supports_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petition_supports")),
        sa.UniqueConstraint("petition_id", "session_id", name="uq_petition_supports_session"),
    )
    with op.batch_alter_table("petition_supports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_petition_supports_petition_id"), ["petition_id"], unique=False)




def downgrade() -> None:

    with op.batch_alter_table("petition_supports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petition_supports_petition_id"))

    op.drop_table("petition_supports")
    with op.batch_alter_table("petition_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petition_notes_petition_id"))

    op.drop_table("petition_notes")
    with op.batch_alter_table("petition_media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petition_media_petition_id"))

    op.drop_table("petition_media")
    with op.batch_alter_table("petition_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petition_events_petition_id"))

    op.drop_table("petition_events")
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petitions_village_id"))
        batch_op.drop_index("ix_petitions_status_due_at")
        batch_op.drop_index(batch_op.f("ix_petitions_kiosk_id"))
        batch_op.drop_index(batch_op.f("ix_petitions_department_id"))

    op.drop_table("petitions")
    with op.batch_alter_table("petition_answer_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petition_answer_templates_department_id"))

    op.drop_table("petition_answer_templates")
    op.drop_table("petition_pin_throttle")
    op.drop_table("petition_counters")

