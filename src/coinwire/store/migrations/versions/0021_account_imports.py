"""Account imports: a live account's history fetched once, with progress and a cursor per step; its trades and transfers.

Revision ID: 0021_account_imports
Revises: 0019_portfolio_candles
Create Date: 2026-12-06

`account_trades` and `account_transfers` are keyed by the venue's own ids (per account, per
market for trades; per kind for transfers): storing them is INSERT .. ON CONFLICT DO NOTHING,
so a resumed or repeated import adds nothing twice. `account_imports.cursor` holds where each
step stopped. Explicit operations, frozen in time (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_account_imports"
down_revision = "0020_portfolio_daily"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "account_imports",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_account_imports"),
    )
    op.create_index("ix_account_imports_account_id", "account_imports", ["account_id"])
    op.create_table(
        "account_trades",
        sa.Column("account_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("trade_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("price", sa.Text(), nullable=False),
        sa.Column("amount", sa.Text(), nullable=False),
        sa.Column("cost", sa.Text(), nullable=False),
        sa.Column("fee", sa.Text(), nullable=False),
        sa.Column("fee_currency", sa.String(32), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "symbol", "trade_id", name="pk_account_trades"),
    )
    op.create_table(
        "account_transfers",
        sa.Column("account_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("transfer_id", sa.String(128), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("amount", sa.Text(), nullable=False),
        sa.Column("fee", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "kind", "transfer_id", name="pk_account_transfers"),
    )


def downgrade() -> None:
    op.drop_table("account_transfers")
    op.drop_table("account_trades")
    op.drop_index("ix_account_imports_account_id", table_name="account_imports")
    op.drop_table("account_imports")
