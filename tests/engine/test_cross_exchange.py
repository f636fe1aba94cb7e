"""Runs over two paper exchanges and the `cross_exchange` strategy: one wallet set from the owner's account on each, orders on both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coinwire.app import Platform
from coinwire.config import load_settings
from coinwire.core.errors import CoinwireError
from coinwire.core.ledger import Balance
from coinwire.core.orders import OrderRequest, OrderType, Side
from coinwire.engine.paper import PaperRuntime
from coinwire.engine.runs import RunStore, parse_balances, parse_funds
from coinwire.services.gateway import Gateway
from coinwire.services.paper_runs import PaperRuns
from coinwire.services.runs import StartRequest
from coinwire.strategies.cross_exchange import CrossExchange

FUNDS = {"USDT": "100000", "BTC": "2"}  # each account's paper funds on each exchange
RUN_FUNDS = {"demo:USDT": "5000", "demo:BTC": "0.1", "demo2:USDT": "5000", "demo2:BTC": "0.1"}
PREMIUM_BP = 80  # demo2 quotes 0.8% above demo: 0.6% left after two 0.1% fees
OWNER, OTHER = 5, 6
EXCHANGES = ("demo", "demo2")
ATTO = 10**18


@asynccontextmanager
async def two_demo_exchanges(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A platform serving `demo` and `demo2` (the same seeded market, demo2 at a premium), books synced."""
    exchanges = [{"name": "demo", "tick_interval": 0.02, "paper_funds": FUNDS},
                 {"name": "demo2", "tick_interval": 0.02, "demo_premium_bp": PREMIUM_BP, "paper_funds": FUNDS}]
    platform = Platform(load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": exchanges}))
    await platform.start()
    try:
        gateway = platform.gateway
        await wait_for(lambda: all(ex.markets and all(m.synced for m in ex.markets.values()) for ex in gateway.venues.values()), 30)
        yield gateway
    finally:
        await platform.stop()


async def wait_for(predicate: Callable[[], Any], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


def snapshot(gateway: Gateway, accounts: set[int]) -> list[tuple[int, int, int, int | None]]:
    """Every wallet of these accounts: (id, balance, hold, wallet set)."""
    return sorted((w.id, w.balance, w.hold, w.wallet_set_id) for w in gateway.ledger.all_wallets() if w.account_id in accounts)


def totals(gateway: Gateway, account: int) -> dict[str, int]:
    return {currency: b.balance for (_, currency), b in gateway.ledger.exchange_totals((account,)).items()}


@pytest.mark.timeout(120)
async def test_a_run_over_two_paper_exchanges_trades_on_both_from_its_owners_accounts(tmp_path: Path) -> None:
    async with two_demo_exchanges(tmp_path) as gateway:
        mine = {ex: (await gateway.account_for(OWNER, ex)).id for ex in EXCHANGES}  # type: ignore[union-attr]
        theirs = {ex: (await gateway.account_for(OTHER, ex)).id for ex in EXCHANGES}  # type: ignore[union-attr]
        # the other user has a wallet set and a resting order of their own: neither may move
        await gateway.create_wallet_set(run_id=None, description="theirs", allocations=[("demo2", "BTC", ATTO // 2)], owner_id=OTHER)
        market = gateway.market("demo", "BTC/USDT")
        low = market.engine.book.best_bid() // 2  # type: ignore[operator]
        await gateway.make_order(OrderRequest(exchange="demo", instrument=market.instrument, side=Side.BUY, type=OrderType.LIMIT,
                                              size=10**3, limit=low, cancel_after=0, client_oid="theirs-1", wallet_set_id=None,
                                              run_id=None, owner_id=OTHER))
        their_wallets = snapshot(gateway, set(theirs.values()))
        before = {ex: totals(gateway, mine[ex]) for ex in EXCHANGES}

        runs = PaperRuns(gateway, RunStore(tmp_path / "runs"))
        run_id = (await runs.start("cross_exchange", StartRequest(mode="paper", balances=RUN_FUNDS), owner_id=OWNER))["run_id"]
        runtime = runs.running[run_id].runtime
        await wait_for(lambda: runtime.funded, 10)
        assert runtime.exchanges == ["demo", "demo2"]
        # one wallet set, its wallets on both exchanges, each of the owner's account there
        in_set = gateway.ledger.wallets(runtime.wallet_set_id)
        assert {(w.exchange, w.account_id) for w in in_set} == {("demo", mine["demo"]), ("demo2", mine["demo2"])}
        assert {(w.exchange, w.currency): w.balance for w in in_set} == {
            ("demo", "USDT"): 5000 * ATTO, ("demo", "BTC"): ATTO // 10, ("demo2", "USDT"): 5000 * ATTO, ("demo2", "BTC"): ATTO // 10}
        await wait_for(lambda: runtime.done.is_set() or (len({f.exchange for f in runtime.fills}) == 2 and len(runtime.fills) >= 6), 60)
        strategy = runtime.strategy
        assert strategy is not None and runtime.failure is None and runtime.error is None
        await runs.stop(run_id)

        record = runs.store.get(run_id)
        assert record["status"] == "stopped" and record["report"]["exchanges"] == ["demo", "demo2"]
        assert {t["exchange"] for t in record["report"]["trades"]} == {"demo", "demo2"}
        orders = [o for o in await gateway.recent_orders(include_open=True, limit=1000) if o.run_id == run_id]
        assert len(orders) == 2 * strategy.captures >= 6
        # each order names its exchange and spends the owner's account there; demo2 quotes dearer: buy on demo, sell on demo2
        assert {(o.exchange, o.side, o.account) for o in orders} == {("demo", "buy", mine["demo"]),
                                                                                ("demo2", "sell", mine["demo2"])}
        assert all(o.status == "done" and o.type == "limit-fill-kill" for o in orders)
        assert strategy.unhedged == sum(1 for o in orders if o.done_reason != "filled")

        # the books balance, per account too; the run's set is handed back to the accounts it came from
        gateway.ledger.check()
        for account in [*mine.values(), *theirs.values()]:
            only = (account,)
            allocated, unallocated = gateway.ledger.allocated(accounts=only), gateway.ledger.unallocated(only)
            for pair, total in gateway.ledger.exchange_totals(only).items():
                assert total == allocated.get(pair, Balance()) + unallocated.get(pair, Balance())
        assert not gateway.ledger.wallet_set(runtime.wallet_set_id).active
        assert not any(b.balance for b in gateway.ledger.allocated(accounts=tuple(mine.values())).values())

        # what each account holds moved by exactly the run's fills there (an independent sum of each fill's legs)
        assert {f.account_id for f in runtime.fills} == set(mine.values())
        for ex in EXCHANGES:
            inst = gateway.market(ex, "BTC/USDT").instrument
            moved = {"BTC": 0, "USDT": 0}
            for fill in (f for f in runtime.fills if f.exchange == ex):
                notional = fill.price * fill.size * 10 ** (18 - inst.price_decimals - inst.size_decimals)
                assert fill.notional == notional and abs(fill.fee - notional // 1000) <= 1 and fill.fee_currency in (None, "USDT")
                sign = 1 if fill.side is Side.BUY else -1
                moved["BTC"] += sign * fill.size * 10 ** (18 - inst.size_decimals)
                moved["USDT"] -= sign * notional + fill.fee
            after = totals(gateway, mine[ex])
            assert {c: after[c] - before[ex][c] for c in moved} == moved
        if strategy.unhedged == 0:  # every capture filled both legs: the same BTC, more USDT
            gained = sum(totals(gateway, mine[ex])["USDT"] - before[ex]["USDT"] for ex in EXCHANGES)
            assert sum(totals(gateway, mine[ex])["BTC"] for ex in EXCHANGES) == sum(before[ex]["BTC"] for ex in EXCHANGES)
            assert gained > 0
        # the other user's wallets, set and resting order are as they were
        assert snapshot(gateway, set(theirs.values())) == their_wallets
        assert [o.client_order_id for o in gateway.open_orders(accounts=set(theirs.values()))] == ["theirs-1"]


class StoppedMidCapture(CrossExchange):
    """`cross_exchange` whose run is asked to stop right after its first capture sent both legs, before they reach the gateway."""

    def capture(self, cheap: str, dear: str, edge: float) -> None:
        super().capture(cheap, dear, edge)
        if self.captures == 1:
            self.stop_run()  # type: ignore[attr-defined]  # set by the test: the run's request_stop


@pytest.mark.timeout(60)
async def test_a_stop_asked_for_within_a_turn_lets_both_legs_of_the_capture_through_first(tmp_path: Path) -> None:
    async with two_demo_exchanges(tmp_path) as gateway:
        funds = parse_funds([f"{k}={v}" for k, v in RUN_FUNDS.items()])
        runtime = PaperRuntime("pp-midway", gateway, funds, owner_id=OWNER)
        StoppedMidCapture.stop_run = lambda self: runtime.request_stop("stopped within a turn")  # type: ignore[attr-defined]
        await runtime.open(StoppedMidCapture, {})
        strategy = await asyncio.wait_for(runtime.run(), 30)  # returns once the run has ended and handed its funds back
        orders = [o for o in await gateway.recent_orders(include_open=True, limit=1000) if o.run_id == "pp-midway"]
        assert sorted((o.exchange, o.side, o.done_reason) for o in orders) == [("demo", "buy", "filled"),
                                                                                       ("demo2", "sell", "filled")]
        assert isinstance(strategy, StoppedMidCapture) and strategy.captures == 1 and strategy.unhedged == 0
        assert not gateway.ledger.wallet_set(runtime.wallet_set_id).active
        gateway.ledger.check()


@pytest.mark.timeout(60)
async def test_a_run_that_cannot_be_funded_on_its_second_exchange_takes_nothing_on_the_first(tmp_path: Path) -> None:
    async with two_demo_exchanges(tmp_path) as gateway:
        mine = {ex: (await gateway.account_for(OWNER, ex)).id for ex in EXCHANGES}  # type: ignore[union-attr]
        before = snapshot(gateway, set(mine.values()))
        listening = list(gateway.listeners)  # the platform's own (the portfolio tracker)
        runs = PaperRuns(gateway, RunStore(tmp_path / "runs"))
        for balances, code in (({"demo:USDT": "1000", "demo2:USDT": "100000000"}, "insufficient_funds"),
                               ({"demo:USDT": "1000", "kraken:USDT": "10"}, "unknown_exchange"),
                               ({"demo:USDT": "1000", "demo2:USDT": "0"}, "invalid_balance")):
            with pytest.raises(CoinwireError) as refused:
                await runs.start("cross_exchange", StartRequest(mode="paper", balances=balances), owner_id=OWNER)
            assert refused.value.code == code
        assert snapshot(gateway, set(mine.values())) == before and not gateway.ledger.wallet_sets()
        assert not runs.running and not (tmp_path / "runs").exists()
        assert gateway.listeners == listening  # no run left a listener behind


@pytest.mark.timeout(60)
async def test_cross_exchange_on_one_exchange_fails_its_run_saying_it_needs_two(tmp_path: Path) -> None:
    async with two_demo_exchanges(tmp_path) as gateway:
        runs = PaperRuns(gateway, RunStore(tmp_path / "runs"))
        run_id = (await runs.start("cross_exchange", StartRequest(mode="paper", balances={"demo:USDT": "1000"}), owner_id=OWNER))["run_id"]
        task = runs.running[run_id].task
        assert task is not None
        await asyncio.wait_for(asyncio.shield(task), 30)
        record = runs.store.get(run_id)
        assert record["status"] == "failed" and "needs_two_exchanges" in record["traceback"]
        assert "give the run balances on two" in record["error"]
        gateway.ledger.check()
        assert not any(b.balance for b in gateway.ledger.allocated().values())


def test_balances_name_one_or_several_exchanges_in_the_order_given() -> None:
    funds = parse_funds(["demo2:BTC=0.1", "demo:USDT=5000", "demo2:usdt=10"])
    assert list(funds) == ["demo2", "demo"] and funds["demo2"] == {"BTC": "0.1", "USDT": "10"}
    with pytest.raises(CoinwireError) as twice:
        parse_funds(["demo:USDT=1", "demo:usdt=2"])
    assert twice.value.code == "invalid_balance" and "USDT on demo" in twice.value.message
    assert parse_funds(["demo:USDT=1", "demo2:USDT=2"])["demo2"] == {"USDT": "2"}  # one currency on two exchanges
    with pytest.raises(CoinwireError) as backtest:
        parse_balances(["demo:USDT=1", "demo2:BTC=1"])
    assert backtest.value.code == "invalid_balance" and "one exchange" in backtest.value.message
    assert parse_balances(["demo:USDT=1", "demo:BTC=2"]) == ("demo", {"USDT": "1", "BTC": "2"})
    assert Decimal(parse_funds(["demo:BTC=0.5"])["demo"]["BTC"]) == Decimal("0.5")
