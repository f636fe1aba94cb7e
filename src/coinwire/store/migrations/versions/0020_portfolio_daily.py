"""Daily stats: one row per portfolio and local day of its owner.

Revision ID: 0020_portfolio_daily
Revises: 0019_portfolio_candles
Create Date: 2026-12-06

The table starts empty: days are recorded by the daily stats pass from the portfolio candles
and the ledger, which it reads back, so past days are recorded on the first pass after this.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_portfolio_daily"
down_revision = "0019_portfolio_candles"
branch_labels = None
depends_on = None

_FIGURES = ("closing", "opening", "pnl", "realised", "unrealised", "fees", "funding", "deposits", "withdrawals",
            "win_rate", "exposure", "peak", "drawdown")


def upgrade() -> None:
    op.create_table(
        "portfolio_daily",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=True) for name in _FIGURES),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("closing_trades", sa.Integer(), nullable=False),
        sa.Column("winning_trades", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "scope_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("portfolio_daily")
