"""meeting decisions proposed to the department that handles a petition

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLE = "meeting_decision_proposals"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agenda_petition_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("proposed_by", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", server.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", server.db.UtcDateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('proposed', 'confirmed', 'dismissed')",
            name=op.f("ck_meeting_decision_proposals_status"),
        ),
        sa.ForeignKeyConstraint(
            ["agenda_petition_id"],
            ["meeting_agenda_petitions.id"],
            name=op.f("fk_meeting_decision_proposals_agenda_petition_id_meeting_agenda_petitions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_decision_proposals_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_meeting_decision_proposals_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"],
            ["auth_accounts.id"],
            name=op.f("fk_meeting_decision_proposals_proposed_by_auth_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["auth_accounts.id"],
            name=op.f("fk_meeting_decision_proposals_decided_by_auth_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_decision_proposals")),
        sa.UniqueConstraint(
            "agenda_petition_id", name=op.f("uq_meeting_decision_proposals_agenda_petition_id")
        ),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_decision_proposals_meeting_id"), ["meeting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_meeting_decision_proposals_petition_id"), ["petition_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_meeting_decision_proposals_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_decision_proposals_status"))
        batch_op.drop_index(batch_op.f("ix_meeting_decision_proposals_petition_id"))
        batch_op.drop_index(batch_op.f("ix_meeting_decision_proposals_meeting_id"))
    op.drop_table(TABLE)
