"""Paper mode and the L2 backtest: one strategy file, the same fills through the gateway as in a backtest of the recording."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from coinwire.app import Platform
from coinwire.config import load_settings
from coinwire.core.errors import CoinwireError
from coinwire.core.orders import Order, OrderType, Side
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.paper import PaperRuntime
from coinwire.engine.runs import finish_backtest, prepare_any_backtest
from coinwire.engine.strategy import OrderTicket, Strategy, StrategyParams, parse_params
from coinwire.messages import OrderView
from coinwire.services.paper_runs import finish_paper
from coinwire.strategies.ma_cross import MaCross
from coinwire.strategies.registry import load_strategy
from tests.conftest import shared_data
from tests.engine.test_cli_run import coinwire

PROBE = str(Path(__file__).parent / "strategies" / "l2_probe.py") + ":L2Probe"
EXITS = str(Path(__file__).parent / "strategies" / "l2_exits.py") + ":L2Exits"
PERCENT_EXITS = str(Path(__file__).parent / "strategies" / "l2_exits.py") + ":L2PercentExits"
TRAILING_EXITS = str(Path(__file__).parent / "strategies" / "l2_exits.py") + ":L2TrailingExits"
FUNDS = {"USDT": "5000"}


def replay_settings(tmp_path: Path, paths: list[Path], funds: dict[str, str] = FUNDS) -> Any:
    exchange = {"name": "binance", "feed": "replay", "replay_paths": [str(p) for p in paths], "replay_speed": None,
                "replay_loop": False, "paper_funds": funds}
    return load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [exchange]})


async def paper_session(tmp_path: Path, strategy: type[Strategy], paths: list[Path], balances: dict[str, str] = FUNDS,
                        end: int | None = None, params: StrategyParams | None = None, rules: list[dict[str, Any]] | None = None
                        ) -> tuple[PaperRuntime, list[OrderView], dict[str, Any]]:
    """Replay the recording through a platform's gateway with a paper run attached before the first message."""
    platform = Platform(replay_settings(tmp_path, paths))
    await platform.start(feeds=False)
    try:
        run = PaperRuntime("pp-test", platform.gateway, {"binance": balances}, end=end, rules=rules or ())
        await run.open(strategy, params or {})
        (feed,) = platform.start_feeds()
        await feed
        await platform.gateway.caught_up(give_up=run.done)  # the gateway takes the rest of the recording
        run.request_stop("the recording ended")
        await run.run()
        orders = await platform.gateway.recent_orders(include_open=True, limit=10_000)
        wallets = {w.currency: w.balance for w in platform.gateway.ledger.wallets(None)}
        return run, [o for o in orders if o.run_id == run.run_id], wallets
    finally:
        await platform.stop()


def capture() -> list[Path]:
    folder = shared_data("binance-spot-l2")
    return sorted(folder.glob("*.gz"))


def trades(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(t["time"], t["side"], t["price"], t["size"], t["fee"]) for t in report["trades"]]


@pytest.mark.parametrize(("strategy", "name", "least"), [(PROBE, "l2_probe", 40), (EXITS, "l2_exits", 12),
                                                           (PERCENT_EXITS, "l2_percent_exits", 12),
                                                           (TRAILING_EXITS, "l2_trailing_exits", 8)],
                         ids=["plain", "exits", "percent-exits", "trailing-exits"])
