"""Gateway leases (one writer per shard, fencing tokens) and the cluster's members (a heartbeat per process).

Revision ID: 0026_gateway_leases
Revises: 0025_outside_signals
Create Date: 2026-12-07

`leases`: one row per lease name (`gateway:<exchange>`): its holder, the fencing token (grows with
each new grant) and `expires_at` (unix ms, the database's clock). `cluster_members`: one row per
running process (holder id host:pid:roles) and when it was last seen (unix ms, the database's clock),
for `coinwire cluster status`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026_gateway_leases"
down_revision = "0025_outside_signals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "cluster_members",
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("holder", name="pk_cluster_members"),
    )


def downgrade() -> None:
    op.drop_table("cluster_members")
    op.drop_table("leases")
