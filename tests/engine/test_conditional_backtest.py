"""Conditional orders in candle backtests: ma_cross with stops and targets against an independent reference, and the strategy API.

The reference is a plain loop written from the rule the issue states, not from the venue:
market orders fill at the next open; a long's stop-loss and take-profit exist from the
entry's fill (levels a percentage of it, rounded to the tick half-up); in each bar, when
pessimistic, the stop is tested first (a bar opening below it fills at that open, else
reaching it fills at it), then the target (the same, mirrored); a death cross cancels the
exits left and sells what the exits did not.
"""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pytest

from coinwire.core.errors import CoinwireError
from coinwire.engine.backtest import BacktestConfig, Series
from coinwire.engine.runs import run_backtest
from coinwire.engine.strategy import OrderTicket, Strategy
from coinwire.strategies.ma_cross import MaCross
from tests.conftest import shared_data

H = 3600
T0 = 1_600_000_000 // H * H


Fills = list[tuple[str, Decimal, int]]


def reference(s: Series, fast: int, slow: int, fee: float, stop_pct: str, take_pct: str) -> tuple[Fills, float, int]:
    """(fills as (side, price, unix s), final equity, bars with both exits inside the range), from the rule alone."""
    o, h, lo, c = s.open, s.high, s.low, s.close
    t = s.time_ns // 1_000_000_000

    def sma(x: np.ndarray, n: int) -> np.ndarray:
        out = np.full(len(x), np.nan)
        for i in range(n - 1, len(x)):
            out[i] = math.fsum(x[i - n + 1 : i + 1]) / n
        return out

    def level(entry: Decimal, pct: str, up: bool) -> Decimal:
        factor = 1 + Decimal(pct) / 100 if up else 1 - Decimal(pct) / 100
        return (entry * factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    f, sl = sma(c, fast), sma(c, slow)
    cash, pos, last, pending = 10_000.0, 0.0, None, None
    stop = take = None  # the armed exits (None: none)
    fills: Fills = []
    both = 0

    def sell(price: float, j: int) -> None:
        nonlocal cash, pos, stop, take
        cash, pos, stop, take = cash + pos * price * (1 - fee), 0.0, None, None
        fills.append(("sell", Decimal(repr(price)), int(t[j])))

    for j in range(len(c)):
        if pending == "buy":  # at the open
            price = float(o[j])
            size = cash / (price * (1 + fee))
            cash, pos = cash - size * price * (1 + fee), size
            fills.append(("buy", Decimal(repr(price)), int(t[j])))
            entry = Decimal(repr(price))
            stop, take = level(entry, stop_pct, False), level(entry, take_pct, True)
        elif pending == "sell":
            sell(float(o[j]), j)
        pending = None
        if stop is not None and take is not None:  # inside the bar, the stop first
            s_, t_ = float(stop), float(take)
            if lo[j] <= s_ <= h[j] and lo[j] <= t_ <= h[j]:
                both += 1
            if o[j] <= s_:
                sell(float(o[j]), j)
            elif lo[j] <= s_:
                sell(s_, j)
            elif o[j] >= t_:
                sell(float(o[j]), j)
            elif h[j] >= t_:
                sell(t_, j)
        if j == 0 or np.isnan(sl[j - 1]) or j + 1 >= len(c):
            continue  # at the close: crosses (a signal on the last bar never fills)
        if f[j] > sl[j] and f[j - 1] <= sl[j - 1] and last != "buy":
            last, pending = "buy", "buy"
        elif f[j] < sl[j] and f[j - 1] >= sl[j - 1] and last == "buy":
            last = "sell"
            stop = take = None  # cancelled
            if pos > 0:
                pending = "sell"
    return fills, cash + pos * float(c[-1]), both


def five_minute_btc() -> Series:
    rows = np.array(json.loads((shared_data() / "binance-spot-5m" / "BTC_USDT-5m.json").read_bytes()), dtype=float)
    return Series("BTC/USDT", "5m", (rows[:, 0] // 1000).astype(np.int64), *(rows[:, k] for k in range(1, 6)))


def test_ma_cross_with_stops_and_targets_equals_the_reference_of_the_pessimistic_rule() -> None:
    s = five_minute_btc()
    config = BacktestConfig(exchange="binance", balances={"USDT": "10000"}, fee="0.001", liquidity="unlimited")
    outcome, rt = run_backtest(MaCross, {"stop_loss": "1", "take_profit": "2"}, [s], config)
    fills, final, both = reference(s, 50, 200, 0.001, "1", "2")
    assert outcome.status == "finished", outcome.error
    got = [(tr["side"], Decimal(tr["price"]), tr["time"]) for tr in outcome.report["trades"]]
    stops = sum(1 for side, price, _ in fills if side == "sell")
    assert len(fills) > 100 and stops > 50  # many exits: the rule is exercised, not the crosses alone
    assert got == fills
    assert outcome.report["final_equity"] == pytest.approx(final, rel=1e-9)
    assert outcome.report["bars_with_both_legs"] == both and outcome.report["intrabar"] == "pessimistic"
    rt.ledger.check()


def test_ma_cross_without_exits_is_unchanged_and_its_exits_are_levels_of_the_fill() -> None:
    s = five_minute_btc()
    config = BacktestConfig(exchange="binance", balances={"USDT": "10000"}, liquidity="unlimited")
    plain, _ = run_backtest(MaCross, {}, [s], config)
    fills, final, _ = reference(s, 50, 200, 0.001, "99", "900")  # exits no bar reaches: the plain strategy
    assert [(tr["side"], Decimal(tr["price"]), tr["time"]) for tr in plain.report["trades"]] == fills
    assert plain.report["final_equity"] == pytest.approx(final, rel=1e-9)
    assert plain.report["bars_with_both_legs"] == 0


def walk(n: int, seed: int) -> Series:
    rng = np.random.default_rng(seed)
    closes = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 0.004, n))), 2)
    opens = np.r_[closes[0], closes[:-1]]
    spread = np.abs(rng.normal(0, 0.006, n)) * closes
    highs = np.round(np.maximum(opens, closes) + spread, 2)
    lows = np.round(np.minimum(opens, closes) - spread, 2)
    t = np.arange(n, dtype=np.int64) * H + T0
    return Series("BTC/USDT", "1h", t, opens, highs, lows, closes, np.full(n, 1e6))