async def test_one_strategy_file_paper_fills_match_the_l2_backtest(tmp_path: Path, strategy: str, name: str, least: int) -> None:
    """`exits`: brackets (stop-loss and take-profit), trailing stops and bid/ask stops fire at the same messages in both."""
    paths = capture()
    config = BacktestConfig(exchange="binance", balances=FUNDS, fee="0.001")
    prepared = prepare_any_backtest(load_strategy(strategy), {}, [str(shared_data("binance-spot-l2"))], config, tmp_path)
    backtest = finish_backtest(prepared)
    assert backtest.status == "finished" and backtest.report is not None
    assert backtest.report["fills_against"] == "book"

    run, orders, wallets = await paper_session(tmp_path, load_strategy(strategy), paths)
    paper = finish_paper(run, name, {})
    assert run.failure is None and run.error is None
    assert paper.report is not None
    # the same fills: time (market time), side, price, size and fee, in the same order
    assert len(backtest.report["trades"]) >= least
    assert trades(paper.report) == trades(backtest.report)
    if name != "l2_probe":  # every kind fired: a bracket's stop, a trailing stop or a bid/ask stop, in both runs alike
        kinds = {(t.type, t.trigger_state, t.status) for t in run.tickets.values()}
        stop = "trailing-stop" if name == "l2_trailing_exits" else "stop-market"  # the bracket's stop-loss fired
        assert {(stop, "triggered", "filled"), ("take-profit-market", "untriggered", "cancelled")} <= kinds
        assert any(kind[0] == "trailing-stop" for kind in kinds)
        seen, expected = states(run), states(prepared.runtime)
        assert seen[: len(expected)] == expected  # what on_order saw, in order
        assert len(expected) >= (15 if name == "l2_exits" else 12)
        if name == "l2_trailing_exits":  # an entry's trailing exit (not only the strategy's own trailing stops) fired
            assert any(t.type == "trailing-stop" and t.status == "filled" for t in run.tickets.values() if t.parent is not None)
        if name in ("l2_percent_exits", "l2_trailing_exits"):  # a lone stop-loss (no OCO) as well as pairs
            assert {len(t.exits) for t in run.tickets.values() if t.exits} == {1, 2}
        assert all(status == "cancelled" for _, status, _ in seen[len(expected) :])  # the paper run's end cancels what waits
    assert paper.report["final_equity_exact"] == backtest.report["final_equity_exact"]
    # and every paper order is the gateway's own: persisted with the run id, filled through its ledger
    assert len(orders) == backtest.report["orders"] == paper.report["orders"]
    assert sum(1 for o in orders if o.status == "done") == len(orders)  # the run's end cancelled what still rested
    filled = sum(float(o.filled_size) for o in orders)
    assert filled == pytest.approx(sum(float(t["size"]) for t in paper.report["trades"]))
    # the wallet set went back to unallocated when the run ended: the exchange holds what the run ended with
    assert str(wallets["USDT"] / 10**18)[:10] == str(run.balance_points[-1][1]["USDT"] / 10**18)[:10]


def _on_tick_half_up(price: Decimal, tick: Decimal) -> Decimal:
    return (price / tick).quantize(Decimal(1), ROUND_HALF_UP) * tick


async def test_ma_cross_exits_in_a_paper_run_sit_at_levels_from_the_entry_fill(tmp_path: Path) -> None:
    """`stop_loss=0.02` / `take_profit=0.03` through the gateway: each entry's children are that far from its average fill."""
    params = {"timeframe": "15s", "fast": "3", "slow": "8", "stop_loss": "0.02", "take_profit": "0.03"}
    run, orders, _ = await paper_session(tmp_path, MaCross, capture(), params=parse_params(MaCross, params))
    assert run.failure is None and run.error is None
    tick = Decimal("0.01")  # BTC/USDT's in the capture
    entries = [o for o in orders if o.bracket is not None and Decimal(o.filled_size) > 0]
    assert entries
    for entry in entries:
        assert entry.bracket is not None and entry.bracket.stop_loss is not None and entry.bracket.take_profit is not None
        assert (entry.bracket.stop_loss.percent, entry.bracket.take_profit.percent) == ("0.02", "0.03")
        fill = _on_tick_half_up(Decimal(entry.avg_price), tick)  # the entry's average fill price, on the tick
        children = {o.type: o for o in orders if o.parent_id == entry.id}
        assert set(children) == {"stop-market", "take-profit-market"}
        stop, take = children["stop-market"], children["take-profit-market"]
        assert Decimal(stop.stop_price or "0") == _on_tick_half_up(fill * Decimal("0.9998"), tick)
        assert Decimal(take.stop_price or "0") == _on_tick_half_up(fill * Decimal("1.0003"), tick)
        assert stop.oco_id == take.oco_id == take.id and stop.size == take.size == entry.filled_size


def states(runtime: Any) -> list[tuple[str, str, str | None]]:
    """The (order, status, trigger state) a strategy's on_order saw, its orders named without the run id."""
    return [(oid[oid.rindex("-") + 1 :], status, trigger) for oid, status, trigger in runtime._strategy.states]


