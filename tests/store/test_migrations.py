"""Alembic migrations on SQLite and PostgreSQL: applied on start, idempotent, reversible,
and producing exactly the schema coinwire.store.tables declares."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from coinwire.core.wallets import WalletSet
from coinwire.store import ChangeSet, Store, migrate
from coinwire.store.tables import metadata
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture

TABLES = {"orders", "fills", "wallet_sets", "wallets", "wallet_lines",
          "wallet_totals", "hold_totals", "checkpoints", "candles", "fx_rates", "coin_stats", "meta",
          "users", "sessions", "api_keys", "owners", "credentials", "audit", "preferences", "accounts", "account_members",
          "site_settings", "rates", "schedules", "schedule_ticks", "alembic_version",
          "notify_channels", "notify_subscriptions", "notify_outbox",
          "positions", "position_settings", "position_modes", "funding_payments"}
TABLES |= {"portfolio_candles"}
TABLES |= {"account_imports", "account_trades", "account_transfers"}  # account imports (0021)
TABLES |= {"portfolio_daily"}  # 0020_portfolio_daily
TABLES |= {"external_trades"}
TABLES |= {"rule_sets", "rule_firings", "rule_commands"}  # 0023_rule_sets
TABLES |= {"analysis_values", "signals"}
TABLES |= {"outside_signals"}  # 0025_outside_signals
TABLES |= {"leases", "cluster_members"}  # 0026_gateway_leases


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _scalar(store: Store, sql: str) -> object:
    async with store.engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


def test_packaged_scripts_have_one_head_matching_the_code() -> None:
    scripts = ScriptDirectory(str(migrate.SCRIPT_LOCATION))
    assert scripts.get_heads() == [migrate.HEAD]
    assert (migrate.SCRIPT_LOCATION / "env.py").is_file()


async def test_start_migrates_to_head_and_the_schema_matches_the_tables(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        assert await _scalar(store, "SELECT version_num FROM alembic_version") == migrate.HEAD
        async with store.engine.connect() as conn:
            assert await conn.run_sync(migrate.current_revision) == migrate.HEAD
            assert await conn.run_sync(_diff) == []
            names = set(await conn.run_sync(lambda sync: sync.dialect.get_table_names(sync)))
        assert names == TABLES
        assert await _scalar(store, "SELECT value FROM meta WHERE key = 'ledger_decimals'") == "18"


async def test_starting_again_is_a_no_op_and_keeps_data(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        await store.apply(ChangeSet(wallet_sets=[WalletSet(id=1, run_id=None, description="kept", created_at=1)]))
    async with database.store() as store:
        await store.start()  # starting a started store does nothing either
        assert await _scalar(store, "SELECT count(*) FROM alembic_version") == 1
        assert await _scalar(store, "SELECT version_num FROM alembic_version") == migrate.HEAD
        assert [s.description for s in (await store.load_state()).wallet_sets] == ["kept"]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)  # a journal has one server (test_journal)
async def test_concurrent_starts_on_a_fresh_database_both_succeed(database: Database) -> None:  # noqa: F811
    first, second = database.store(), database.store()
    try:
        await asyncio.gather(first.start(), second.start())
        assert await _scalar(first, "SELECT version_num FROM alembic_version") == migrate.HEAD
    finally:
        await first.close()
        await second.close()


async def test_downgrade_to_base_and_upgrade_again(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        async with store.engine.begin() as conn:
            await conn.run_sync(migrate.downgrade, "base")
        async with store.engine.connect() as conn:
            assert await conn.run_sync(migrate.current_revision) is None
            names = set(await conn.run_sync(lambda sync: sync.dialect.get_table_names(sync)))
        assert names <= {"alembic_version"}
        async with store.engine.begin() as conn:
            await conn.run_sync(migrate.upgrade)
        async with store.engine.connect() as conn:
            assert await conn.run_sync(migrate.current_revision) == migrate.HEAD


async def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    async with Store(f"sqlite:///{tmp_path / 'wal.db'}") as store:
        assert await _scalar(store, "PRAGMA journal_mode") == "wal"
        assert await _scalar(store, "PRAGMA foreign_keys") == 1
        assert await _scalar(store, "PRAGMA synchronous") == 1  # NORMAL
