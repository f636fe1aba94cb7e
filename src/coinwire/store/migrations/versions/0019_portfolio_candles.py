"""Portfolio candles: 15-minute candles of the value of every account, wallet set, run and user total.

Revision ID: 0019_portfolio_candles
Revises: 0018_perpetuals
Create Date: 2026-12-06

The table starts empty: nothing was tracked before. Values are integers at 8 decimals of the
owner's display currency (core.portfolio.VALUE_DECIMALS); the key starts with the scope so one
portfolio's range read is one index range.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_portfolio_candles"
down_revision = "0018_perpetuals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portfolio_candles",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("open_time", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("close_time", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("close", sa.BigInteger(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "scope_id", "currency", "open_time", name="pk_portfolio_candles"),
    )


def downgrade() -> None:
    op.drop_table("portfolio_candles")