def test_l2_backtest_is_deterministic_and_honours_start_and_end(tmp_path: Path) -> None:
    data = [str(shared_data("binance-spot-l2"))]
    config = BacktestConfig(exchange="binance", balances=FUNDS)
    first = finish_backtest(prepare_any_backtest(load_strategy(PROBE), {}, data, config, tmp_path))
    again = finish_backtest(prepare_any_backtest(load_strategy(PROBE), {}, data, config, tmp_path))
    assert json.dumps(first.report, sort_keys=True) == json.dumps(again.report, sort_keys=True)
    start = first.report["start"] + 120
    end = start + 240
    probe = load_strategy(PROBE)
    clipped = finish_backtest(prepare_any_backtest(probe, {}, data, BacktestConfig(exchange="binance", balances=FUNDS, start=start,
                                                                                  end=end), tmp_path))
    assert clipped.report is not None
    assert start <= clipped.report["start"] < start + 2 and clipped.report["end"] < end
    assert all(start <= t["time"] < end for t in clipped.report["trades"])
    assert clipped.run_id != first.run_id


def test_l2_backtest_refuses_candle_options_and_two_markets(tmp_path: Path) -> None:
    data = [str(shared_data("binance-spot-l2"))]
    with pytest.raises(CoinwireError) as refused:
        prepare_any_backtest(load_strategy(PROBE), {}, data, BacktestConfig(exchange="binance", balances=FUNDS, fill="close"), tmp_path)
    assert refused.value.code == "invalid_fill"
    both = data + [str(shared_data("binance-usdm-l2"))]
    with pytest.raises(CoinwireError) as two:
        prepare_any_backtest(load_strategy(PROBE), {}, both, BacktestConfig(exchange="binance", balances=FUNDS), tmp_path)
    assert two.value.code == "invalid_data" and "binanceusdm" in two.value.message


