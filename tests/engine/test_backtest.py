"""Backtest runtime: fills, funds, look-ahead, determinism, failures, against hand-checkable references."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import pytest

from coinwire.core.errors import InvalidInput, NotFound
from coinwire.engine.backtest import BacktestConfig, BacktestRuntime, Series
from coinwire.engine.report import build_report
from coinwire.engine.runs import run_backtest
from coinwire.engine.runtime import StrategyFailed
from coinwire.engine.strategy import Strategy, parse_params
from coinwire.strategies.ma_cross import MaCross
from coinwire.strategies.registry import load_strategy
from tests.conftest import shared_data

H = 3600


def series(closes: list[float], opens: list[float] | None = None, lows: list[float] | None = None,
           highs: list[float] | None = None, volume: float = 1000.0, symbol: str = "BTC/USDT", tf: str = "1h") -> Series:
    c = np.array(closes, dtype=float)
    o = np.array(opens if opens is not None else [closes[0], *closes[:-1]], dtype=float)
    lo = np.array(lows, dtype=float) if lows is not None else np.minimum(o, c)
    hi = np.array(highs, dtype=float) if highs is not None else np.maximum(o, c)
    t = np.arange(len(c), dtype=np.int64) * H + 1_600_000_000 // H * H
    return Series(symbol, tf, t, o, hi, lo, c, np.full(len(c), volume))


def config(**kw: Any) -> BacktestConfig:
    return BacktestConfig(**{"exchange": "binance", "balances": {"USDT": "10000"}, "fee": "0.001", **kw})


def reference_ma_cross(o: np.ndarray, c: np.ndarray, fast: int, slow: int, fee: float, fill: str) -> tuple[int, float]:
    """An independent loop of the issue's semantics (float arithmetic)."""
    def sma(x: np.ndarray, n: int) -> np.ndarray:
        out = np.full(len(x), np.nan)
        for i in range(n - 1, len(x)):
            out[i] = math.fsum(x[i - n + 1 : i + 1]) / n
        return out

    f, s = sma(c, fast), sma(c, slow)
    cash, pos, entries, last = 10_000.0, 0.0, 0, None
    for i in range(1, len(c)):
        if np.isnan(s[i - 1]):
            continue
        up = f[i] > s[i] and f[i - 1] <= s[i - 1]
        down = f[i] < s[i] and f[i - 1] >= s[i - 1]
        if fill == "open" and i + 1 >= len(c):
            break
        price = o[i + 1] if fill == "open" else c[i]
        if up and last != "buy":
            last, size = "buy", cash / (price * (1 + fee))
            cash, pos, entries = cash - size * price * (1 + fee), size, entries + 1
        elif down and last == "buy":
            last, cash, pos = "sell", cash + pos * price * (1 - fee), 0.0
    return entries, cash + pos * c[-1]


def walk(n: int, seed: int) -> Series:
    rng = np.random.default_rng(seed)
    closes = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 0.004, n))), 2)
    return series(list(closes), volume=1e6)


@pytest.mark.parametrize("fill", ["open", "close"])
def test_ma_cross_matches_an_independent_reference(fill: str) -> None:
    s = walk(6_000, seed=7)
    outcome, rt = run_backtest(load_strategy("ma_cross"), {"fast": "10", "slow": "40", "timeframe": "1h"}, [s], config(fill=fill))
    entries, final = reference_ma_cross(s.open, s.close, 10, 40, 0.001, fill)
    assert outcome.status == "finished"
    assert entries > 20
    assert outcome.report["entries"] == entries
    assert outcome.report["final_equity"] == pytest.approx(final, rel=1e-9)
    rt.ledger.check()


