"""A live exchange in the gateway, against a local Binance (signed REST, user data stream, the recorded book).

The platform runs as `coinwire serve` would: the CCXT feed mirrors the server's public market
data, the live exchange trades the server's account. After every step the ledger must say
what the account says: coinwire's totals per currency are the venue's free + locked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coinwire.app import Platform
from coinwire.config import load_settings
from coinwire.core.errors import CoinwireError
from coinwire.core.numbers import str_to_atto
from coinwire.core.orders import OrderRequest, OrderStatus, OrderType, Side
from coinwire.venues.live import LiveVenue
from tests.feeds.binance_server import RecordedBinance, ServerRunner
from tests.feeds.test_ccxt_feed import capture
from tests.venues.binance_trading import API_KEY, SECRET, TradingBinance, trading_urls
from tests.venues.conftest import OPTIONS, advance_trades, best, until

SYMBOL = "BTC/USDT"
START = {"BTC": "1", "USDT": "100000"}
ENV = {"COINWIRE_BINANCE_API_KEY": API_KEY, "COINWIRE_BINANCE_SECRET": SECRET}


@pytest.fixture
async def account() -> TradingBinance:
    return TradingBinance(RecordedBinance(capture()), dict(START))


@pytest.fixture
async def server(account: TradingBinance) -> AsyncIterator[ServerRunner]:
    runner = ServerRunner(account)
    await runner.start()
    yield runner
    await runner.stop()


def live_settings(tmp_path: Path, server: ServerRunner, **extra: Any) -> Any:
    exchange = {
        "name": "binance", "mode": "live", "feed": "ccxt", "symbols": [SYMBOL], "poll_interval": 0.05,
        "ccxt_websocket": extra.pop("ccxt_websocket", False), "ccxt_urls": trading_urls(server), "ccxt_options": OPTIONS,
        "live_reconcile_interval": 0.2,
        **extra,
    }
    return load_settings(env=ENV, overrides={"data_dir": str(tmp_path), "exchanges": [exchange]})


@pytest.fixture(params=["polling"])
async def platform(
    tmp_path: Path, server: ServerRunner, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Platform]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    platform = Platform(live_settings(tmp_path, server, ccxt_websocket=request.param == "websocket"))
    await platform.start()
    await until(lambda: platform.gateway.venues["binance"].status == "ready")
    yield platform
    await platform.stop()


def exchange_of(platform: Platform) -> LiveVenue:
    ex = platform.gateway.venues["binance"]
    assert isinstance(ex, LiveVenue)
    return ex


def assert_ledger_is_the_account(platform: Platform, account: TradingBinance) -> None:
    totals = platform.gateway.ledger.exchange_totals()
    for currency in ("BTC", "USDT"):
        venue = account.free[currency] + account.locked[currency]
        assert totals[("binance", currency)].balance == str_to_atto(str(venue)), currency
    platform.gateway.ledger.check()


def request(platform: Platform, client_oid: str, side: Side, kind: OrderType, size: str, limit: str | None = None,
            wallet_set_id: int | None = None) -> OrderRequest:
    inst = exchange_of(platform).markets[SYMBOL].instrument
    return OrderRequest(exchange="binance", instrument=inst, side=side, type=kind, size=inst.parse_size(size),
                        limit=inst.parse_price(limit) if limit else 0, cancel_after=0, client_oid=client_oid,
                        wallet_set_id=wallet_set_id, run_id=None)


async def trade_until_filled(account: TradingBinance, client_oid: str) -> Decimal:
    """Let recorded trades happen until the venue has filled some of `client_oid`; its filled size."""
    for _ in range(3000):
        advance_trades(account, 1)
        (order,) = [o for o in account.orders.values() if o["clientOrderId"] == client_oid]
        if Decimal(order["executedQty"]) > 0 and (order["status"] == "FILLED" or _ > 2000):
            return Decimal(order["executedQty"])
    raise AssertionError(f"the recording never traded at the limit of {client_oid}")


async def test_the_ledger_starts_as_the_account_and_a_market_buy_settles_with_the_venues_fill(
    platform: Platform, account: TradingBinance
) -> None:
    gateway = platform.gateway
    assert_ledger_is_the_account(platform, account)
    wallet_set = await gateway.create_wallet_set(run_id=None, description="live", allocations=[("binance", "USDT", str_to_atto("10000"))])

    view = await gateway.make_order(request(platform, "live-mkt-1", Side.BUY, OrderType.MARKET, "0.01", wallet_set_id=wallet_set.id))

    assert (view.status, view.done_reason, view.filled_size, view.fee_currency) == ("done", "filled", "0.01", "BTC")
    (trade,) = account.trades
    fills = await gateway.store.list_fills()
    assert [(f.ext_id, f.fee_currency, f.fee) for f in fills] == [(str(trade["id"]), "BTC", str_to_atto(trade["commission"]))]
    btc = gateway.ledger.wallet("binance", "BTC", wallet_set.id)
    usdt = gateway.ledger.wallet("binance", "USDT", wallet_set.id)
    assert btc.balance == str_to_atto("0.01") - str_to_atto(trade["commission"])
    assert usdt.balance == str_to_atto("10000") - str_to_atto(trade["quoteQty"])
    assert gateway.ledger.holds() == {}
    assert_ledger_is_the_account(platform, account)


@pytest.mark.parametrize("platform", ["polling", "websocket"], indirect=True)
async def test_a_resting_order_fills_through_the_report_stream_and_a_cancel_releases_the_hold(
    platform: Platform, account: TradingBinance
) -> None:
    gateway = platform.gateway
    websocket = platform.settings.exchanges[0].ccxt_websocket
    await until(lambda: exchange_of(platform).client.report_mode == ("websocket" if websocket else "polling"))
    bid, _ = best(account, "SELL")  # the best bid: a buy there rests and fills when trades reach it
    rest = await gateway.make_order(request(platform, "live-lim-1", Side.BUY, OrderType.LIMIT, "0.001", str(bid)))
    far = await gateway.make_order(request(platform, "live-lim-2", Side.BUY, OrderType.LIMIT, "0.001", str(bid - 1000)))
    assert (rest.status, far.status) == ("open", "open")
    assert {o.client_order_id for o in gateway.open_orders(exchange="binance")} == {"live-lim-1", "live-lim-2"}

    filled = await trade_until_filled(account, "live-lim-1")
    ex = exchange_of(platform)
    await until(lambda: rest.id not in ex.open)  # the report stream (polling here) said it is done
    stored = await gateway.store.get_order(rest.id)
    deadline = time.monotonic() + 10
    while stored is not None and stored.status is not OrderStatus.DONE and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # the venue forgets the order first; its change set commits right after, in the group commit
        stored = await gateway.store.get_order(rest.id)
    assert stored is not None
    assert (stored.status, stored.filled_size) == (OrderStatus.DONE, ex.markets[SYMBOL].instrument.parse_size(str(filled)))
    (fill,) = await gateway.store.list_fills(order_id=rest.id)
    assert (fill.maker, fill.fee_currency, fill.ext_id) == (True, "BTC", str(account.trades[-1]["id"]))

    cancelled = await gateway.cancel_order(order_id=far.id, client_oid=None, exchange=None)
    assert (cancelled.status, cancelled.done_reason) == ("done", "cancelled")
    assert not [o for o in account.open_orders() if o["clientOrderId"] == "live-lim-2"]
    assert_ledger_is_the_account(platform, account)


async def test_a_venue_refusal_is_a_rejected_order_with_its_hold_released(platform: Platform, account: TradingBinance) -> None:
    gateway = platform.gateway
    account.fail("order", 400)
    with pytest.raises(CoinwireError) as refused:
        await gateway.make_order(request(platform, "live-refused", Side.BUY, OrderType.MARKET, "0.01"))
    assert refused.value.code == "exchange_bad_symbol" or refused.value.code
    stored = await gateway.store.get_order_by_client_oid("live-refused")
    assert stored is not None and (stored.status, stored.done_reason and stored.done_reason.value) == (OrderStatus.DONE, "rejected")
    assert gateway.ledger.holds() == {}
    assert_ledger_is_the_account(platform, account)
    too_big = request(platform, "live-too-big", Side.BUY, OrderType.LIMIT, "5", "30000")  # 150,000 USDT: more than the account
    def placements() -> int:  # a polling stream may still ask about the refused order meanwhile
        return sum(r == "POST /api/v3/order" for r in account.requests)

    asked = placements()
    with pytest.raises(CoinwireError) as unfunded:
        await gateway.make_order(too_big)
    assert unfunded.value.code == "insufficient_funds" and gateway.existing_order("live-too-big") is None
    assert await gateway.store.get_order_by_client_oid("live-too-big") is None
    assert placements() == asked  # refused before the venue was asked


async def test_a_restart_applies_what_the_venue_did_while_coinwire_was_down(
    tmp_path: Path, server: ServerRunner, account: TradingBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    first = Platform(live_settings(tmp_path, server))
    await first.start()
    await until(lambda: first.gateway.venues["binance"].status == "ready")
    bid, _ = best(account, "SELL")
    view = await first.gateway.make_order(request(first, "live-restart", Side.BUY, OrderType.LIMIT, "0.002", str(bid)))
    await first.stop()

    filled = await trade_until_filled(account, "live-restart")
    account.free["USDT"] += Decimal(50)  # a deposit made outside coinwire

    second = Platform(live_settings(tmp_path, server))
    await second.start()
    try:
        await until(lambda: second.gateway.venues["binance"].status == "ready")
        order = await second.gateway.store.get_order(view.id)
        assert order is not None and order.filled_size == exchange_of(second).markets[SYMBOL].instrument.parse_size(str(filled))
        assert_ledger_is_the_account(second, account)
    finally:
        await second.stop()


async def test_a_live_run_trades_its_wallet_set_at_the_venue_and_hands_it_back(
    platform: Platform, account: TradingBinance, tmp_path: Path
) -> None:
    from coinwire.engine.runs import RunStore
    from coinwire.services.paper_runs import PaperRuns
    from coinwire.services.runs import StartRequest

    strategy = str(Path(__file__).parent.parent / "engine" / "strategies" / "round_trip.py") + ":RoundTrip"
    runs = PaperRuns(platform.gateway, RunStore(tmp_path / "runs"))
    with pytest.raises(CoinwireError) as mismatch:
        await runs.start(strategy, StartRequest(mode="paper", balances={"binance:USDT": "1000"}))
    assert mismatch.value.code == "mode_mismatch"

    started = await runs.start(strategy, StartRequest(mode="live", balances={"binance:USDT": "1000"}))
    run_id = started["run_id"]
    assert run_id.startswith("lv-")
    runtime = runs.running[run_id].runtime
    for _ in range(300):  # the recording moves on: trades reach the mirrored book and the strategy
        account.advance(5)
        await asyncio.sleep(0.02)
        if getattr(runtime.strategy, "stage", "") == "done":
            break
    assert getattr(runtime.strategy, "stage", "") == "done", runtime.logs
    await runs.stop(run_id)

    record = RunStore(tmp_path / "runs").record(run_id)
    assert (record.mode, record.status) == ("live", "stopped")
    fills = await platform.gateway.store.list_fills()
    assert [f.side.value for f in reversed(fills)] == ["buy", "sell"]
    assert {f.ext_id for f in fills} == {str(t["id"]) for t in account.trades}
    assert all(f.run_id == run_id for f in fills)
    assert not platform.gateway.ledger.wallet_set(fills[0].wallet_set_id).active
    assert_ledger_is_the_account(platform, account)


async def test_cli_live_session_trades_the_configured_live_exchange(
    tmp_path: Path, server: ServerRunner, account: TradingBinance
) -> None:
    import json
    import os
    import signal
    import sys

    import msgspec

    settings = live_settings(tmp_path, server)
    config = tmp_path / "live.json"
    config.write_text(json.dumps(msgspec.to_builtins(settings.exchanges)))
    strategy = str(Path(__file__).parent.parent / "engine" / "strategies" / "round_trip.py") + ":RoundTrip"
    env = {**os.environ, **ENV, "COINWIRE_EXCHANGES": config.read_text()}
    args = [sys.executable, "-m", "coinwire.cli", "--data-dir", str(tmp_path), "run", strategy, "-m", "live",
            "--balance", "binance:USDT=1000", "--json"]
    refused = await asyncio.create_subprocess_exec(*args[:-1], "--data", str(tmp_path), env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    _, err = await refused.communicate()
    assert refused.returncode == 2 and b"invalid_params" in err

    process = await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while not account.requests and process.returncode is None and loop.time() < deadline:
            await asyncio.sleep(0.05)  # the session is up (its first request to the venue) before the recording moves on
        for _ in range(1500):  # the recording moves on until the strategy bought and sold at the venue
            account.advance(5)
            await asyncio.sleep(0.02)
            if len(account.trades) >= 2 or process.returncode is not None:
                break
        if process.returncode is not None:
            out, err = await process.communicate()
            raise AssertionError(f"the session ended early ({process.returncode}): {out.decode()[-2000:]} {err.decode()[-3000:]}")
        assert len(account.trades) >= 2, "the session never traded"
        await asyncio.sleep(0.3)
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()  # its pipes closed, not left to the garbage collector
    assert process.returncode == 0, err.decode()
    report = json.loads(out)
    assert (report["mode"], report["status"], len(report["trades"])) == ("live", "stopped", 2)


async def test_a_live_exchange_can_take_its_keys_from_a_users_vault_entry(
    tmp_path: Path, server: ServerRunner, account: TradingBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from coinwire.auth.repository import AuthRepository
    from coinwire.auth.vault import Credentials, MasterKeys, Vault
    from coinwire.store import Store

    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("COINWIRE_ADMIN_PASSWORD", "admin-password-for-tests")
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [{
        "name": "binance", "mode": "live", "feed": "ccxt", "symbols": [SYMBOL], "poll_interval": 0.05, "ccxt_websocket": False,
        "ccxt_urls": trading_urls(server), "ccxt_options": OPTIONS, "credentials_user": "alice"}]})
    store = Store(settings.resolved_store_url)
    await store.start()
    try:
        alice = await AuthRepository(store).add_user("alice", "not-a-login", "trader", "free", time.time_ns())
        await Vault(store, MasterKeys.load(settings.data_path, {})).put(alice, "binance", Credentials(api_key=API_KEY, secret=SECRET),
                                                                       time.time_ns())
    finally:
        await store.close()

    platform = Platform(settings)
    await platform.start()
    try:
        await until(lambda: platform.gateway.venues["binance"].status == "ready")
        assert_ledger_is_the_account(platform, account)  # the account was read with the vault's keys
        view = await platform.gateway.make_order(request(platform, "vault-1", Side.BUY, OrderType.MARKET, "0.001"))
        assert view.status == "done" and len(account.trades) == 1
    finally:
        await platform.stop()
    log = "\n".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".log", ".jsonl"))
    assert SECRET not in log