@pytest.mark.parametrize("mode", ["pessimistic", "ohlc", "olhc"])
def test_the_reference_is_pessimistic_and_the_fixed_paths_are_not(mode: str) -> None:
    s = walk(5_000, seed=11)
    config = BacktestConfig(exchange="binance", balances={"USDT": "10000"}, liquidity="unlimited", intrabar=mode)
    outcome, rt = run_backtest(MaCross, {"fast": "10", "slow": "40", "timeframe": "1h", "stop_loss": "0.5", "take_profit": "0.6"},
                               [s], config)
    fills, final, both = reference(s, 10, 40, 0.001, "0.5", "0.6")
    assert both > 10 and outcome.report["bars_with_both_legs"] == both  # the same bars, whatever the path
    got = [(tr["side"], Decimal(tr["price"]), tr["time"]) for tr in outcome.report["trades"]]
    if mode == "pessimistic":
        assert got == fills and outcome.report["final_equity"] == pytest.approx(final, rel=1e-9)
    else:  # ohlc takes targets where both are inside a bar: never worse than pessimistic; olhc is pessimistic for longs
        assert (got == fills) is (mode == "olhc")
        assert (outcome.report["final_equity"] > final * (1 + 1e-6)) is (mode == "ohlc")
    rt.ledger.check()


# --- the strategy API ----------------------------------------------------------------------------------------


def flat_then(*rows: tuple[float, float, float, float]) -> Series:
    a = np.array([(100.0, 100.0, 100.0, 100.0), *rows], dtype=float)
    t = np.arange(len(a), dtype=np.int64) * H + T0
    return Series("BTC/USDT", "1h", t, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.full(len(a), 1000.0))


