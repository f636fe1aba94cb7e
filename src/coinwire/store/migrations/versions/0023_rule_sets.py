"""Rule sets: users' rule sets on a scope, their firings, and the journal of each firing's commands.

Revision ID: 0023_rule_sets
Revises: 0022_external_accounts
Create Date: 2026-12-07

`rule_sets` holds each set's JSON form (core.rules.rule_set_dict) and its evaluation state;
`rule_firings` one row per firing with the rule values that made it fire; `rule_commands` one
row per action of a firing, written with it before anything runs (services.controller resumes
the unfinished ones). Explicit operations, frozen in time (see 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_rule_sets"
down_revision = "0022_external_accounts"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rule_sets",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.String(128), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_sets"),
        sa.UniqueConstraint("owner_id", "name", name="uq_rule_sets_owner_id_name"),
    )
    op.create_index("ix_rule_sets_scope_scope_id", "rule_sets", ["scope", "scope_id"])
    op.create_table(
        "rule_firings",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("rule_set_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("time_ns", sa.BigInteger(), nullable=False),
        sa.Column("rule_values", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.ForeignKeyConstraint(["rule_set_id"], ["rule_sets.id"], name="fk_rule_firings_rule_set_id_rule_sets",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_rule_firings"),
    )
    op.create_index("ix_rule_firings_rule_set_id_time_ns", "rule_firings", ["rule_set_id", "time_ns"])
    op.create_index("ix_rule_firings_owner_id_time_ns", "rule_firings", ["owner_id", "time_ns"])
    op.create_table(
        "rule_commands",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("firing_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_set_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["firing_id"], ["rule_firings.id"], name="fk_rule_commands_firing_id_rule_firings",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_rule_commands"),
    )
    op.create_index("ix_rule_commands_firing_id_seq", "rule_commands", ["firing_id", "seq"])
    op.create_index("ix_rule_commands_status", "rule_commands", ["status"])


def downgrade() -> None:
    op.drop_index("ix_rule_commands_status", table_name="rule_commands")
    op.drop_index("ix_rule_commands_firing_id_seq", table_name="rule_commands")
    op.drop_table("rule_commands")
    op.drop_index("ix_rule_firings_owner_id_time_ns", table_name="rule_firings")
    op.drop_index("ix_rule_firings_rule_set_id_time_ns", table_name="rule_firings")
    op.drop_table("rule_firings")
    op.drop_index("ix_rule_sets_scope_scope_id", table_name="rule_sets")
    op.drop_table("rule_sets")
