"""Checkpoints: the sums of wallet lines and the client_oid filter a start reads instead of all history.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

`wallet_totals` and `hold_totals` hold the sums of the wallet lines up to the `ledger` row of
`checkpoints` (coinwire.store.Store.checkpoint_ledger); `checkpoints.client_oids` the gateway's
client_oid filter. An upgraded store has no checkpoint: its first start reads every line once,
as before, and writes one. `ix_orders_account_id_seq` finds each account's latest sequence
without reading every order. Explicit operations, frozen in time (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wallet_totals",
        sa.Column("wallet_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("balance", sa.Text(), nullable=False),
        sa.Column("hold", sa.Text(), nullable=False),
        sa.Column("allocated", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["wallet_id"], ["wallets.id"], name="fk_wallet_totals_wallet_id_wallets"),
        sa.PrimaryKeyConstraint("wallet_id", name="pk_wallet_totals"),
    )
    op.create_table(
        "hold_totals",
        sa.Column("order_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("wallet_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_hold_totals"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_checkpoints"),
    )
    op.create_index("ix_orders_account_id_seq", "orders", ["account_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_orders_account_id_seq", table_name="orders")
    op.drop_table("checkpoints")
    op.drop_table("hold_totals")
    op.drop_table("wallet_totals")
