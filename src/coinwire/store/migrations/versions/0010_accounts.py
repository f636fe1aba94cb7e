"""Accounts: every wallet, order and fill belongs to one user's account on one exchange.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Funds stop being one pool per exchange shared by every user. Existing wallets, orders and
fills become the admins' accounts: one account per exchange they name, owned by the first
admin (the lowest user id with the admin role), or by nobody when no user exists yet (then
admins read it, as everything made before users existed). `orders.seq` is the account's
stream sequence of the order's latest notification (0 for the orders before it). Explicit
operations, frozen in time (see 0001).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, autoincrement=False),
        sa.Column("exchange", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
    )
    op.create_index("ix_accounts_owner_id", "accounts", ["owner_id"])
    op.create_table(
        "account_members",
        sa.Column("account_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.BigInteger(), nullable=True),
        sa.Column("granted_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "user_id", name="pk_account_members"),
    )
    for table in ("wallets", "orders", "fills"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("account_id", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))

    conn = op.get_bind()
    exchanges = sorted(
        {row[0] for row in conn.execute(sa.text("SELECT DISTINCT exchange FROM wallets"))}
        | {row[0] for row in conn.execute(sa.text("SELECT DISTINCT exchange FROM orders"))}
    )
    if not exchanges:
        return
    admin = conn.execute(sa.text("SELECT min(id) FROM users WHERE role = 'admin'")).scalar()
    now = time.time_ns()
    for account_id, exchange in enumerate(exchanges, start=1):
        conn.execute(
            sa.text("INSERT INTO accounts (id, exchange, kind, name, owner_id, created_at, active) "
                    "VALUES (:id, :exchange, 'paper', :name, :owner, :now, :active)"),
            {"id": account_id, "exchange": exchange, "name": exchange, "owner": admin, "now": now, "active": True},
        )
        for table in ("wallets", "orders", "fills"):
            conn.execute(sa.text(f"UPDATE {table} SET account_id = :id WHERE exchange = :exchange"),  # noqa: S608 - our table names
                         {"id": account_id, "exchange": exchange})


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("seq")
    for table in ("fills", "orders", "wallets"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("account_id")
    op.drop_table("account_members")
    op.drop_index("ix_accounts_owner_id", table_name="accounts")
    op.drop_table("accounts")