class OneOrder(Strategy):
    """Sends the order `spec` (JSON of `order` arguments) at the first bar's open; records what its tickets went through."""

    symbol = "BTC/USDT"
    timeframe = "1h"
    spec = "{}"
    cancel_at = 0  # unix seconds: cancel the order then (0: never)

    def on_start(self) -> None:
        self.at(self.time, self.go)
        if self.cancel_at:
            self.at(self.cancel_at, lambda: self.cancel(self.ticket))
        self.states: list[tuple[str, str | None]] = []
        self.refused: str | None = None

    def go(self) -> None:
        try:
            self.ticket = self.order(**json.loads(self.spec))
        except CoinwireError as exc:
            self.refused = exc.code

    def on_order(self, order: OrderTicket) -> None:
        self.states.append((order.status, order.trigger_state))


def one(spec: dict[str, Any], series: Series, **params: Any) -> tuple[Any, Any]:
    config = BacktestConfig(exchange="binance", balances={"USDT": "1000", "BTC": "2"}, fee="0")
    outcome, rt = run_backtest(OneOrder, {"spec": json.dumps({"symbol": "BTC/USDT", **spec}), **params}, [series], config)
    rt.ledger.check()
    return outcome, rt


def test_a_sell_stop_holds_its_base_fires_once_and_the_ticket_shows_its_trigger_state() -> None:
    bars = flat_then((100, 101, 99, 100), (99, 99, 94, 95), (93, 93, 90, 91))
    outcome, rt = one({"side": "sell", "size": "1.5", "stop_price": "95"}, bars)
    assert outcome.status == "finished"
    assert [(t["side"], t["price"], t["time"]) for t in outcome.report["trades"]] == [("sell", "95", T0 + 2 * H)]
    strategy = rt._strategy
    assert strategy.ticket.type == "stop-market" and strategy.ticket.stop_price == Decimal(95)
    assert strategy.states == [("untriggered", "untriggered"), ("filled", "triggered")]


def test_a_stop_limit_rests_after_firing_and_fills_at_its_limit() -> None:
    outcome, rt = one({"side": "sell", "size": "1", "stop_price": "95", "limit": "96", "type": "stop-limit"},
                      flat_then((96, 96, 94, 94.5), (95, 97, 95, 96)))
    trades = outcome.report["trades"]
    assert [(t["side"], t["price"], t["time"]) for t in trades] == [("sell", "96", T0 + 2 * H)]
    assert rt._strategy.states == [("untriggered", "untriggered"), ("open", "triggered"), ("filled", "triggered")]


def test_cancelling_an_untriggered_order_gives_its_hold_back() -> None:
    outcome, rt = one({"side": "buy", "size": "1", "stop_price": "105"}, flat_then(FLAT_BAR, (100, 107, 99, 104)), cancel_at=T0 + H)
    assert outcome.report["trades"] == []
    assert rt._strategy.states == [("untriggered", "untriggered"), ("cancelled", "untriggered")]
    assert rt.ledger.holds() == {} and rt._strategy.available("USDT") == Decimal(1000)


def test_a_gtd_stop_limit_expires_untriggered() -> None:
    spec = {"side": "sell", "size": "1", "stop_price": "95", "limit": "94", "type": "stop-limit", "time_in_force": "GTD",
            "expire_at": T0 + H + 1}
    outcome, rt = one(spec, flat_then(FLAT_BAR, (100, 100, 90, 91)))
    assert outcome.report["trades"] == [] and rt._strategy.states[-1] == ("expired", "untriggered")


FLAT_BAR = (100.0, 100.0, 100.0, 100.0)


