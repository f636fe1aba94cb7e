"""The gateway keeps what is open, not history: orders not done, a bounded idempotency window, balances; on SQLite and
PostgreSQL a repeat older than the window still answers the same order (from the store), before and after a restart, and
the balances it keeps equal the sums of the stored lines after a storm of orders."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from coinwire.core.errors import Conflict
from coinwire.core.ledger import Ledger
from coinwire.core.orders import OrderRequest, OrderType, Side
from coinwire.services.gateway import Gateway
from tests.conftest import POSTGRES_URL, require_service
from tests.services.gateway_running import running_gateway

EXCHANGE = {"name": "demo", "feed": "demo", "tick_interval": 0.05, "seed": 11, "paper_funds": {"USDT": "1000000", "BTC": "10"}}
WINDOW = 3


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cw.db'}", None
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"cw_{uuid.uuid4().hex[:16]}"
    yield POSTGRES_URL, schema
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@asynccontextmanager
async def running(tmp_path: Path, url: str, schema: str | None, **overrides: Any) -> AsyncIterator[Gateway]:
    """A gateway on the store at `url` with a small idempotency window, its exchange ready; closed (and checkpointed) after."""
    async with running_gateway(tmp_path, url, schema, EXCHANGE, idempotency_window=WINDOW, **overrides) as gateway:
        yield gateway


def request(
    gateway: Gateway, client_oid: str, *, market: bool, side: Side = Side.BUY, size: str = "0.001", owner_id: int = 7
) -> OrderRequest:
    market_ = gateway.venues["demo"].markets["BTC/USDT"]
    bid = market_.engine.book.best_bid()
    assert bid is not None
    return OrderRequest(
        exchange="demo", instrument=market_.instrument, side=side, type=OrderType.MARKET if market else OrderType.LIMIT,
        size=market_.instrument.parse_size(size, "size"), limit=0 if market else bid * 8 // 10, cancel_after=0,
        client_oid=client_oid, wallet_set_id=None, run_id=None, owner_id=owner_id,
    )


async def test_memory_holds_open_orders_and_a_window_and_an_older_repeat_answers_the_same_order(
    store_url: tuple[str, str | None], tmp_path: Path
) -> None:
    url, schema = store_url
    async with running(tmp_path, url, schema) as gateway:
        first = await gateway.make_order(request(gateway, "first", market=True))
        resting_request = request(gateway, "resting", market=False)
        resting = await gateway.make_order(resting_request)
        sides = (Side.BUY, Side.SELL)
        for i in range(40):  # a storm of orders that fill at once, in concurrent rounds
            await asyncio.gather(*(gateway.make_order(request(gateway, f"m{i}-{j}", market=True, side=sides[j % 2]))
                                   for j in range(5)))
        assert first.status == "done" and resting.status == "open"
        assert set(gateway.orders) == {resting.id}  # only what is not done
        assert len(gateway.recent) == WINDOW and gateway.existing_order("first", 7) is None  # "first" fell out of the window
        again = await gateway.make_order(request(gateway, "first", market=True))  # found through the store
        assert again == first and gateway.ledger.check() is None
        with pytest.raises(Conflict) as other:
            await gateway.make_order(request(gateway, "first", market=True, size="0.002"))
        assert other.value.code == "duplicate_client_oid" and other.value.data["order_id"] == first.id
        assert (await gateway.make_order(resting_request)).id == resting.id  # not done: from memory
        # the balances kept are the sums of the stored lines (the store's source of truth), per wallet and per hold
        every_line = await gateway.store.line_totals()
        assert gateway.ledger.totals().wallets == every_line.wallets and gateway.ledger.holds() == {
            order_id: amount for order_id, (_, amount) in every_line.holds.items()}
        kept = gateway.ledger.all_wallets()
    # a restart reads the checkpoint, not history: the same balances, the old key still answers its order
    async with running(tmp_path, url, schema) as gateway:
        state = await gateway.store.load_state()
        assert state.lines_after_checkpoint == 0
        assert [(w.id, w.balance, w.hold) for w in gateway.ledger.all_wallets()] == [(w.id, w.balance, w.hold) for w in kept]
        assert set(gateway.orders) == {resting.id} and len(gateway.recent) == 0
        again = await gateway.make_order(request(gateway, "first", market=True))
        assert again.id == first.id and again.status == "done"
        cancelled = await gateway.cancel_order(order_id=None, client_oid="resting", exchange=None, owner_id=7)
        assert cancelled.status == "done" and gateway.orders == {}
        assert gateway.ledger.totals().wallets == (await gateway.store.line_totals()).wallets


async def test_a_start_after_a_crash_folds_the_lines_after_the_checkpoint(store_url: tuple[str, str | None], tmp_path: Path) -> None:
    """Without a checkpoint since (as after a SIGKILL) the stored state restores from the lines after the last one."""
    url, schema = store_url
    async with running(tmp_path, url, schema, checkpoint_lines=10_000_000, checkpoint_seconds=3600) as gateway:
        for i in range(10):
            await gateway.make_order(request(gateway, f"m{i}", market=True, side=(Side.BUY, Side.SELL)[i % 2]))
        before = gateway.ledger.totals().wallets
        state = await gateway.store.load_state()
        assert state.lines_after_checkpoint > 0  # what a crash now would leave to read
        restored = Ledger.restore(state.wallets, state.wallet_sets, state.totals)
        assert restored.totals().wallets == before
        last = gateway.order_ids.last
    async with running(tmp_path, url, schema) as gateway:
        assert gateway.ledger.totals().wallets == before and gateway.order_ids.last == last
        assert (await gateway.make_order(request(gateway, "m3", market=True, side=Side.SELL))).id == last - 6


async def test_a_client_oid_is_its_owners_in_the_window_the_filter_and_the_store(store_url: tuple[str, str | None], tmp_path: Path) -> None:
    """Another user's equal client_oid makes that user's own order wherever the first one is found (memory, store)."""
    url, schema = store_url
    async with running(tmp_path, url, schema, idempotency_window_seconds=3600, client_oid_filter_bytes=2048) as gateway:
        assert gateway.recent.max_age == 3600 * 10**9 and gateway.client_oid_filter.size_bytes == 2048  # the settings are read
        alices = await gateway.make_order(request(gateway, "same", market=True, owner_id=7))
        assert gateway.existing_order("same", 7) is not None and gateway.existing_order("same", 8) is None
        bobs = await gateway.make_order(request(gateway, "same", market=True, size="0.002", owner_id=8))  # in alice's window
        assert bobs.id != alices.id and bobs.size != alices.size
    async with running(tmp_path, url, schema) as gateway:  # the windows are empty: both answered from the store
        assert (await gateway.make_order(request(gateway, "same", market=True, owner_id=7))).id == alices.id
        assert (await gateway.make_order(request(gateway, "same", market=True, size="0.002", owner_id=8))).id == bobs.id
        carols = await gateway.make_order(request(gateway, "same", market=True, owner_id=9))
        assert carols.id not in (alices.id, bobs.id)
