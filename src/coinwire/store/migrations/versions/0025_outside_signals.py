"""Outside signals the server received (POST /api/v1/signals/{provider}), kept so a backtest can replay them.

Revision ID: 0025_outside_signals
Revises: 0024_analysis
Create Date: 2026-12-07

One row per accepted signal, in the normalised form (core.outside_signals): whose (`user_id`),
which provider, method, its time `ts` (unix ns) and `params` (JSON text), and when it was
received. Read back by (user, provider, ts): GET /api/v1/signals/{provider}/received.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025_outside_signals"
down_revision = "0024_analysis"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outside_signals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("received_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outside_signals"),
    )
    op.create_index("ix_outside_signals_user_id_provider_ts", "outside_signals", ["user_id", "provider", "ts"])


def downgrade() -> None:
    op.drop_index("ix_outside_signals_user_id_provider_ts", table_name="outside_signals")
    op.drop_table("outside_signals")