def test_cli_runs_an_l2_backtest_from_a_capture_folder(tmp_path: Path) -> None:
    out = coinwire(tmp_path, "run", PROBE, "--data", str(shared_data("binance-spot-l2")), "--balance", "binance:USDT=5000", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["fills_against"] == "book" and report["entries"] >= 1 and report["trades"]
    assert report["candles"] >= 10  # the report's 1-minute candles, built from the recorded trades


def test_cli_paper_replay_trades_as_the_cli_backtest_and_keeps_its_gateway_store(tmp_path: Path) -> None:
    data = str(shared_data("binance-spot-l2"))
    backtest = coinwire(tmp_path, "run", PROBE, "--data", data, "--balance", "binance:USDT=5000", "--json")
    paper = coinwire(tmp_path, "run", PROBE, "-m", "paper", "--data", data, "--balance", "binance:USDT=5000", "--json",
                     "--report", str(tmp_path / "paper.html"))
    assert backtest.returncode == 0 and paper.returncode == 0, paper.stderr
    bt, pp = json.loads(backtest.stdout), json.loads(paper.stdout)  # stdout is the report alone: logs go to stderr
    assert (pp["mode"], pp["status"]) == ("paper", "finished")
    assert trades(pp) == trades(bt) and len(trades(pp)) >= 40
    page = (tmp_path / "paper.html").read_text()
    assert "<h1>l2_probe paper</h1>" in page and page.count("<polyline") >= 2  # price with its fills, equity
    with sqlite3.connect(tmp_path / "runs" / pp["run_id"] / "gateway.db") as db:
        (orders,) = db.execute("select count(*) from orders where run_id = ?", (pp["run_id"],)).fetchone()
        (fills,) = db.execute("select count(*) from fills where run_id = ?", (pp["run_id"],)).fetchone()
    assert (orders, fills) == (bt["orders"], len(bt["trades"]))
    refused = coinwire(tmp_path, "run", PROBE, "-m", "paper", "--data", data, "--balance", "binance:USDT=5000", "--fill", "close")
    assert refused.returncode == 2 and "invalid_params" in refused.stderr


class CaptureGoneOnClose:
    """A feed of the test's own whose source fails as it is closed (its disk went away): the outside world failing at a stop."""

    async def close(self) -> None:
        raise OSError("the capture's disk is gone")


async def test_a_service_failing_to_close_still_leaves_every_order_and_fill_in_the_gateway_store(tmp_path: Path) -> None:
    """A close that raises before the gateway's must not leave the journal's tail unapplied when the process exits."""
    platform = Platform(replay_settings(tmp_path, capture()[:1]))
    await platform.start(feeds=False)
    run = PaperRuntime("pp-close", platform.gateway, {"binance": FUNDS})
    await run.open(load_strategy(PROBE), {})
    (feed,) = platform.start_feeds()
    await feed
    await platform.gateway.caught_up()
    run.request_stop()
    await run.run()
    journal = platform.store.journal
    assert journal is not None and run.fills
    platform.feeds.append(CaptureGoneOnClose())
    with pytest.raises(OSError, match="disk is gone"):
        await platform.stop()  # every other service, the gateway and the store closed all the same
    assert platform.store.journal is None and not list(journal.directory.glob("*.cwj"))  # all applied, then removed
    with sqlite3.connect(tmp_path / "coinwire.db") as db:
        (orders,) = db.execute("select count(*) from orders where run_id = ?", ("pp-close",)).fetchone()
        (fills,) = db.execute("select count(*) from fills where run_id = ?", ("pp-close",)).fetchone()
    assert (orders, fills) == (len({fill.order_id for fill in run.fills} | set(run.ticket_of)), len(run.fills))


class Raises(Strategy):
    symbol = "BTC/USDT"

    def on_start(self) -> None:
        self.subscribe_trades(self.symbol, self.trade)
        self.seen = 0

    def trade(self, trade: dict[str, Any]) -> None:
        self.seen += 1
        if self.seen == 50:
            raise RuntimeError("boom at the 50th trade")


async def test_a_raising_strategy_fails_its_paper_run_and_the_gateway_goes_on(tmp_path: Path) -> None:
    paths = capture()
    platform = Platform(replay_settings(tmp_path, paths))
    await platform.start(feeds=False)
    try:
        failing = PaperRuntime("pp-fails", platform.gateway, {"binance": {"USDT": "1000"}})
        await failing.open(Raises, {})
        healthy = PaperRuntime("pp-healthy", platform.gateway, {"binance": {"USDT": "1000"}})
        await healthy.open(load_strategy(PROBE), {})
        (feed,) = platform.start_feeds()
        await asyncio.wait_for(failing.done.wait(), 60)
        await failing.run()
        assert failing.failure is not None and "boom at the 50th trade" in failing.failure.traceback
        assert failing not in platform.gateway.listeners
        await feed
        await platform.gateway.caught_up()
        healthy.request_stop()
        await healthy.run()
        assert healthy.failure is None and len(healthy.fills) >= 40  # the other run traded through the whole recording
        outcome = finish_paper(failing, "raises", {})
        assert outcome.status == "failed" and "boom" in (outcome.error or "")
        # its wallet set was handed back: all 1,000 USDT are unallocated again
        platform_account = platform.gateway.accounts.own(None, "binance")
        assert platform_account is not None
        assert platform.gateway.ledger.wallet("binance", "USDT", None, platform_account.id).balance >= 1000 * 10**18
    finally:
        await platform.stop()


async def test_paper_run_refuses_funds_the_exchange_does_not_have(tmp_path: Path) -> None:
    platform = Platform(replay_settings(tmp_path, capture()))
    await platform.start(feeds=False)
    try:
        (feed,) = platform.start_feeds()
        await feed
        with pytest.raises(CoinwireError) as unknown:
            PaperRuntime("pp-x", platform.gateway, {"kraken": {"USDT": "10"}})
        assert unknown.value.code == "unknown_exchange"
        too_much = PaperRuntime("pp-y", platform.gateway, {"binance": {"USDT": "1000000"}})
        with pytest.raises(CoinwireError) as refused:
            await too_much.open(load_strategy(PROBE), {})
        assert refused.value.code == "insufficient_funds"
        assert too_much not in platform.gateway.listeners
    finally:
        await platform.stop()


async def test_a_users_order_under_one_of_a_paper_runs_client_oids_is_not_taken_for_the_runs(tmp_path: Path) -> None:
    """client_oids are unique per owner: a user's order may share one with a run's ticket, and stays the user's."""
    platform = Platform(replay_settings(tmp_path, capture()))
    await platform.start(feeds=False)
    try:
        (feed,) = platform.start_feeds()
        await feed
        await platform.gateway.caught_up()
        run = PaperRuntime("pp-oid", platform.gateway, {"binance": {"USDT": "100"}})
        await run.open(load_strategy(PROBE), {})
        symbol = next(iter(run.venue_markets))
        ticket = OrderTicket("pp-oid-ticket-1", symbol, "buy")
        run.tickets[ticket.client_oid] = ticket
        theirs = Order(id=10**9, client_oid=ticket.client_oid, exchange="binance", symbol=symbol, side=Side.BUY,
                       type=OrderType.LIMIT, size=1, limit=1, wallet_set_id=run.wallet_set_id, owner_id=7)
        run.on_execution([theirs], [])
        assert ticket.order_id is None and theirs.id not in run.ticket_of
        run.request_stop()
        await run.run()
    finally:
        await platform.stop()
