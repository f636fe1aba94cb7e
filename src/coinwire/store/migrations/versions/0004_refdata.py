"""Reference data: fiat FX rates and top-coin market data (rank, USD price, market cap, all-time high).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Explicit operations, frozen in time (see 0001). One row per source, currency pair (coin) and
the source's own timestamp; a snapshot fetched twice is stored once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fx_rates",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("base", sa.String(16), nullable=False),
        sa.Column("quote", sa.String(16), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("rate", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "base", "quote", "ts", name="pk_fx_rates"),
    )
    op.create_table(
        "coin_stats",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("coin_id", sa.String(128), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("price", sa.Text(), nullable=False),
        sa.Column("market_cap", sa.Text(), nullable=True),
        sa.Column("ath", sa.Text(), nullable=True),
        sa.Column("ath_ts", sa.BigInteger(), nullable=True),
        sa.Column("fetched_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "coin_id", "ts", name="pk_coin_stats"),
    )
    op.create_index("ix_coin_stats_source_fetched_at", "coin_stats", ["source", "fetched_at"])


def downgrade() -> None:
    op.drop_index("ix_coin_stats_source_fetched_at", table_name="coin_stats")
    op.drop_table("coin_stats")
    op.drop_table("fx_rates")
