"""Candles: 1-minute (and coarser) OHLCV of market data, integers at the instrument's precision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Explicit operations, frozen in time (see 0001). One row per exchange, symbol, interval and
bucket start; the primary key is the index every chart query ranges over.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candles",
        sa.Column("exchange", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("open_time", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("close_time", sa.BigInteger(), nullable=False),
        sa.Column("price_decimals", sa.Integer(), nullable=False),
        sa.Column("size_decimals", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in ("open", "high", "low", "close", "volume")),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", "interval_s", "open_time", name="pk_candles"),
    )


def downgrade() -> None:
    op.drop_table("candles")
