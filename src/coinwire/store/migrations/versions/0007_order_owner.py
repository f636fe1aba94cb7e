"""Orders carry their owner; indexes no query uses are dropped from the order path's tables.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22

The owner of an order was an `owners` row written in batches after the order committed, so a
crash in between left the order to admins only. It is now a column written in the order's own
transaction; existing owner rows of orders move into it. Every index on `orders`, `fills` and
`audit` is written by every order placed, so the ones no query reads go: `orders.created_at`,
`fills.ts`, both on `audit` (its queries page by id); `orders.status` becomes a partial index
of the open orders, the only ones the start-up read asks for.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OPEN = sa.text("status != 'done'")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("owner_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE orders SET owner_id = (SELECT o.user_id FROM owners o"
        " WHERE o.kind = 'order' AND o.resource_id = CAST(orders.id AS VARCHAR(64)))"
    )
    op.execute("DELETE FROM owners WHERE kind IN ('order', 'order_oid')")
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_index("ix_orders_created_at", table_name="orders")
    op.create_index("ix_orders_open", "orders", ["status"], sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.drop_index("ix_fills_ts", table_name="fills")
    op.drop_index("ix_audit_ts", table_name="audit")
    op.drop_index("ix_audit_user_id_ts", table_name="audit")


def downgrade() -> None:
    op.create_index("ix_audit_user_id_ts", "audit", ["user_id", "ts"])
    op.create_index("ix_audit_ts", "audit", ["ts"])
    op.create_index("ix_fills_ts", "fills", ["ts"])
    op.drop_index("ix_orders_open", table_name="orders")
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.execute(
        "INSERT INTO owners (kind, resource_id, user_id) SELECT 'order', CAST(id AS VARCHAR(64)), owner_id"
        " FROM orders WHERE owner_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO owners (kind, resource_id, user_id) SELECT 'order_oid', client_oid, owner_id"
        " FROM orders WHERE owner_id IS NOT NULL"
    )
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("owner_id")
