"""Each user's display preferences live on the server: time zone, display currency, decimals, masking.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

One row per user, written whole in one transaction (coinwire.auth.preferences); a user with no
row has the defaults. Explicit operations, frozen in time (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preferences",
        sa.Column("user_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("crypto_decimals", sa.Integer(), nullable=False),
        sa.Column("stable_decimals", sa.Integer(), nullable=False),
        sa.Column("mask", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_preferences"),
    )


def downgrade() -> None:
    op.drop_table("preferences")
