"""Initial schema: orders, fills, wallet sets, wallets, wallet lines and meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Explicit operations, frozen in time: later changes to coinwire.store.tables need a new
revision, never an edit here. Money columns are decimal TEXT, timestamps BigInteger ns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, nullable=False, autoincrement=False)


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _ns(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "wallet_sets",
        _id(),
        _str("run_id", 64, nullable=True),
        _text("description"),
        _ns("created_at"),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ns("deactivated_at", nullable=True),
        _str("type", 32),
        sa.PrimaryKeyConstraint("id", name="pk_wallet_sets"),
    )
    op.create_index("ix_wallet_sets_run_id", "wallet_sets", ["run_id"])

    op.create_table(
        "wallets",
        _id(),
        _str("exchange", 64),
        _str("currency", 32),
        _ns("wallet_set_id", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_wallets"),
        sa.ForeignKeyConstraint(["wallet_set_id"], ["wallet_sets.id"], name="fk_wallets_wallet_set_id_wallet_sets"),
    )
    op.create_index("ix_wallets_wallet_set_id", "wallets", ["wallet_set_id"])
    op.create_index("ix_wallets_exchange_currency", "wallets", ["exchange", "currency"])

    op.create_table(
        "orders",
        _id(),
        _str("client_oid", 64),
        _str("exchange", 64),
        _str("symbol", 64),
        _str("side", 8),
        _str("type", 32),
        sa.Column("price_decimals", sa.Integer(), nullable=False),
        sa.Column("size_decimals", sa.Integer(), nullable=False),
        _text("size"),
        _text("limit_price"),
        _ns("cancel_after"),
        _ns("wallet_set_id", nullable=True),
        _str("run_id", 64, nullable=True),
        _str("status", 16),
        _str("done_reason", 16, nullable=True),
        _ns("created_at"),
        _ns("exchange_at", nullable=True),
        _ns("done_at", nullable=True),
        _ns("last_updated_at"),
        _text("filled_size"),
        _text("filled_notional"),
        _text("fee"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("client_oid", name="uq_orders_client_oid"),
        sa.ForeignKeyConstraint(["wallet_set_id"], ["wallet_sets.id"], name="fk_orders_wallet_set_id_wallet_sets"),
    )
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_wallet_set_id", "orders", ["wallet_set_id"])
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_index("ix_orders_exchange_symbol", "orders", ["exchange", "symbol"])

    op.create_table(
        "fills",
        _id(),
        _ns("order_id"),
        _str("client_oid", 64),
        _str("exchange", 64),
        _str("symbol", 64),
        _str("side", 8),
        _str("order_type", 32),
        sa.Column("price_decimals", sa.Integer(), nullable=False),
        sa.Column("size_decimals", sa.Integer(), nullable=False),
        _text("price"),
        _text("size"),
        _text("notional"),
        _text("fee"),
        sa.Column("maker", sa.Boolean(), nullable=False),
        _ns("ts"),
        _str("run_id", 64, nullable=True),
        _ns("wallet_set_id", nullable=True),
        _str("ext_id", 128, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_fills_order_id_orders"),
    )
    op.create_index("ix_fills_order_id", "fills", ["order_id"])
    op.create_index("ix_fills_ts", "fills", ["ts"])

    op.create_table(
        "wallet_lines",
        _id(),
        _ns("wallet_id"),
        _ns("ts"),
        _str("kind", 16),
        _text("movement"),
        _text("hold"),
        _ns("order_id", nullable=True),
        _ns("fill_id", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_wallet_lines"),
        sa.ForeignKeyConstraint(["wallet_id"], ["wallets.id"], name="fk_wallet_lines_wallet_id_wallets"),
    )
    op.create_index("ix_wallet_lines_wallet_id_ts", "wallet_lines", ["wallet_id", "ts"])

    meta = op.create_table(
        "meta",
        _str("key", 64),
        _text("value"),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.bulk_insert(
        meta,
        [
            {"key": "schema", "value": "coinwire"},
            {"key": "money", "value": "exact decimal text; orders and fills carry price_decimals and size_decimals"},
            {"key": "ledger_decimals", "value": "18"},
            {"key": "timestamps", "value": "integer nanoseconds since the Unix epoch"},
        ],
    )


def downgrade() -> None:
    for table in ("meta", "wallet_lines", "fills", "orders", "wallets", "wallet_sets"):
        op.drop_table(table)
