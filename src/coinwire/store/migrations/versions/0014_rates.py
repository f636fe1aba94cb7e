"""Rates: one price per market per minute, written once (a repeat of the same minute writes nothing).

Revision ID: 0014_rates
Revises: 0013_schedules
Create Date: 2026-12-06

The primary key (exchange, symbol, minute_ms) is what makes the rate retriever idempotent:
its INSERT .. ON CONFLICT DO NOTHING keeps the first rate of a minute. It also serves the
range reads (`GET /api/v1/rates/{exchange}/{symbol}`), so no other index is needed.
Explicit operations, frozen in time (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_rates"
down_revision = "0013_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rates",
        sa.Column("exchange", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("minute_ms", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("price", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", "minute_ms", name="pk_rates"),
    )


def downgrade() -> None:
    op.drop_table("rates")
