"""A client_oid is unique per owner, not across users: one user's key never names another's order.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

`orders.client_oid` was unique across the whole table, so the idempotency key of one user
could find (and a repeat could take over) another user's order. It becomes unique per
`(owner_id, client_oid)`. That index alone would not do: SQL treats NULLs as distinct, and
orders placed before users existed (or by the platform's own paper runs) have no owner, so a
partial unique index keeps those orders' keys unique among themselves, one key space as
before. (Not one index on `coalesce(owner_id, 0)`: expression indexes cannot be reflected,
so the schema could not be compared with the tables' declaration.) SQLite cannot drop a table's UNIQUE constraint in
place: the table is rebuilt (batch mode), its partial index of open orders recreated after.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OPEN = sa.text("status != 'done'")
_UNOWNED = sa.text("owner_id IS NULL")


def _drop_unique(name: str, columns: list[str] | None) -> None:
    """Drop (columns None) or create a UNIQUE constraint on orders; SQLite rebuilds the table for it."""
    if op.get_context().dialect.name == "sqlite":
        op.drop_index("ix_orders_open", table_name="orders")  # a partial index: recreated explicitly below
        with op.batch_alter_table("orders", recreate="always") as batch:
            if columns is None:
                batch.drop_constraint(name, type_="unique")
            else:
                batch.create_unique_constraint(name, columns)
        op.create_index("ix_orders_open", "orders", ["status"], sqlite_where=_OPEN)
    elif columns is None:
        op.drop_constraint(name, "orders", type_="unique")
    else:
        op.create_unique_constraint(name, "orders", columns)


def upgrade() -> None:
    _drop_unique("uq_orders_client_oid", None)
    op.create_index("uq_orders_owner_client_oid", "orders", ["owner_id", "client_oid"], unique=True)
    op.create_index("uq_orders_unowned_client_oid", "orders", ["client_oid"], unique=True,
                    sqlite_where=_UNOWNED, postgresql_where=_UNOWNED)


def downgrade() -> None:
    op.drop_index("uq_orders_unowned_client_oid", table_name="orders")
    op.drop_index("uq_orders_owner_client_oid", table_name="orders")
    _drop_unique("uq_orders_client_oid", ["client_oid"])  # fails if two users share a client_oid: theirs to resolve
