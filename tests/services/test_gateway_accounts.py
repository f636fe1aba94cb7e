"""Accounts in the gateway on a real store: opened once on first use and funded once, orders spend their own
account only, and each account's notification sequence is consecutive and continues after a restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coinwire.app import build_feed
from coinwire.bus.memory import MemoryBus
from coinwire.config import load_settings
from coinwire.core.errors import CoinwireError
from coinwire.core.numbers import str_to_atto
from coinwire.core.orders import OrderRequest, OrderType, Side
from coinwire.messages import FillEvent, OrderUpdate
from coinwire.services.gateway import Gateway

EXCHANGE = {"name": "demo", "feed": "demo", "tick_interval": 0.05, "seed": 11, "paper_funds": {"USDT": "1000", "BTC": "1"}}


class Running:
    """A gateway over a SQLite store in `path`, fed by the demo feed; `restart()` starts a fresh one on the same store."""

    def __init__(self, path: Path) -> None:
        self.settings = load_settings(env={}, overrides={"data_dir": str(path), "exchanges": [EXCHANGE]})
        self.events: list[tuple[int, int, str]] = []  # (account, seq, kind) in publish order

    async def start(self) -> Gateway:
        from coinwire.store import Store

        self.store = Store(self.settings.resolved_store_url)
        await self.store.start()
        self.bus = MemoryBus()
        await self.bus.start()
        self.gateway = Gateway(self.settings, self.store, self.bus)
        await self.gateway.start()
        await self.bus.subscribe(">", self._record, types=frozenset({OrderUpdate, FillEvent}), inline=True)
        self.feed = build_feed(self.settings.exchanges[0])
        self.gateway.snapshot_sources["demo"] = self.feed
        self.feeding = asyncio.create_task(self.feed.run(self.bus.publish))
        for _ in range(200):
            if self.gateway.venues["demo"].status == "ready":
                break
            await asyncio.sleep(0.05)
        assert self.gateway.venues["demo"].status == "ready"
        return self.gateway

    def _record(self, subject: str, message: Any) -> None:
        kind = "order" if isinstance(message, OrderUpdate) else "trade"
        assert subject.startswith(f"{'order' if kind == 'order' else 'fill'}.{message.account_id}.demo.")
        payload = message.order if kind == "order" else message.trade
        assert (payload.account, payload.seq) == (message.account_id, message.seq)
        self.events.append((message.account_id, message.seq, kind))

    async def stop(self) -> None:
        await self.feed.close()
        self.feeding.cancel()
        await asyncio.gather(self.feeding, return_exceptions=True)
        await self.gateway.close()
        await self.bus.close()
        await self.store.close()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    run = Running(tmp_path)
    await run.start()
    try:
        yield run
    finally:
        await run.stop()


def order(gateway: Gateway, owner_id: int, *, market: bool, side: Side = Side.BUY, account_id: int | None = None) -> OrderRequest:
    market_ = gateway.venues["demo"].markets["BTC/USDT"]
    inst, bid = market_.instrument, market_.engine.book.best_bid()
    assert bid is not None
    return OrderRequest(exchange="demo", instrument=inst, side=side, type=OrderType.MARKET if market else OrderType.LIMIT,
                        size=inst.parse_size("0.001", "size"), limit=0 if market else bid * 8 // 10, cancel_after=0,
                        client_oid=uuid.uuid4().hex, wallet_set_id=None, run_id=None, owner_id=owner_id, account_id=account_id)


async def test_a_users_account_is_opened_once_on_first_use_and_funded_once(running: Running) -> None:
    gateway = running.gateway
    first, second = await asyncio.gather(gateway.account_for(1, "demo"), gateway.account_for(1, "demo"))
    assert first is second and first is not None and first.owner_id == 1 and first.kind == "paper"
    other = await gateway.account_for(2, "demo")
    assert other is not None and other.id != first.id
    for account in (first, other):
        funds = gateway.ledger.unallocated((account.id,))
        assert {pair: b.balance for pair, b in funds.items()} == {("demo", "BTC"): str_to_atto("1"), ("demo", "USDT"): str_to_atto("1000")}
    stored = await gateway.store.load_state()
    assert sorted(a.id for a in stored.accounts) == sorted([first.id, other.id])


async def test_orders_spend_their_accounts_funds_and_seqs_are_consecutive_per_account_across_a_restart(running: Running) -> None:
    gateway = running.gateway
    for i in range(6):
        await gateway.make_order(order(gateway, 1, market=i % 2 == 0, side=Side.BUY if i % 3 else Side.SELL))
    await gateway.make_order(order(gateway, 2, market=True))
    alice, bob = gateway.accounts.own(1, "demo"), gateway.accounts.own(2, "demo")
    assert alice is not None and bob is not None
    # Bob bought 0.001 BTC with his own USDT; Alice's trading never touched his 1000 USDT / 1 BTC
    bob_usdt = gateway.ledger.unallocated((bob.id,))[("demo", "USDT")].balance
    assert bob_usdt < str_to_atto("1000") and gateway.ledger.unallocated((bob.id,))[("demo", "BTC")].balance == str_to_atto("1.001")
    with pytest.raises(CoinwireError) as foreign:  # an order naming an account that does not exist
        await gateway.make_order(order(gateway, 2, market=True, account_id=10**6))
    assert foreign.value.code == "account_not_found"
    gateway.ledger.check()
    for account in (alice.id, bob.id):
        seqs = [seq for acct, seq, _ in running.events if acct == account]
        assert seqs == list(range(1, len(seqs) + 1)), account  # consecutive from 1, one per notification
    last = {account: max(seq for acct, seq, _ in running.events if acct == account) for account in (alice.id, bob.id)}
    await running.stop()
    running.events.clear()
    gateway = await running.start()
    assert {account: gateway.seqs[account] for account in last} == last  # restored from the orders' rows
    await gateway.make_order(order(gateway, 1, market=True))
    assert next(seq for acct, seq, _ in running.events if acct == alice.id) == last[alice.id] + 1
    assert gateway.accounts.own(1, "demo").id == alice.id  # type: ignore[union-attr]  # the same account, not a new one