@pytest.mark.parametrize(("spec", "code"), [
    ({"side": "sell", "size": "1", "stop_price": "101"}, "stop_would_trigger"),  # the market (100) is already below it
    ({"side": "sell", "size": "1", "stop_price": "95", "trigger": "bid_ask"}, "trigger_unavailable"),
    ({"side": "buy", "size": "1", "stop_loss": "101"}, "bracket_stop_wrong_side"),
    ({"side": "buy", "size": "1", "take_profit": "99"}, "bracket_take_profit_wrong_side"),
])
def test_refusals_at_the_venue_reject_the_ticket_with_their_code(spec: dict[str, Any], code: str) -> None:
    outcome, rt = one(spec, flat_then(FLAT_BAR))
    ticket = rt._strategy.ticket
    assert outcome.status == "finished" and ticket.status == "rejected" and ticket.error.startswith(code)
    assert rt.ledger.holds() == {} and outcome.report["trades"] == []
    assert rt.ledger.wallet(rt.exchange, "BTC", rt.wallet_set_id).available == 2 * 10**18  # nothing traded, not even unrecorded


def test_allow_immediate_accepts_a_stop_the_market_has_passed() -> None:
    outcome, _ = one({"side": "sell", "size": "1", "stop_price": "101", "allow_immediate": True}, flat_then(FLAT_BAR))
    assert [(t["price"], t["time"]) for t in outcome.report["trades"]] == [("100", T0)]  # fires at once, at the open


@pytest.mark.parametrize(("spec", "code"), [
    ({"side": "sell", "size": "1", "type": "stop-market"}, "stop_price_required"),
    ({"side": "sell", "size": "1", "type": "stop-limit", "stop_price": "95"}, "limit_required"),
    ({"side": "sell", "size": "1", "type": "trailing-stop"}, "trailing_delta_required"),
    ({"side": "sell", "size": "1", "trailing_delta": "100%"}, "trailing_delta_out_of_range"),
    ({"side": "sell", "size": "1", "trailing_delta": "0"}, "trailing_delta_out_of_range"),
    ({"side": "sell", "size": "1", "stop_price": "95", "time_in_force": "IOC"}, "time_in_force_invalid"),
    ({"side": "sell", "size": "1", "stop_price": "95", "limit": "94", "time_in_force": "GTD"}, "time_in_force_invalid"),
    ({"side": "buy", "stop_price": "105"}, "size_required"),
    ({"side": "buy", "size": "1", "stop_loss": "0%"}, "invalid_stop_loss"),
    ({"side": "buy", "size": "1", "stop_loss": "3%", "trailing": "1%"}, "invalid_params"),
    ({"side": "sell", "size": "1", "stop_price": "95", "take_profit": "90"}, "invalid_params"),
    ({"side": "buy", "size": "1", "limit": "99", "stop_price": "105", "type": "limit"}, "invalid_params"),
])
def test_bad_requests_are_refused_by_the_strategy_call_with_their_code(spec: dict[str, Any], code: str) -> None:
    outcome, rt = one(spec, flat_then(FLAT_BAR))
    assert rt._strategy.refused == code and not rt.tickets and outcome.report["trades"] == []


def test_a_trailing_exit_follows_the_best_price_and_never_moves_back() -> None:
    class Trail(OneOrder):
        def on_order(self, order: OrderTicket) -> None:
            if order.parent is not None:
                self.states.append((order.status, str(order.stop_price)))

    config = BacktestConfig(exchange="binance", balances={"USDT": "1000"}, fee="0")
    spec = json.dumps({"symbol": "BTC/USDT", "side": "buy", "size": "1", "trailing": "2%"})
    outcome, rt = run_backtest(Trail, {"spec": spec}, [flat_then((100, 110, 99.5, 109), (109, 109, 105, 106))], config)
    # pessimistic: bar 1 tests the low (99.5 > 98) before its high lifts the level to 107.80; bar 2 reaches it
    assert [(t["side"], t["price"], t["time"]) for t in outcome.report["trades"]] == [("buy", "100", T0), ("sell", "107.8", T0 + 2 * H)]
    assert rt._strategy.states[0] == ("untriggered", "98") and rt._strategy.states[-1] == ("filled", "107.8")
