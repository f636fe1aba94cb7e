"""Notifications: each user's channels and subscriptions, and the outbox of deliveries.

Revision ID: 0015_notifications
Revises: 0012
Create Date: 2026-12-06

`notify_outbox.key` is UNIQUE: a notification derived twice (a bus replay, a restart's recovery
scan) never makes a second row, so never a second message. Secrets in `notify_channels` are
sealed with the vault's master keys. Explicit operations, frozen in time (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_notifications"
down_revision = "0013_schedules"  # chained after the schedules in this branch; the integrator re-chains
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_channels",
        sa.Column("user_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("nonce", sa.String(32), nullable=True),
        sa.Column("ciphertext", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "kind", name="pk_notify_channels"),
    )
    op.create_table(
        "notify_subscriptions",
        sa.Column("user_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "event", "channel", name="pk_notify_subscriptions"),
    )
    op.create_table(
        "notify_outbox",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notify_outbox"),
        sa.UniqueConstraint("key", name="uq_notify_outbox_key"),
    )
    op.create_index("ix_notify_outbox_state_next_at", "notify_outbox", ["state", "next_at"])
    op.create_index("ix_notify_outbox_user_id_state", "notify_outbox", ["user_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_notify_outbox_user_id_state", table_name="notify_outbox")
    op.drop_index("ix_notify_outbox_state_next_at", table_name="notify_outbox")
    op.drop_table("notify_outbox")
    op.drop_table("notify_subscriptions")
    op.drop_table("notify_channels")
