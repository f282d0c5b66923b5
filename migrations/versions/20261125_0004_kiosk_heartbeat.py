"""kiosk heartbeat: last heartbeat time, reported health, agent version

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 14:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kiosk_devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_heartbeat_at", server.db.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("health", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("agent_version", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kiosk_devices", schema=None) as batch_op:
        batch_op.drop_column("agent_version")
        batch_op.drop_column("health")
        batch_op.drop_column("last_heartbeat_at")
