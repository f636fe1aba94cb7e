"""Gateway commits on a real PostgreSQL: one user's change set the database refuses fails that user's call alone, with a
stable code, and the gateway's memory stays what the store holds, for the refused command and everyone else's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from coinwire.core.errors import CoinwireError
from coinwire.core.ledger import Ledger
from coinwire.core.orders import OrderRequest, OrderType, Side
from coinwire.messages import OrderView
from coinwire.services.gateway import Gateway
from tests.conftest import POSTGRES_URL, require_service
from tests.services.gateway_running import running_gateway

EXCHANGE = {"name": "demo", "feed": "demo", "tick_interval": 0.05, "seed": 11, "paper_funds": {"USDT": "1000000", "BTC": "10"}}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway over a throwaway PostgreSQL schema, fed by the demo feed until its exchange is ready."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"cw_{uuid.uuid4().hex[:16]}"
    try:
        async with running_gateway(tmp_path, POSTGRES_URL, schema, EXCHANGE) as gateway:
            yield gateway
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


def request(gateway: Gateway, owner_id: int, run_id: str, *, market: bool, side: Side = Side.BUY) -> OrderRequest:
    inst = gateway.venues["demo"].markets["BTC/USDT"].instrument
    bid = gateway.venues["demo"].markets["BTC/USDT"].engine.book.best_bid()
    assert bid is not None
    return OrderRequest(
        exchange="demo", instrument=inst, side=side, type=OrderType.MARKET if market else OrderType.LIMIT,
        size=inst.parse_size("0.001", "size"), limit=0 if market else bid * 8 // 10, cancel_after=0,
        client_oid=uuid.uuid4().hex, wallet_set_id=None, run_id=run_id, owner_id=owner_id,
    )


async def test_a_refused_change_set_fails_its_caller_alone_and_memory_stays_the_stores(gateway: Gateway) -> None:
    alice_ok: list[OrderView] = []
    alice_failed: list[BaseException] = []
    bob_refused: list[BaseException] = []

    async def alice(i: int) -> None:
        try:
            alice_ok.append(await gateway.make_order(request(gateway, 1, "alice-run", market=i % 3 == 0,
                                                             side=Side.BUY if i % 2 else Side.SELL)))
        except Exception as exc:  # noqa: BLE001 - counted: there must be none
            alice_failed.append(exc)

    async def bob(i: int) -> None:
        try:
            await gateway.make_order(request(gateway, 2, "b" * 100, market=i % 2 == 0))  # the column is VARCHAR(64)
        except Exception as exc:  # noqa: BLE001 - checked below
            bob_refused.append(exc)
        else:
            raise AssertionError("the store took a 100-character run_id")

    resting_before = await gateway.make_order(request(gateway, 1, "alice-run", market=False))
    engine = gateway.venues["demo"].markets["BTC/USDT"].engine
    alices_order = engine.open_orders[resting_before.id]
    for _ in range(5):  # rounds of concurrent commands: alice's and bob's change sets share group commits
        await asyncio.gather(*(alice(i) for i in range(12)), *(bob(i) for i in range(4)))

    assert alice_failed == [], alice_failed[:3]
    assert len(alice_ok) == 60 and len(bob_refused) == 20
    for exc in bob_refused:
        assert isinstance(exc, CoinwireError) and exc.code == "store_value_refused", repr(exc)
    # memory is what the store holds: the ledger (the sums of the stored lines), the resting orders, the idempotency keys
    state = await gateway.store.load_state()
    stored = Ledger.restore(state.wallets, state.wallet_sets, state.totals)
    every_line = await gateway.store.line_totals()
    assert gateway.ledger.totals().wallets == every_line.wallets and gateway.ledger.holds() == stored.holds()
    assert {w.id: (w.balance, w.hold) for w in gateway.ledger.all_wallets()} == {w.id: (w.balance, w.hold) for w in stored.all_wallets()}
    resting = {o.id for o in gateway.venues["demo"].markets["BTC/USDT"].engine.open_orders.values()}
    assert resting == {o.id for o in state.open_orders}
    assert {o.id for o in alice_ok if o.status != "done"} <= resting
    keys: list[tuple[int | None, str]] = []
    await gateway.store.each_client_oid_after(0, lambda owner, oid: keys.append((owner, oid)))
    assert len(keys) == 61 and all(gateway.client_oid_filter.may_contain(owner, oid) for owner, oid in keys)
    # and bob's refusals were taken back alone: nobody else's state was rebuilt from the store meanwhile
    assert engine.open_orders[resting_before.id] is alices_order
