"""accounts may be granted triage (routing requests no department has yet)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:25:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_accounts") as batch:
        batch.add_column(sa.Column("can_triage", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("auth_accounts") as batch:
        batch.drop_column("can_triage")
