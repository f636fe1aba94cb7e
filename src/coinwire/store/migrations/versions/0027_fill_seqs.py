"""Each fill keeps the seq of its notification, as orders and positions do.

Revision ID: 0027_fill_seqs
Revises: 0026_gateway_leases
Create Date: 2026-12-07

Why: a gateway killed between a commit and its publish leaves those notifications off the bus; the
next holder publishes them again from the stored rows (services/lost_notifications.py), and a fill's
notification needs its own seq for that. Rows from before are 0 (never published again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_fill_seqs"
down_revision = "0026_gateway_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("seq")
