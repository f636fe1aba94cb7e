"""Perpetual backtests on the recorded Binance USD-M XRP data: funding, gaps, liquidation, the strategy API and the report."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import CoinwireError
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.margin import order_margin
from coinwire.core.matching import MatchingEngine
from coinwire.core.orders import OrderType, Side
from coinwire.core.positions import MarginMode
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.order_args import leveraged_size
from coinwire.engine.runs import finish_backtest, prepare_any_backtest
from coinwire.engine.runtime import StrategyFailed
from coinwire.engine.strategy import PositionView, Strategy, parse_params
from coinwire.history.futures import load_futures
from coinwire.strategies.ma_cross import MaCross
from coinwire.venues.brackets import perpetual_fields
from tests.conftest import shared_data

XRP = "XRP/USDT:USDT"
NS = 1_000_000_000


def futures_dir() -> Path:
    return shared_data("binance-usdm-futures")


def config(balance: str = "10000", **kw: Any) -> BacktestConfig:
    return BacktestConfig(**{"exchange": "binance", "balances": {"USDT": balance}, "fee": "0.0005", **kw})


def run(cls: type[Strategy], params: dict[str, Any], data: list[str], cfg: BacktestConfig, tmp_path: Path) -> Any:
    prepared = prepare_any_backtest(cls, params, data, cfg, tmp_path)
    outcome = finish_backtest(prepared)
    return outcome, prepared.runtime


class LongAt(Strategy):
    """Goes long with `leverage` at the open after the candle closing at `at` (unix seconds), and holds."""

    symbol = XRP
    timeframe = "1h"
    at = 0
    leverage = 50

    def on_start(self) -> None:
        self.set_leverage(self.symbol, self.leverage)
        self.seen: list[PositionView] = []
        self.subscribe_candles(self.symbol, self.timeframe, self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        if candle["time"] + 3600 == self.at:
            self.buy(self.symbol)
        self.seen.append(self.position(self.symbol))


class ShortSpot(Strategy):
    symbol = "BTC/USDT"
    timeframe = "1h"

    def on_start(self) -> None:
        self.short(self.symbol)


def test_short_on_spot_is_refused_and_position_stays_a_number(tmp_path: Path) -> None:
    data = shared_data("binance-spot-1h")
    outcome, rt = run(ShortSpot, {}, [str(data)], config(), tmp_path)
    assert outcome.status == "failed"
    assert "cannot be shorted" in (outcome.error or "")
    view = rt.position("BTC/USDT", None)
    assert isinstance(view, Decimal) and view == 0 and view.side == "flat"


def test_ma_cross_refuses_long_short_on_spot(tmp_path: Path) -> None:
    data = shared_data("binance-spot-1h")
    outcome, _ = run(MaCross, {"long_only": "false", "timeframe": "1h", "fast": "5", "slow": "20"}, [str(data)], config(), tmp_path)
    assert outcome.status == "failed" and "cannot be shorted" in (outcome.error or "")


def test_leverage_above_the_bracket_is_refused(tmp_path: Path) -> None:
    outcome, _ = run(LongAt, {"leverage": "100", "at": "0"}, [str(futures_dir())], config(), tmp_path)
    assert outcome.status == "failed" and "leverage" in (outcome.error or ""), outcome.error


def test_funding_applied_from_the_series_and_gaps_reported(tmp_path: Path) -> None:
    """A 1x long held from the first candle pays every recorded funding time inside the run, none at the gap."""
    data = load_futures(futures_dir(), XRP, "1h")
    start = int(data.candles.time[0])
    outcome, _ = run(LongAt, {"leverage": "1", "at": str(start + 3600)}, [str(futures_dir())], config(), tmp_path)
    assert outcome.status == "finished", outcome.error
    rep = outcome.report
    end_ns = (int(data.candles.time[-1]) + 3600) * NS
    fill_ns = (start + 3600) * NS
    due = [f for f in data.funding if fill_ns < f.ts < end_ns]
    assert len(due) == rep["funding_events"] > 0
    # the position pays size x mark x rate at each (rate > 0: a long pays): the mark candle ending then, or the trade
    # candle's close where the recorded mark file (which ends before the trades) does not reach
    size = Decimal(rep["trades"][0]["size"])
    mark = data.mark_candles
    assert mark is not None
    closes = {int(t) + 3600: float(c) for t, c in zip(data.candles.time, data.candles.close, strict=True)}
    closes.update({int(t) + 3600: float(c) for t, c in zip(mark.time, mark.close, strict=True)})
    expected = Decimal(0)
    for f in due:
        expected -= size * Decimal(repr(closes[f.ts // NS])) * Decimal(f.rate) / Decimal(10**8)
    assert Decimal(rep["funding_total"]) == pytest.approx(expected, abs=Decimal("1e-12"))
    assert Decimal(rep["funding_paid"]) == -Decimal(rep["funding_total"]) and Decimal(rep["funding_received"]) == 0
    assert [e["position_side"] for e in rep["funding"]] == ["both"] * len(due)
    # the data's gap (two funding times without a rate) is stated, inside the run's span
    gaps = rep["funding_gaps"][XRP]
    assert gaps == [[a // NS, b // NS] for a, b in data.gaps]
    assert rep["trades"][0]["position_side"] == "both"
    assert rep["long_exposure"] > 0.9 and rep["short_exposure"] == 0
    assert 0.99 < rep["max_leverage_used"] < 1.01
    json.dumps(rep)


def _first_drop(data: Any, leverage: int) -> tuple[int, float]:
    """The first candle open from which the mark later falls far enough to liquidate a `leverage` long (unix s, open)."""
    mark = data.mark_candles
    for k in range(1, data.candles.time.size - 1):
        entry = float(data.candles.open[k])
        if float(np.min(mark.low[k:])) < entry * (1 - 1.0 / leverage):
            return int(data.candles.time[k]), entry
    raise AssertionError("no drop deep enough in the recorded data")


def test_a_50x_long_through_a_drop_is_liquidated_at_the_documented_price(tmp_path: Path) -> None:
    data = load_futures(futures_dir(), XRP, "1h")
    at, _ = _first_drop(data, 50)
    outcome, rt = run(LongAt, {"leverage": "50", "at": str(at)}, [str(futures_dir())], config(balance="100"), tmp_path)
    assert outcome.status == "finished", outcome.error
    rep = outcome.report
    assert rep["liquidation_count"] == 1
    event = rep["liquidations"][0]
    assert event["side"] == "long" and event["position_side"] == "both"
    # the documented price: Binance's cross one-way formula on the position as it was (balance 100 less the entry fee)
    entry = rep["trades"][0]
    size, price, fee = Decimal(entry["size"]), Decimal(entry["price"]), Decimal(entry["fee"])
    wallet = Decimal(100) - fee
    mmr = Decimal("0.005")
    lp = (wallet - size * price) / (size * mmr - size)
    mark = data.mark_candles
    k = next(i for i in range(mark.time.size) if mark.time[i] >= at and Decimal(repr(float(mark.low[i]))) <= lp)
    assert event["time"] == max(int(mark.time[k]), at)
    # it was liquidated the first time the mark's worst price reached it, and never before
    assert all(Decimal(repr(float(mark.low[i]))) > lp for i in range(mark.time.size) if at <= mark.time[i] < mark.time[k])
    assert Decimal(event["clearance_fee"]) >= 0
    liq_orders = [o for o in rt.orders.values() if o.type is OrderType.LIQUIDATION]
    assert len(liq_orders) == 1
    assert Decimal(rep["final_equity_exact"]) >= 0  # no balance below zero without the liquidation having happened
    assert rt.position(XRP, None).side == "flat"


def test_position_view_in_the_run(tmp_path: Path) -> None:
    data = load_futures(futures_dir(), XRP, "1h")
    start = int(data.candles.time[0])
    outcome, rt = run(LongAt, {"leverage": "3", "at": str(start + 3600)}, [str(futures_dir())], config(), tmp_path)
    views = rt._strategy.seen
    assert views[0].side == "flat" and views[0] == 0 and views[0].leverage == 3
    held = views[-1]
    assert held.side == "long" and held > 0 and held.size == held and held.leverage == 3
    assert held.entry == Decimal(outcome.report["trades"][0]["price"])
    assert held.liquidation_price is not None and 0 < held.liquidation_price < held.entry
    assert held.margin_mode == MarginMode.CROSS.value


class L2Perp(Strategy):
    """Opens a 10x long on the first trade after `after` seconds of the recording, then closes it `hold` seconds later."""

    symbol = "BTC/USDT:USDT"
    leverage = 10
    after = 30
    hold = 60

    def on_start(self) -> None:
        self.set_leverage(self.symbol, self.leverage)
        self.views: list[PositionView] = []
        self.opened = self.closed = False
        self.t0 = self.time
        self.subscribe_trades(self.symbol, self.trade)

    def trade(self, trade: dict[str, Any]) -> None:
        if not self.opened and self.time - self.t0 >= self.after:
            self.opened = True
            self.t_open = self.time
            self.buy(self.symbol)
        elif self.opened and not self.closed:
            view = self.position(self.symbol)
            if view.side == "long":
                self.views.append(view)
            if self.time - self.t_open >= self.hold:
                self.closed = True
                self.close(self.symbol)


def test_l2_backtest_of_the_usdm_capture_trades_the_perpetual(tmp_path: Path) -> None:
    data = shared_data("binance-usdm-l2")
    cfg = BacktestConfig(exchange="binanceusdm", balances={"USDT": "1000"}, fee="0.0005")
    prepared = prepare_any_backtest(L2Perp, {}, [str(data)], cfg, tmp_path)
    rt = prepared.runtime
    assert rt.market.instrument.is_perpetual and rt.market.instrument.symbol == "BTC/USDT:USDT"
    outcome = finish_backtest(prepared)
    assert outcome.status == "finished", outcome.error
    rep = outcome.report
    trades = rep["trades"]
    assert [t["side"] for t in trades][:1] == ["buy"] and trades[-1]["side"] == "sell"
    assert all(t["position_side"] == "both" for t in trades)
    opened = sum(Decimal(t["size"]) for t in trades if t["side"] == "buy")
    closed = sum(Decimal(t["size"]) for t in trades if t["side"] == "sell")
    assert opened == closed > 0  # the close was reduce-only for the whole position
    # leverage x available margin at the fill price, fee included: the notional is just under 10 x 1000 / (1 + 10 x fee)
    notional = sum(Decimal(t["price"]) * Decimal(t["size"]) for t in trades if t["side"] == "buy")
    assert Decimal("9000") < notional <= Decimal(10_000) / (1 + 10 * Decimal("0.0005"))
    views = prepared.runtime._strategy.views
    assert views and len({v.upnl for v in views}) > 1  # live uPnL at the median-rule mark as the book moves
    assert all(v.liquidation_price is not None and v.liquidation_price < v.entry for v in views)
    # the capture has no funding rates: every funding time inside it is a gap, none is paid
    assert rep["funding_events"] == 0 and Decimal(rep["funding_total"]) == 0
    assert rt.position("BTC/USDT:USDT", None).side == "flat"


def _sma(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for i in range(n - 1, len(x)):
        out[i] = float(np.sum(x[i - n + 1 : i + 1])) / n
    return out


def test_ma_cross_long_short_with_leverage_equals_the_float_reference(tmp_path: Path) -> None:
    """The acceptance run: ma_cross long/short at 3x on the recorded XRP perpetual, funding applied, against the independent
    float account of tests/core/perp_reference.py driven by this test's own crossing loop (not coinwire's strategy code)."""
    from tests.core.perp_reference import Account, binance_clearance_fee, binance_tiers, max_open_size

    fast, slow, leverage, fee = 5, 20, 3, 0.0005
    params = {"symbol": XRP, "timeframe": "1h", "fast": str(fast), "slow": str(slow), "long_only": "false",
              "leverage": str(leverage)}
    outcome, rt = run(MaCross, params, [str(futures_dir())], config(fee=str(fee)), tmp_path)
    assert outcome.status == "finished", outcome.error
    rep = outcome.report
    inst = rt.markets[XRP].instrument
    step = inst.step / 10**inst.size_decimals

    data = load_futures(futures_dir(), XRP, "1h")
    candles, mark = data.candles, data.mark_candles
    assert mark is not None
    hour = 3600
    o, c, t = candles.open, candles.close, candles.time.astype(np.int64)
    # the mark at an instant: the mark candle ending then; where the mark file does not reach, the trade candle's close
    mark_close_at = dict(zip((t + hour).tolist(), c.tolist(), strict=True))
    mark_close_at.update(zip((mark.time + hour).tolist(), mark.close.tolist(), strict=True))
    assert mark.time[-1] < t[-1]  # the recorded mark file ends before the trades: both rules are exercised
    end = int(t[-1]) + hour
    funding = [(f.ts // NS, f.rate / 1e8) for f in data.funding if t[0] <= f.ts // NS < end]

    acct = Account(wallet=10_000.0, tiers=binance_tiers("XRPUSDT"), fee=fee, clearance_fee=binance_clearance_fee("XRPUSDT"),
                   leverage=leverage)
    trades: list[tuple[int, str, float, float]] = []
    pending = list(funding)

    def fund_until(ts: int) -> None:
        while pending and pending[0][0] <= ts:
            at, rate = pending.pop(0)
            acct.settle_funding(mark_close_at[at], rate)

    f, s = _sma(c, fast), _sma(c, slow)
    last: str | None = None
    for i in range(1, len(c) - 1):
        if np.isnan(s[i - 1]):
            continue
        up = f[i] > s[i] and f[i - 1] <= s[i - 1]
        down = f[i] < s[i] and f[i - 1] >= s[i - 1]
        want = "buy" if up else "sell" if down else None
        if want is None or want == last:
            continue
        last = want
        at = int(t[i + 1])  # the next candle's open: funding due at that instant is paid first
        fund_until(at)
        price, now_mark = float(o[i + 1]), mark_close_at[at]
        leg = acct.leg("both")
        if leg is not None:
            trades.append((at, "sell" if leg.side > 0 else "buy", leg.size, price))
            acct.close(price)
        # the venue counts the initial margin at the higher of the fill price and the mark
        size = max_open_size(max(price, now_mark), acct.available(now_mark), leverage, fee, step)
        trades.append((at, want, size, price))
        acct.trade(want == "buy", size, price)
    fund_until(end - 1)

    got = [(tr["time"], tr["side"], float(tr["size"]), float(tr["price"])) for tr in rep["trades"]]
    assert len(got) == len(trades) >= 4
    assert {tr["side"] for tr in rep["trades"]} == {"buy", "sell"} and rep["entries"] >= 2
    for (gt, gside, gsize, gprice), (et, eside, esize, eprice) in zip(got, trades, strict=True):
        assert (gt, gside, gprice) == (et, eside, eprice)
        assert gsize == pytest.approx(esize, rel=1e-9)
    assert all(tr["position_side"] == "both" for tr in rep["trades"])
    assert rep["funding_events"] > 0 and acct.liquidations == rep["liquidation_count"] == 0
    assert float(rep["funding_total"]) == pytest.approx(acct.funding_total, rel=1e-9)
    assert rep["final_equity"] == pytest.approx(acct.equity(float(c[-1])), rel=1e-9)
    assert rep["long_exposure"] > 0 and rep["short_exposure"] > 0
    assert 2.9 < rep["max_leverage_used"] < 3.5  # opened at 3x; a loss since raises the effective leverage a little


# --- sizing: leverage x available margin at the fill price, fee included ------------------------------------------------
_PERP = Instrument(exchange="binance", symbol=XRP, base="XRP", quote="USDT", price_decimals=5, size_decimals=12, maker_fee=50_000,
                   taker_fee=50_000, kind="perpetual", settle="USDT", brackets=perpetual_fields("binance", XRP)["brackets"])  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(price=st.integers(50_000, 300_000), mark_off=st.integers(-2_000, 2_000), available=st.integers(1, 10**23),
       leverage=st.integers(1, 75), depth=st.integers(1, 10**18), buy=st.booleans())
def test_leveraged_size_fits_the_margin_and_one_step_more_does_not(price: int, mark_off: int, available: int, leverage: int,
                                                                   depth: int, buy: bool) -> None:
    engine = MatchingEngine(_PERP, IdSequence())
    level = [(price, depth)]
    engine.on_snapshot(level if not buy else [], level if buy else [], 0)
    mark = max(1, price + mark_off)
    side = Side.BUY if buy else Side.SELL
    size = leveraged_size(engine, side, available, leverage, mark)
    at = max(price, mark)  # the venue's margin check counts the higher of the fill price and the mark
    assert 0 <= size <= depth and size % _PERP.step == 0
    assert order_margin(_PERP, at, size, leverage) <= available
    if size + _PERP.step <= depth:  # not cut by the level's depth: the next step would not fit
        assert order_margin(_PERP, at, size + _PERP.step, leverage) > available


# --- bad input: stable codes, nothing half-done ---------------------------------------------------------------------------
class Misuse(Strategy):
    symbol = XRP
    timeframe = "1h"
    what = ""

    def on_start(self) -> None:
        if self.what == "leverage_zero":
            self.set_leverage(self.symbol, 0)
        elif self.what == "leverage_spot":
            self.set_leverage("BTC/USDT", 2)
        elif self.what == "reduce_only_spot":
            self.order("sell", "BTC/USDT", size="1", reduce_only=True)
        elif self.what == "stop_on_perp":
            self.sell(self.symbol, size="10", stop_price="1.0")
        elif self.what == "close_flat":
            assert self.close(self.symbol) is None
            assert self.position(self.symbol).side == "flat" and self.is_perpetual(self.symbol)
            assert not self.is_perpetual("BTC/USDT")


@pytest.mark.parametrize(("what", "code"), [("leverage_zero", "invalid_leverage"), ("leverage_spot", "not_a_perpetual"),
                                             ("reduce_only_spot", "invalid_params"), ("stop_on_perp", "not_supported")])
def test_misuse_is_refused_with_a_stable_code(what: str, code: str, tmp_path: Path) -> None:
    spot = what.endswith("_spot")
    data = shared_data("binance-spot-1h") if spot else futures_dir()
    params = {"what": what, **({"symbol": "BTC/USDT"} if spot else {})}
    rt = prepare_any_backtest(Misuse, params, [str(data)], config(), tmp_path).runtime
    with pytest.raises(StrategyFailed) as failed:
        rt.run(Misuse, parse_params(Misuse, params))
    assert isinstance(failed.value.error, CoinwireError) and failed.value.error.code == code
    assert rt.fills == [] and not rt.ledger.positions.has_open(0, "binance")


def test_close_when_flat_is_nothing(tmp_path: Path) -> None:
    outcome, rt = run(Misuse, {"what": "close_flat"}, [str(futures_dir())], config(), tmp_path)
    assert outcome.status == "finished", outcome.error
    assert rt.tickets == {}
