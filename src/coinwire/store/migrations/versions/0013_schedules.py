"""Schedules: a user's scheduled jobs, and the ticks claimed (one row per tick: each runs at most once).

Revision ID: 0013_schedules
Revises: 0012
Create Date: 2026-12-06

`schedules` holds each job's timing (cron or interval, time zone), kind, parameters (JSON),
misfire policy and `next_at`; `schedule_ticks` one row per tick a scheduler claimed, its
primary key (schedule_id, tick_at) the claim (coinwire.services.scheduler). Explicit
operations, frozen in time (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_schedules"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, autoincrement=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("every", sa.String(16), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("job_kind", sa.String(32), nullable=False),
        sa.Column("job_params", sa.Text(), nullable=False),
        sa.Column("misfire_policy", sa.String(16), nullable=False),
        sa.Column("misfire_limit", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("next_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint("owner_id", "name", name="uq_schedules_owner_id_name"),
    )
    op.create_index("ix_schedules_next_at", "schedules", ["next_at"])
    op.create_table(
        "schedule_ticks",
        sa.Column("schedule_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("tick_at", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["schedule_id"], ["schedules.id"], name="fk_schedule_ticks_schedule_id_schedules",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("schedule_id", "tick_at", name="pk_schedule_ticks"),
    )
    op.create_index("ix_schedule_ticks_tick_at", "schedule_ticks", ["tick_at"])


def downgrade() -> None:
    op.drop_index("ix_schedule_ticks_tick_at", table_name="schedule_ticks")
    op.drop_table("schedule_ticks")
    op.drop_index("ix_schedules_next_at", table_name="schedules")
    op.drop_table("schedules")
