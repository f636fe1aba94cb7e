"""Settings an admin changes at runtime (self-registration and its role), kept in the store.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

One row per setting an admin has set, its value as JSON text (coinwire.auth.site_settings); a
setting without a row has the configuration's default. Explicit operations, frozen in time (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_site_settings"),
    )


def downgrade() -> None:
    op.drop_table("site_settings")
