"""Fee currency on orders and fills: live venues charge fees in the asset received.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Binance (without BNB) takes a buy's fee in the base currency it delivers. NULL keeps the
meaning every existing row has: the fee is in the instrument's quote currency.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("fee_currency", sa.String(16), nullable=True))
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("fee_currency", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("fee_currency")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("fee_currency")