def test_ma_cross_on_real_binance_5m_candles() -> None:
    rows = np.array(json.loads((shared_data() / "binance-spot-5m" / "BTC_USDT-5m.json").read_bytes()), dtype=float)
    s = Series("BTC/USDT", "5m", (rows[:, 0] // 1000).astype(np.int64), *(rows[:, k] for k in range(1, 6)))
    outcome, _ = run_backtest(load_strategy("ma_cross"), {}, [s], config())
    entries, final = reference_ma_cross(s.open, s.close, 50, 200, 0.001, "open")
    assert (outcome.report["entries"], outcome.report["exits"]) == (entries, entries - 1)
    assert outcome.report["final_equity"] == pytest.approx(final, rel=1e-9)


def test_same_inputs_give_byte_identical_reports() -> None:
    s = walk(3_000, seed=3)
    ma_cross = load_strategy("ma_cross")
    reports = [msgspec.json.encode(run_backtest(ma_cross, {"fast": "5", "slow": "20", "timeframe": "1h"}, [s], config())[0].report)
               for _ in range(2)]
    assert reports[0] == reports[1]


class Peeker(Strategy):
    """Records, at every callback, the newest data it can see, and tries to read the future."""

    def on_start(self) -> None:
        self.seen: list[tuple[int, int, int, int]] = []
        self.ind = self.indicator("sma", "BTC/USDT", "1h", 3)
        self.subscribe_candles("BTC/USDT", "1h", self.candle)
        self.subscribe_candles("BTC/USDT", "4h", self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        c = self.candles("BTC/USDT", "1h")
        c4 = self.candles("BTC/USDT", "4h")
        self.seen.append((self.time, int(c["time"][-1]) + H, int(c4["time"][-1]) + 4 * H if len(c4["time"]) else 0, len(self.ind.values)))
        assert c["close"][-1] == candle["close"] or candle["timeframe"] == "4h"
        with pytest.raises(IndexError):
            self.ind[0]  # only backwards from the newest closed value
        with pytest.raises(ValueError):
            c["close"][0] = 1.0  # read-only


def test_a_strategy_sees_only_closed_candles_up_to_the_clock() -> None:
    s = walk(200, seed=1)
    rt = BacktestRuntime("look", [s], config())
    strategy = rt.run(Peeker, {})
    assert len(strategy.seen) == 200 + 50  # every 1h candle and every complete 4h bucket
    for now, newest_1h_close, newest_4h_close, ind_len in strategy.seen:
        assert newest_1h_close <= now and newest_4h_close <= now
        assert newest_1h_close == now or newest_4h_close == now
        assert ind_len == (now - int(s.time_ns[0] // 10**9)) // H


class LimitBuyer(Strategy):
    def on_start(self) -> None:
        self.done = False
        self.subscribe_candles("BTC/USDT", "1h", self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        if not self.done:
            self.done = True
            self.ticket = self.buy("BTC/USDT", size="0.1", limit="95")


def test_a_resting_limit_fills_at_its_limit_on_the_first_candle_reaching_it() -> None:
    closes = [100, 101, 99, 97, 96, 94, 98]
    lows = [99, 100, 98, 96, 95.5, 93, 97]
    s = series(closes, lows=lows)
    rt = BacktestRuntime("lim", [s], config())
    strategy = rt.run(LimitBuyer, {})
    assert strategy.ticket.status == "filled"
    (fill,) = rt.fills
    inst = rt.markets["BTC/USDT"].instrument
    assert (inst.price_str(fill.price), inst.size_str(fill.size)) == ("95", "0.1")
    assert fill.ts == int(s.time_ns[5])  # the candle whose low (93) first reaches 95
    assert fill.fee == inst.fee_atto(fill.notional, maker=True)
    assert strategy.balance("BTC") == Decimal("0.1")
    rt.ledger.check()


class AllIn(Strategy):
    def on_start(self) -> None:
        self.subscribe_candles("BTC/USDT", "1h", self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        if not self.open_orders and self.balance("BTC") == 0:
            self.buy("BTC/USDT")


def test_volume_bounds_what_a_candle_can_fill() -> None:
    s = series([100.0] * 6, volume=10.0)  # 10 BTC per candle, 10,000 USDT would buy ~99.9 BTC
    rt = BacktestRuntime("vol", [s], config())
    rt.run(AllIn, {})
    first = rt.fills[0]
    assert first.size == 10 * 10**12
    assert sum(f.size for f in rt.fills if f.ts == first.ts) <= 10 * 10**12


def test_unlimited_liquidity_spends_everything_and_never_overdraws() -> None:
    s = series([100.0, 100.0, 100.0], volume=10.0)
    rt = BacktestRuntime("unl", [s], config(liquidity="unlimited"))
    rt.run(AllIn, {})
    usdt = rt.ledger.wallet("binance", "USDT", rt.wallet_set_id)
    assert 0 <= usdt.balance < 10**16  # less than a cent of USDT left
    rt.ledger.check()


class Boom(Strategy):
    def on_start(self) -> None:
        self.subscribe_candles("BTC/USDT", "1h", self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        raise ZeroDivisionError("strategy bug")


def test_a_raising_strategy_fails_its_run_with_the_traceback_in_the_log() -> None:
    outcome, rt = run_backtest(load_strategy(f"{__file__}:Boom"), {}, [series([1.0, 2.0, 3.0])], config())
    assert outcome.status == "failed"
    assert "ZeroDivisionError: strategy bug" in (outcome.traceback or "")
    assert any("strategy bug" in message for _, level, message in rt.logs if level == "error")


def test_bad_parameters_are_named() -> None:
    with pytest.raises(InvalidInput, match="did you mean 'fast'") as exc:
        parse_params(MaCross, {"fats": "10"})
    assert exc.value.code == "unknown_parameter"
    with pytest.raises(InvalidInput) as exc:
        parse_params(MaCross, {"fast": "ten"})
    assert exc.value.code == "invalid_parameter"
    with pytest.raises(NotFound) as nf:
        run_backtest(load_strategy("no_such_strategy"), {}, [series([1.0, 2.0])], config())
    assert nf.value.code == "strategy_not_found"


def test_ranges_outside_the_history_and_empty_ranges_are_refused() -> None:
    s = series([1.0, 2.0, 3.0])
    with pytest.raises(InvalidInput) as exc:
        BacktestRuntime("x", [s], config(start=2_000_000_000))
    assert exc.value.code == "history_missing"
    with pytest.raises(InvalidInput) as exc:
        config(start=10, end=10)
    assert exc.value.code == "empty_range"


class Spender(Strategy):
    def on_start(self) -> None:
        self.subscribe_candles("BTC/USDT", "1h", self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        if not hasattr(self, "ticket"):
            self.ticket = self.buy("BTC/USDT", size="1000")  # 100,000 USDT at 100: more than the set holds


def test_an_order_the_wallet_set_cannot_cover_is_rejected_and_nothing_moves() -> None:
    rt = BacktestRuntime("poor", [series([100.0] * 4, volume=1e6)], config())
    strategy = rt.run(Spender, {})
    assert strategy.ticket.status == "rejected"
    assert "insufficient_funds" in (strategy.ticket.error or "")
    assert rt.fills == [] and strategy.balance("USDT") == Decimal(10000)


class Named(Strategy):
    def on_start(self) -> None:
        self.log(f"exchanges {self.exchanges}, fee {self.fee('BTC/USDT', exchange='binance')}")
        self.subscribe_candles("BTC/USDT", "1h", self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        if not self.balance("BTC", "binance"):
            if not self.open_orders:
                self.buy("BTC/USDT", size="1", exchange="binance")
            return
        self.buy("BTC/USDT", size="1", exchange="kraken")


def test_a_backtest_trades_its_one_exchange_by_name_and_refuses_any_other() -> None:
    rt = BacktestRuntime("named", [series([100.0] * 4, volume=1e6)], config())
    with pytest.raises(StrategyFailed) as failed:
        rt.run(Named, {})
    assert isinstance(failed.value.error, NotFound) and failed.value.error.code == "unknown_exchange"
    assert "this run trades on binance, not kraken" in str(failed.value)
    assert rt.logs[0][2] == "exchanges ['binance'], fee 0.001"
    assert [(t.exchange, t.status) for t in rt.tickets.values()] == [("binance", "filled")]
    assert [t["exchange"] for t in build_report(rt, {})["trades"]] == ["binance"]
    two, _ = run_backtest(load_strategy("cross_exchange"), {}, [series([100.0] * 4, volume=1e6)], config())
    assert two.status == "failed" and "needs_two_exchanges" in (two.traceback or "")


def test_components_and_input_round_trip_through_the_hub() -> None:
    s = series([100.0] * 30, volume=1e6)
    _outcome, rt = run_backtest(load_strategy("component_demo"), {}, [s], config())
    assert {"price", "fills", "order_form"} <= set(rt.components)
    rt.deliver_input(rt._strategy, "order_form", {"action": "buy", "fraction": 0.5})
    total, inputs = rt.hub.query(method="ui.input")
    assert total == 1 and inputs[0].params["value"]["fraction"] == 0.5
    total, orders = rt.hub.query(method="venue.")
    assert total >= 1 and orders[0].method == "venue.make_order"
    with pytest.raises(InvalidInput):
        rt.deliver_input(rt._strategy, "nope", 1)


def test_report_metrics_are_consistent() -> None:
    s = walk(4_000, seed=11)
    outcome, rt = run_backtest(load_strategy("ma_cross"), {"fast": "8", "slow": "30", "timeframe": "1h"}, [s], config())
    rep = outcome.report
    assert rep["total_return"] == pytest.approx(rep["final_equity"] / rep["initial_equity"] - 1)
    assert 0 <= rep["max_drawdown"] < 1 and 0 <= rep["exposure"] <= 1
    assert len(rep["trades"]) == len(rt.fills)
    assert rep["fees"] == pytest.approx(sum(float(t["fee"]) for t in rep["trades"]))
    assert rep["round_trips"] == rep["exits"]
    build_report(rt, {})  # can be built again: pure


def _epoch_rollup(s: Series, seconds: int) -> tuple[np.ndarray, ...]:
    """The backtest's own rollup before it used core.rollup (buckets counted from the epoch), kept here as the reference."""
    bucket = s.time_ns // (seconds * 10**9)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], s.n] - 1
    return (bucket[starts] * seconds, s.open[starts], np.maximum.reduceat(s.high, starts), np.minimum.reduceat(s.low, starts),
            s.close[ends], np.add.reduceat(s.volume, starts))


def _binance_1h() -> Series:
    rows = np.array(json.loads((shared_data() / "binance-spot-1h" / "BTC_USDT-1h.json").read_bytes()), dtype=float)
    return Series("BTC/USDT", "1h", (rows[:, 0] // 1000).astype(np.int64), *(rows[:, k] for k in range(1, 6)))


@pytest.mark.parametrize("tf", ["2h", "4h", "12h", "1d", "2d", "3d"])
def test_rolling_up_through_core_rollup_gives_the_same_bytes_as_the_epoch_buckets_it_replaced(tf: str) -> None:
    s = _binance_1h()
    rolled = s.rollup(tf)
    expected = _epoch_rollup(s, {"2h": 7200, "4h": 14400, "12h": 43200, "1d": 86400, "2d": 172800, "3d": 259200}[tf])
    got = (rolled.time_ns // 10**9, rolled.open, rolled.high, rolled.low, rolled.close, rolled.volume)
    assert all(a.tobytes() == b.astype(a.dtype).tobytes() for a, b in zip(got, expected, strict=True))
    assert (rolled.close_ns == rolled.time_ns + rolled.tf_ns).all()


class Monthly(Strategy):
    """Hears monthly and weekly candles rolled up from the loaded hourly ones."""

    def on_start(self) -> None:
        self.months: list[tuple[int, dict[str, Any]]] = []
        self.weeks: list[int] = []
        self.subscribe_candles("BTC/USDT", "1M", self.month)
        self.subscribe_candles("BTC/USDT", "1w", lambda candle: self.weeks.append(candle["time"]))

    def month(self, candle: dict[str, Any]) -> None:
        self.months.append((self.time, candle))


def test_a_backtest_takes_calendar_months_and_monday_weeks_rolled_up_from_hours() -> None:
    from datetime import UTC, datetime

    s = _binance_1h()
    rt = BacktestRuntime("monthly", [s], config())
    strategy = rt.run(Monthly, {})
    first, last = (datetime.fromtimestamp(int(t) // 10**9, UTC) for t in (s.time_ns[0], s.time_ns[-1]))
    assert len(strategy.months) >= 6
    for (now, candle), (next_now, _) in zip(strategy.months, strategy.months[1:], strict=False):
        opened, closed = datetime.fromtimestamp(candle["time"], UTC), datetime.fromtimestamp(now, UTC)
        assert opened.day == 1 and opened.hour == 0 and closed == datetime(opened.year + opened.month // 12, opened.month % 12 + 1, 1,
                                                                               tzinfo=UTC)
        assert next_now > now
        hours = (s.time_ns // 10**9 >= candle["time"]) & (s.time_ns // 10**9 < now)
        assert candle["open"] == s.open[hours][0] and candle["close"] == s.close[hours][-1]
        assert candle["high"] == s.high[hours].max() and candle["volume"] == pytest.approx(s.volume[hours].sum(), rel=1e-12)
    assert datetime.fromtimestamp(strategy.months[0][1]["time"], UTC) <= first.replace(day=1, hour=0)  # the first month, partly
    assert datetime.fromtimestamp(strategy.months[-1][1]["time"], UTC) == last.replace(day=1, hour=0)  # the last month, as far as it goes
    assert {datetime.fromtimestamp(t, UTC).weekday() for t in strategy.weeks[1:]} == {0}  # weeks start on Monday


def test_a_timeframe_that_does_not_nest_in_the_data_is_refused_with_the_right_code() -> None:
    s = _binance_1h()
    with pytest.raises(InvalidInput) as caught:
        s.rollup("90m")
    assert caught.value.code == "invalid_timeframe"
    with pytest.raises(InvalidInput) as caught:
        s.rollup("1x")
    assert caught.value.code == "invalid_timeframe"
    assert s.rollup("1M").n >= 6 and s.rollup("3M").n >= 2
