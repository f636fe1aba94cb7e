"""Funds on orders: the amount of the quote a market buy by amount was given to spend, fee included.

Revision ID: 0016_order_funds
Revises: 0015_notifications
Create Date: 2026-12-06

ATTO of the quote as decimal text, like the other amounts; "0" keeps the meaning every
existing row has: the order was sized by `size`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_order_funds"
down_revision = "0015_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("funds", sa.Text(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("funds")
