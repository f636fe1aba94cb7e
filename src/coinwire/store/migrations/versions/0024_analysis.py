"""Analyser outputs and strategies' signals: one row per value of an analysis key, one per changed signal.

Revision ID: 0024_analysis
Revises: 0023_rule_sets
Create Date: 2026-12-07

`analysis_values` is keyed by (key, time_ns): a value recomputed for the same instant (a restart
replaying its warm-up) overwrites nothing. `owner_id` is the user whose series it is (NULL: a
market's, public to readers). `signals` keeps a strategy's named signal only when it changed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_analysis"
down_revision = "0023_rule_sets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_values",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("time_ns", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("series", sa.String(160), nullable=False),
        sa.Column("indicator", sa.String(32), nullable=False),
        sa.Column("params", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", "time_ns", name="pk_analysis_values"),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("time_ns", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signals"),
    )
    op.create_index("ix_signals_run_id_name_time_ns", "signals", ["run_id", "name", "time_ns"])


def downgrade() -> None:
    op.drop_index("ix_signals_run_id_name_time_ns", table_name="signals")
    op.drop_table("signals")
    op.drop_table("analysis_values")
