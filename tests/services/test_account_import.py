"""The import of a live account's history against the local signed Binance, seeded with a past made from recorded candles.

Checked against independent references: the stored trades and transfers are the seeded
payloads field by field; each 15-minute candle's close is the holdings summed forward from
the seeded events (completed transfers only) times the recorded close at the boundary, and its
volume the seeded quote quantities inside the bucket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from coinwire.config import ExchangeConfig
from coinwire.core.accounts import Account
from coinwire.core.errors import Conflict, InvalidInput
from coinwire.core.portfolio import BUCKET_S, value_from_int
from coinwire.history.store import HistoryStore
from coinwire.services.account_import import AccountImports, ImportSettings, history_start_ms, live_clients
from coinwire.store import Store
from coinwire.store.account_imports import load_trades, load_transfers
from coinwire.store.portfolio_candles import load_portfolio_candles
from coinwire.venues.ccxt_errors import Backoff
from tests.conftest import shared_data
from tests.feeds.binance_server import RecordedBinance, ServerRunner
from tests.feeds.test_ccxt_feed import capture
from tests.venues.binance_history import SeededHistory, seeded_history
from tests.venues.binance_trading import API_KEY, SECRET, TradingBinance, trading_urls
from tests.venues.conftest import OPTIONS

ENV = {"COINWIRE_BINANCE_API_KEY": API_KEY, "COINWIRE_BINANCE_SECRET": SECRET}
ACCOUNT = Account(id=7, exchange="binance", kind="live", name="binance", owner_id=1, created_at=0)
SETTINGS = ImportSettings(page_limit=50, history_start_ms=history_start_ms("2020-10-01"), timeframe="5m")
EIGHT = Decimal("0.00000001")


class FastBackoff(Backoff):
    def __init__(self) -> None:
        super().__init__(base=0.01, cap=0.05, jitter=0.0)


@pytest.fixture(scope="module")
def seeded() -> Iterator[SeededHistory]:
    shared_data("binance-spot-5m", "BTC_USDT-5m.json")  # skips with a reason when the recorded data is absent
    yield seeded_history()


@pytest.fixture
async def venue(seeded: SeededHistory) -> TradingBinance:
    venue = TradingBinance(RecordedBinance(capture()), dict(seeded.balances), history=seeded.history)
    venue.trades.extend(seeded.btc_trades)
    return venue


@pytest.fixture
async def server(venue: TradingBinance) -> AsyncIterator[ServerRunner]:
    runner = ServerRunner(venue)
    await runner.start()
    yield runner
    await runner.stop()


def exchange(server: ServerRunner) -> ExchangeConfig:
    return ExchangeConfig(name="binance", mode="live", feed="ccxt", symbols=["BTC/USDT"], ccxt_urls=trading_urls(server),
                          ccxt_options=OPTIONS)


def imports(store: Store, server: ServerRunner, tmp_path: Path) -> AccountImports:
    """The service as the platform builds it, without notifications (tests/api/test_import_api.py has the e-mail)."""
    return AccountImports(store, [exchange(server)], live_clients(store, tmp_path, ENV), HistoryStore(tmp_path / "history"),
                          None, SETTINGS, backoff=FastBackoff)


def forward_holdings(seeded: SeededHistory, ts_ms: int) -> dict[str, Decimal]:
    """The reference: every completed deposit, withdrawal (amount and fee) and trade at or before `ts_ms`, from nothing."""
    held: dict[str, Decimal] = {}

    def add(asset: str, amount: Decimal) -> None:
        held[asset] = held.get(asset, Decimal(0)) + amount

    for d in seeded.history.deposits:
        if d["status"] == 1 and d["insertTime"] <= ts_ms:
            add(d["coin"], Decimal(d["amount"]))
    for w in seeded.history.withdrawals:
        at = int(datetime.strptime(w["applyTime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()) * 1000
        if w["status"] == 6 and at <= ts_ms:
            add(w["coin"], -(Decimal(w["amount"]) + Decimal(w["transactionFee"])))
    for t in seeded.all_trades():
        if t["time"] <= ts_ms:
            base = t["symbol"].removesuffix("USDT")
            sign = 1 if t["isBuyer"] else -1
            add(base, sign * Decimal(t["qty"]))
            add("USDT", -sign * Decimal(t["quoteQty"]))
            add(t["commissionAsset"], -Decimal(t["commission"]))
    return held


def reference_close(seeded: SeededHistory, boundary: int) -> Decimal:
    held = forward_holdings(seeded, boundary * 1000)
    value = held.get("USDT", Decimal(0))
    for asset in ("BTC", "ETH", "SOL"):
        if held.get(asset):
            (row,) = [r for r in seeded.rows[f"{asset}USDT"] if r[0] == (boundary - 300) * 1000]
            value += held[asset] * Decimal(repr(row[4]))
    return value


async def test_the_import_reproduces_the_recorded_trades_and_transfers_and_values_every_boundary_independently(
    seeded: SeededHistory, venue: TradingBinance, server: ServerRunner, store: Store, tmp_path: Path
) -> None:
    service = imports(store, server, tmp_path)
    progress: list[dict[str, Any]] = []
    service.listeners.append(progress.append)
    row = await service.begin(ACCOUNT, 1)
    await service.idle()
    final = await service.status(ACCOUNT.id)
    assert final is not None and (final.id, final.state, final.error) == (row.id, "done", None)

    stored = {(t.symbol, t.trade_id): t for t in await load_trades(store, ACCOUNT.id)}
    expected = seeded.all_trades()
    assert len(stored) == len(expected) > 3 * 50  # pages beyond the limit on every market
    for t in expected:
        got = stored[(t["symbol"].removesuffix("USDT") + "/USDT", str(t["id"]))]
        assert (got.side, got.price, got.amount, got.cost, got.fee, got.fee_currency, got.ts_ms) == (
            "buy" if t["isBuyer"] else "sell", Decimal(t["price"]), Decimal(t["qty"]), Decimal(t["quoteQty"]),
            Decimal(t["commission"]), t["commissionAsset"], t["time"])
    transfers = {(t.kind, t.transfer_id): t for t in await load_transfers(store, ACCOUNT.id)}
    assert {k: (t.asset, t.amount, t.fee, t.status) for k, t in transfers.items()} == {
        **{("deposit", d["id"]): (d["coin"], Decimal(d["amount"]), Decimal(0), "ok" if d["status"] == 1 else "pending")
           for d in seeded.history.deposits},
        **{("withdrawal", w["id"]): (w["coin"], Decimal(w["amount"]), Decimal(w["transactionFee"]),
                                     "ok" if w["status"] == 6 else "canceled") for w in seeded.history.withdrawals},
    }

    # in the owner's display currency (USD, never chosen): USDT = USD by its peg at every instant, nothing in the quote
    assert await load_portfolio_candles(store, "account", str(ACCOUNT.id), "USDT") is None
    candles = await load_portfolio_candles(store, "account", str(ACCOUNT.id), "USD")
    assert candles is not None and set(candles.statuses) == {"complete"}
    assert final.cursor["display_currency"] == "USD" and final.cursor["rate_source"] == "peg"
    times = candles.candles.time.tolist()
    assert times == list(range(times[0], times[-1] + 1, BUCKET_S))  # every bucket, none missing
    first_event = min(d["insertTime"] for d in seeded.history.deposits)
    assert times[0] == first_event // 1000 - first_event // 1000 % BUCKET_S
    assert times[-1] + BUCKET_S >= max(t["time"] for t in expected) // 1000  # the history is covered to its end
    for i, open_time in enumerate(times):
        boundary = open_time + BUCKET_S
        close = value_from_int(int(candles.candles.close[i]))
        assert close == reference_close(seeded, boundary).quantize(EIGHT, rounding=ROUND_HALF_EVEN), boundary
        traded = sum((Decimal(t["quoteQty"]) for t in expected if open_time * 1000 < t["time"] <= boundary * 1000), Decimal(0))
        assert value_from_int(int(candles.candles.volume[i])) == traded.quantize(EIGHT, rounding=ROUND_UP)
        assert int(candles.candles.low[i]) <= int(candles.candles.close[i]) <= int(candles.candles.high[i])
    # the owner has no other account: their total is this account's past, bucket for bucket
    total = await load_portfolio_candles(store, "user", str(ACCOUNT.owner_id), "USD")
    assert total is not None and total.statuses == candles.statuses
    assert [c.tolist() for c in total.candles] == [c.tolist() for c in candles.candles]

    assert [p["step"] for p in progress if p["done"] == 0][:1] == ["balances"]
    assert progress[-1] == {"account_id": ACCOUNT.id, "import_id": row.id, "step": "rebuild", "done": 1, "total": 1,
                            "eta_s": progress[-1]["eta_s"], "state": "done"}
    steps_seen = [p["step"] for p in progress]
    assert steps_seen.index("deposits") < steps_seen.index("trades") < steps_seen.index("candles") < steps_seen.index("rebuild")
    assert any(p["eta_s"] is not None for p in progress if p["step"] == "trades")


async def test_a_second_import_adds_nothing_twice(
    seeded: SeededHistory, venue: TradingBinance, server: ServerRunner, store: Store, tmp_path: Path
) -> None:
    service = imports(store, server, tmp_path)
    first = await service.begin(ACCOUNT, 1)
    await service.idle()
    trades, transfers = await load_trades(store, ACCOUNT.id), await load_transfers(store, ACCOUNT.id)
    candles = await load_portfolio_candles(store, "account", str(ACCOUNT.id), "USD")
    asked = len(venue.requests)

    second = await service.begin(ACCOUNT, 1)
    await service.idle()
    done = await service.status(ACCOUNT.id)
    assert done is not None and second.id != first.id and done.state == "done" and done.cursor["candles_written"] == 0
    assert done.cursor["user_candles_written"] == 0
    assert len(venue.requests) > asked  # it asked the venue again ...
    assert await load_trades(store, ACCOUNT.id) == trades  # ... and stored nothing twice
    assert await load_transfers(store, ACCOUNT.id) == transfers
    again = await load_portfolio_candles(store, "account", str(ACCOUNT.id), "USD")
    assert again is not None and candles is not None
    assert again.candles.close.tolist() == candles.candles.close.tolist() and again.statuses == candles.statuses


async def test_a_venue_failing_part_way_fails_the_import_with_the_reason_and_a_retry_resumes_at_its_cursor(
    seeded: SeededHistory, venue: TradingBinance, server: ServerRunner, store: Store, tmp_path: Path
) -> None:
    service = imports(store, server, tmp_path)
    progress: list[dict[str, Any]] = []

    def break_after_first_market(view: dict[str, Any]) -> None:
        if view["step"] == "trades" and view["done"] == 1 and "myTrades" not in venue.faults:
            venue.fail("myTrades", 400)  # Binance -1121: not retryable, the import stops
        progress.append(view)

    service.listeners.append(break_after_first_market)
    await service.begin(ACCOUNT, 1)
    await service.idle()
    failed = await service.status(ACCOUNT.id)
    assert failed is not None and failed.state == "failed" and failed.step == "trades"
    assert failed.error is not None and "Invalid symbol" in failed.error
    assert len(failed.cursor["trades_done"]) == 1
    assert progress[-1]["state"] == "failed"
    kept = len(await load_trades(store, ACCOUNT.id))
    assert 0 < kept < len(seeded.all_trades())

    progress.clear()
    resumed = await service.begin(ACCOUNT, 1)
    assert resumed.id == failed.id  # the same import, resumed
    await service.idle()
    done = await service.status(ACCOUNT.id)
    assert done is not None and done.state == "done"
    resumed_trades = [p for p in progress if p["step"] == "trades"]
    assert resumed_trades[0]["done"] == 1  # it went on at the second market, not from the start
    assert "balances" not in [p["step"] for p in progress[1:]]
    stored = await load_trades(store, ACCOUNT.id)
    assert len(stored) == len({(t.symbol, t.trade_id) for t in stored}) == len(seeded.all_trades())


async def test_an_import_refuses_a_second_start_while_running_and_resumes_after_a_restart(
    seeded: SeededHistory, venue: TradingBinance, server: ServerRunner, store: Store, tmp_path: Path
) -> None:
    service = imports(store, server, tmp_path)
    seen = asyncio.Event()
    service.listeners.append(lambda view: seen.set() if view["step"] == "trades" and view["done"] >= 1 else None)
    await service.begin(ACCOUNT, 1)
    with pytest.raises(Conflict) as refused:
        await service.begin(ACCOUNT, 1)
    assert refused.value.code == "import_running"
    await asyncio.wait_for(seen.wait(), 30)
    await service.close()  # the process stops mid-import
    stopped = await service.status(ACCOUNT.id)
    assert stopped is not None and stopped.state == "running" and stopped.step == "trades"

    restarted = imports(store, server, tmp_path)
    progress: list[dict[str, Any]] = []
    restarted.listeners.append(progress.append)
    await restarted.start({ACCOUNT.id: ACCOUNT})
    await restarted.idle()
    done = await restarted.status(ACCOUNT.id)
    assert done is not None and (done.id, done.state) == (stopped.id, "done")
    assert progress[0]["step"] == "trades" and progress[0]["done"] >= 1
    stored = await load_trades(store, ACCOUNT.id)
    assert len(stored) == len(seeded.all_trades())


async def test_only_live_accounts_import(store: Store, tmp_path: Path) -> None:
    paper = Account(id=8, exchange="binance", kind="paper", name="p", owner_id=1, created_at=0)
    service = AccountImports(store, [], live_clients(store, tmp_path, ENV), HistoryStore(tmp_path / "history"), None, SETTINGS)
    with pytest.raises(InvalidInput) as refused:
        await service.begin(paper, 1)
    assert refused.value.code == "import_unavailable"
    assert await service.status(paper.id) is None
