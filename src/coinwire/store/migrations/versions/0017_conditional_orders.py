"""Conditional orders: stops, take-profits and trailing stops, their OCO lists and brackets.

Revision ID: 0017_conditional_orders
Revises: 0016_order_funds
Create Date: 2026-12-06

Every column's default is what an existing row means: a plain order, no trigger, no list, no
parent. Prices are decimal text at the order's price decimals, like `limit_price`; instants
are integer nanoseconds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_conditional_orders"
down_revision = "0016_order_funds"
branch_labels = None
depends_on = None

def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("stop_price", sa.Text(), nullable=False, server_default="0"),
        sa.Column("trigger", sa.String(8), nullable=False, server_default="last"),
        sa.Column("trail_ppm", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("trail_delta", sa.Text(), nullable=False, server_default="0"),
        sa.Column("activation_price", sa.Text(), nullable=False, server_default="0"),
        sa.Column("trail_best", sa.Text(), nullable=False, server_default="0"),
        sa.Column("time_in_force", sa.String(4), nullable=False, server_default="GTC"),
        sa.Column("expire_at", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("triggered_at", sa.BigInteger(), nullable=True),
        sa.Column("list_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("parent_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("bracket", sa.Text(), nullable=True),
        sa.Column("emulated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("reduce_only", sa.Boolean(), nullable=False, server_default=sa.false()),
    ]


def upgrade() -> None:
    for column in _columns():  # ALTER TABLE ADD COLUMN on both databases (a batch would copy the table SQLite-style)
        op.add_column("orders", column)


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
