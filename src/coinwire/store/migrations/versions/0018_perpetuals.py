"""Perpetual futures: an order's and a fill's position side, positions, their settings, hedge mode and funding payments.

Revision ID: 0018_perpetuals
Revises: 0017_conditional_orders
Create Date: 2026-12-06

`orders.position_side` and `fills.position_side` default to "both", what every existing (spot) order means. The new
tables start empty: no account had a position before. Wallet lines of the new kinds (pnl,
funding, liquidation, margin) need no change: `kind` is free text the ledger checks.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_perpetuals"
down_revision = "0017_conditional_orders"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # 64-bit ids; SQLite's rowid


def upgrade() -> None:
    for table in ("orders", "fills"):
        op.add_column(table, sa.Column("position_side", sa.String(8), nullable=False, server_default="both"))
    op.create_table(
        "positions",
        sa.Column("id", ID, autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("exchange", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("wallet_set_id", sa.BigInteger(), nullable=True),
        sa.Column("price_decimals", sa.Integer(), nullable=False),
        sa.Column("size_decimals", sa.Integer(), nullable=False),
        sa.Column("size", sa.Text(), nullable=False),
        sa.Column("entry_cost", sa.Text(), nullable=False),
        sa.Column("leverage", sa.Integer(), nullable=False),
        sa.Column("margin_mode", sa.String(16), nullable=False),
        sa.Column("isolated_margin", sa.Text(), nullable=False),
        sa.Column("realised_pnl", sa.Text(), nullable=False),
        sa.Column("funding", sa.Text(), nullable=False),
        sa.Column("fees", sa.Text(), nullable=False),
        sa.Column("mark", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_positions"),
    )
    op.create_index("ix_positions_account_id_exchange", "positions", ["account_id", "exchange"])
    op.create_table(
        "position_settings",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("exchange", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("leverage", sa.Integer(), nullable=False),
        sa.Column("margin_mode", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_position_settings"),
    )
    op.create_table(
        "position_modes",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("exchange", sa.String(64), nullable=False),
        sa.Column("hedge_mode", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_position_modes"),
    )
    op.create_table(
        "funding_payments",
        sa.Column("id", ID, autoincrement=False, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("exchange", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("wallet_set_id", sa.BigInteger(), nullable=True),
        sa.Column("price_decimals", sa.Integer(), nullable=False),
        sa.Column("size_decimals", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.Text(), nullable=False),
        sa.Column("rate", sa.BigInteger(), nullable=False),
        sa.Column("mark", sa.Text(), nullable=False),
        sa.Column("amount", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_funding_payments"),
    )
    op.create_index("ix_funding_payments_account_id_ts", "funding_payments", ["account_id", "ts"])


def downgrade() -> None:
    op.drop_index("ix_funding_payments_account_id_ts", table_name="funding_payments")
    op.drop_table("funding_payments")
    op.drop_table("position_modes")
    op.drop_table("position_settings")
    op.drop_index("ix_positions_account_id_exchange", table_name="positions")
    op.drop_table("positions")
    for table in ("fills", "orders"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("position_side")
