"""External accounts: the trades their signed webhooks delivered, one row per (account, sender's trade id).

Revision ID: 0022_external_accounts
Revises: 0019_portfolio_candles
Create Date: 2026-12-06

The primary key is the idempotency key: a trade id delivered twice is stored (and applied to
the account's wallets) once. Amounts are decimal text of ATTO like the ledger's; instants ns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_external_accounts"
down_revision = "0021_account_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "external_trades",
        sa.Column("account_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("trade_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("base", sa.String(16), nullable=False),
        sa.Column("quote", sa.String(16), nullable=False),
        sa.Column("size", sa.Text(), nullable=False),
        sa.Column("notional", sa.Text(), nullable=False),
        sa.Column("fee", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("shape", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "trade_id", name="pk_external_trades"),
    )


def downgrade() -> None:
    op.drop_table("external_trades")
