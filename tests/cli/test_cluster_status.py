"""`coinwire cluster status` on a real store: leases with holder, token and time left, live processes, the journal's lag."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coinwire.cli import app
from coinwire.core.wallets import WalletSet
from coinwire.store import ChangeSet, Store
from coinwire.store.journal_lag import behind
from coinwire.store.leases import acquire_lease, heartbeat
from tests.conftest import postgres_database


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def _run(tmp_path: Path, url: str, *args: str) -> str:
    done = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "cluster", "status", *args], env={"COINWIRE_STORE_URL": url})
    assert done.exit_code == 0, done.output
    return done.output


def test_leases_and_members_of_a_postgresql_store(tmp_path: Path, database: str) -> None:
    async def populate() -> None:
        async with Store(database) as store:
            await acquire_lease(store, "gateway:demo", "host:42:gateway", 60_000)
            await acquire_lease(store, "gateway:old", "host:7:gateway", 1)
            await heartbeat(store, "host:42:gateway", "gateway")

    asyncio.run(populate())
    answer = json.loads(_run(tmp_path, database, "--json"))
    assert answer["store"] == "postgresql" and answer["journal_behind_bytes"] is None
    leases = {lease["name"]: lease for lease in answer["leases"]}
    assert leases["gateway:demo"]["holder"] == "host:42:gateway" and leases["gateway:demo"]["token"] == 1
    assert 0 < leases["gateway:demo"]["expires_in_ms"] <= 60_000 and leases["gateway:old"]["expires_in_ms"] <= 0
    assert [m["holder"] for m in answer["members"]] == ["host:42:gateway"] and answer["members"][0]["roles"] == "gateway"
    text = _run(tmp_path, database)
    assert "gateway:demo" in text and "host:42:gateway" in text and "expired" in text and "Processes" in text


def test_a_sqlite_store_shows_its_journal_lag(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'coinwire.db'}"

    async def populate() -> None:
        async with Store(url, journal=True) as store:
            await store.apply(ChangeSet(wallet_sets=[WalletSet(id=1, run_id=None, description="x", created_at=1)]))
            await store.settled()
            assert store.journal is not None

    asyncio.run(populate())
    answer = json.loads(_run(tmp_path, url, "--json"))
    assert answer == {"store": "sqlite", "leases": [], "members": [], "journal_behind_bytes": 0}
    assert "store journal: 0 bytes" in _run(tmp_path, url)


def test_journal_lag_counts_the_bytes_past_the_applied_position(tmp_path: Path) -> None:
    (tmp_path / "0000000003.cwj").write_bytes(b"CWJ1" + b"x" * 96)  # 100 bytes, applied up to 40
    (tmp_path / "0000000004.cwj").write_bytes(b"CWJ1" + b"y" * 20)  # none applied
    (tmp_path / "0000000002.cwj").write_bytes(b"CWJ1" + b"z" * 50)  # an older, fully applied generation
    assert behind(tmp_path, "3:40") == 60 + 20
    assert behind(tmp_path, None) == 96 + 20 + 50
