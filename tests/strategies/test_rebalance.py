"""The built-in `rebalance` strategy in real candle backtests: first buys, sells before buys, every N bars, drift, funds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import InvalidInput
from coinwire.engine.backtest import BacktestConfig, Series
from coinwire.engine.runs import run_backtest
from coinwire.strategies.rebalance import Rebalance, parse_weights
from coinwire.strategies.registry import load_strategy

H = 3600
T0 = 1_700_000_000 // H * H


def series(symbol: str, closes: list[float], volume: float = 1e9) -> Series:
    """Hourly candles whose next open is the previous close (so a fill at the open is at the price the strategy saw)."""
    c = np.array(closes, dtype=float)
    o = np.concatenate([[c[0]], c[:-1]])
    return Series(symbol, "1h", T0 + H * np.arange(len(c)), o, np.maximum(o, c), np.minimum(o, c), c, np.full(len(c), volume))


def run(params: dict[str, Any], data: list[Series], fee: str = "0.001", balance: str = "10000") -> tuple[Any, Any]:
    config = BacktestConfig(exchange="sim", balances={"USDT": balance}, fee=fee)
    return run_backtest(load_strategy("rebalance"), params, data, config)


def three(n: int = 48) -> list[Series]:
    """A flat, a rising (x2 over the run) and a falling (/2) market."""
    return [series("AAA/USDT", [100.0] * n), series("BBB/USDT", list(np.linspace(100, 200, n).round(2))),
            series("CCC/USDT", list(np.linspace(100, 50, n).round(2)))]


def holdings_at(report: dict[str, Any], until: int) -> dict[str, Decimal]:
    held: dict[str, Decimal] = {"USDT": Decimal(10000)}
    for t in report["trades"]:
        if t["time"] > until:
            break
        base = t["symbol"].split("/")[0]
        sign = 1 if t["side"] == "buy" else -1
        held[base] = held.get(base, Decimal(0)) + sign * Decimal(t["size"])
        held["USDT"] -= sign * Decimal(t["price"]) * Decimal(t["size"]) + Decimal(t["fee"])
    return held


def test_it_is_a_builtin_and_buys_equal_weights_of_every_market_at_the_first_bar() -> None:
    assert load_strategy("rebalance") is Rebalance
    outcome, rt = run({"drift": 0.0}, three())
    rep = outcome.report
    assert outcome.status == "finished", outcome.error
    first = T0 + H  # the first bar closes, its buys fill at the next open
    assert [(t["time"], t["side"]) for t in rep["trades"]] == [(first, "buy")] * 3  # drift 0, every 0: only the start
    held = holdings_at(rep, first)
    assert Decimal(0) <= held["USDT"] < Decimal("0.01")
    for base in ("AAA", "BBB", "CCC"):  # a third each, less the fee inside the funds
        value = held[base] * Decimal(next(t["price"] for t in rep["trades"] if t["symbol"] == f"{base}/USDT"))
        assert float(value) == pytest.approx(10000 / 3 / 1.001, rel=1e-6)
    assert all(t.status == "filled" for t in rt.tickets.values())


def test_a_market_whose_candles_begin_later_delays_the_first_buys_until_it_has_a_price() -> None:
    late = series("LATE/USDT", [50.0] * 20)
    late = Series("LATE/USDT", "1h", late.time_ns // 10**9 + 5 * H, late.open, late.high, late.low, late.close, late.volume)
    outcome, _ = run({"symbols": "AAA/USDT,LATE/USDT", "drift": 0.0}, [series("AAA/USDT", [100.0] * 30), late])
    assert outcome.status == "finished", outcome.error
    first = T0 + 6 * H  # LATE's first candle closes with AAA's sixth: both bought at the next open
    assert [(t["time"], t["symbol"]) for t in outcome.report["trades"]] == [(first, "AAA/USDT"), (first, "LATE/USDT")]


def test_every_n_bars_sells_first_then_buys_back_to_the_targets() -> None:
    outcome, rt = run({"every_bars": 12, "drift": 0.0}, three(48))
    rep = outcome.report
    times = sorted({t["time"] for t in rep["trades"]})
    assert times == [T0 + H * k for k in (1, 13, 25, 37)]  # bars 0, 12, 24, 36 close; fills at the next open
    for when in times[1:]:
        sides = [t["side"] for t in rep["trades"] if t["time"] == when]
        assert sides == sorted(sides, key=lambda s: s != "sell") and "sell" in sides and "buy" in sides
        assert [t["symbol"] for t in rep["trades"] if t["time"] == when and t["side"] == "sell"] == ["BBB/USDT"]
        held = holdings_at(rep, when)
        price = {t["symbol"].split("/")[0]: Decimal(t["price"]) for t in rep["trades"] if t["time"] <= when}
        equity = held["USDT"] + sum(held[b] * price[b] for b in ("AAA", "BBB", "CCC"))
        for b in ("AAA", "BBB", "CCC"):  # back within the fees of a third each
            assert abs(held[b] * price[b] / equity - Decimal(1) / 3) < Decimal("0.003")
    assert all(t.status == "filled" for t in rt.tickets.values())


def test_drift_rebalances_only_when_a_weight_strays_further_than_the_threshold() -> None:
    outcome, _ = run({"drift": 5.0}, three(48))
    rep = outcome.report
    times = sorted({t["time"] for t in rep["trades"]})
    assert len(times) >= 2
    closes = {s.symbol: s for s in three(48)}
    for when in times[1:]:  # at the bar before each rebalance's fills the largest gap is above 5 points
        bar = (when - T0) // H - 1
        held = holdings_at(rep, when - 1)
        px = {sym.split("/")[0]: Decimal(repr(float(s.close[bar]))) for sym, s in closes.items()}
        equity = held["USDT"] + sum(held[b] * px[b] for b in px)
        gap = max(abs(held[b] * px[b] / equity - Decimal(1) / 3) for b in px) * 100
        assert gap > 5
    quiet, _ = run({"drift": 50.0}, three(48))
    assert {t["time"] for t in quiet.report["trades"]} == {T0 + H}


def test_custom_weights_keep_the_rest_in_the_quote_and_a_high_fee_never_overspends() -> None:
    outcome, rt = run({"weights": "AAA/USDT=0.5,BBB/USDT=0.25", "every_bars": 6, "drift": 0.0}, three(30), fee="0.02")
    rep = outcome.report
    assert {t["symbol"] for t in rep["trades"]} == {"AAA/USDT", "BBB/USDT"}
    assert all(t.status == "filled" for t in rt.tickets.values())  # no buy ever asked for more than the quote held
    assert all(totals.get("USDT", 0) >= 0 for _, totals in rt.balance_points)
    held = holdings_at(rep, T0 + H)
    assert held["AAA"] * 100 == pytest.approx(Decimal(5000) / Decimal("1.02"), rel=Decimal("1e-9"))
    assert held["USDT"] == pytest.approx(Decimal(2500), rel=Decimal("1e-9"))


def test_orders_below_min_notional_are_skipped_until_the_gap_is_worth_trading() -> None:
    outcome, _ = run({"every_bars": 1, "drift": 0.0, "min_notional": 1000.0}, three(48))
    trades = outcome.report["trades"]
    later = [t for t in trades if t["time"] > T0 + H]
    assert later and all(Decimal(t["price"]) * Decimal(t["size"]) >= Decimal(1000) / Decimal("1.001") for t in later)
    assert len({t["time"] for t in later}) < 46  # due at every bar, traded only where a gap reached 1000 USDT


@pytest.mark.parametrize(("params", "says"), [
    ({"weights": "AAA/USDT=0.7,BBB/USDT=0.7"}, "more than 1"),
    ({"weights": "AAA/USDT:0.5"}, "weights look like"),
    ({"weights": "AAA/USDT=-1"}, "positive shares"),
    ({"symbols": "AAA/USDT,XXX/BTC"}, "one quote currency"),
    ({"every_bars": -1}, "must not be negative"),
])
def test_bad_parameters_fail_the_run_with_a_clear_message_before_any_order(params: dict[str, Any], says: str) -> None:
    outcome, rt = run(params, three(5))
    assert outcome.status == "failed" and "InvalidInput" in (outcome.error or "") and says in (outcome.error or "")
    assert not rt.tickets


def test_without_symbols_a_run_with_markets_of_two_quotes_is_asked_to_name_them() -> None:
    data = [*three(5), series("AAA/BTC", [0.002] * 5)]
    outcome, rt = run({}, data)
    assert outcome.status == "failed" and "name the ones to hold" in (outcome.error or "") and not rt.tickets
    named, _ = run({"symbols": "AAA/USDT,BBB/USDT", "drift": 0.0}, data)
    assert {t["symbol"] for t in named.report["trades"]} == {"AAA/USDT", "BBB/USDT"}


def test_after_a_rule_sold_everything_and_paused_entries_the_rebalances_buy_nothing_back() -> None:
    drop = [100.0] * 10 + [80.0] * 20  # every market loses 20% at bar 10: a 10% portfolio stop fires at that close
    data = [series(f"{name}/USDT", drop) for name in ("AAA", "BBB", "CCC")]
    stop = {"name": "stop", "scope": "run", "rules": [{"kind": "portfolio_stop", "pct": "10"}], "actions": [{"kind": "close_all"}]}
    config = BacktestConfig(exchange="sim", balances={"USDT": "10000"}, fee="0.001", rules=[stop])
    outcome, rt = run_backtest(load_strategy("rebalance"), {"every_bars": 4, "drift": 0.0}, data, config)
    rep = outcome.report
    fired = T0 + 11 * H  # bar 10 closes
    assert [f["time"] for f in rep["rule_firings"]] == [fired]
    assert [(t["time"], t["side"]) for t in rep["trades"] if t["time"] > T0 + H] == [(fired, "sell")] * 3
    refused = [t for t in rt.tickets.values() if t.status == "rejected"]
    assert refused and all(t.side == "buy" and "entries_paused" in (t.error or "") for t in refused)
    assert any("entries are paused" in message for _, _, message in rt.logs)
    assert {c for c, v in rt.balance_points[-1][1].items() if v} == {"USDT"}


class CancelledSell(Rebalance):
    """The rebalance, with its first sell of each rebalance cancelled as a rule's cancel_orders would (before it fills)."""

    def _sell(self, *args: Any) -> None:
        super()._sell(*args)
        if self.selling:
            self.cancel(self.selling[0])


def test_a_rebalance_whose_sell_was_cancelled_before_filling_buys_nothing() -> None:
    config = BacktestConfig(exchange="sim", balances={"USDT": "10000"}, fee="0.001")
    params = {"weights": "AAA/USDT=0.3,BBB/USDT=0.3,CCC/USDT=0.3", "every_bars": 12, "drift": 0.0}  # 10% cash to buy with
    outcome, rt = run_backtest(CancelledSell, params, three(48), config)
    rep = outcome.report
    assert outcome.status == "finished", outcome.error
    assert [t["side"] for t in rep["trades"] if t["time"] > T0 + H] == []  # BBB's sell cancelled: no buy follows
    plain, _ = run(params, three(48))
    assert [t["side"] for t in plain.report["trades"] if t["time"] > T0 + H].count("buy") >= 3  # uncancelled, it buys
    assert [t.status for t in rt.tickets.values() if t.side == "sell"] == ["cancelled"] * 3
    assert sum("no buys until the next rebalance" in message for _, _, message in rt.logs) == 3


def test_parse_weights_defaults_to_equal_shares_and_refuses_mismatches() -> None:
    assert parse_weights(["A/Q", "B/Q"], "") == {"A/Q": Decimal("0.5"), "B/Q": Decimal("0.5")}
    assert parse_weights([], "A/Q=0.2") == {"A/Q": Decimal("0.2")}
    with pytest.raises(InvalidInput):
        parse_weights(["A/Q", "C/Q"], "A/Q=0.2,B/Q=0.3")
    with pytest.raises(InvalidInput):
        parse_weights([], "")
    with pytest.raises(InvalidInput):
        parse_weights([], "A/Q=0.2,A/Q=0.3")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.floats(0.8, 1.25), min_size=3, max_size=3), min_size=6, max_size=30),
       st.sampled_from(["0", "0.001", "0.05"]), st.integers(0, 4), st.sampled_from([0.0, 1.0, 10.0]))
def test_no_order_is_ever_refused_and_the_quote_never_goes_negative(moves: list[list[float]], fee: str, every: int,
                                                                   drift: float) -> None:
    paths = np.cumprod(np.array([[1.0, 1.0, 1.0], *moves]), axis=0) * 100
    data = [series(f"{name}/USDT", list(paths[:, k].round(4))) for k, name in enumerate(("AAA", "BBB", "CCC"))]
    outcome, rt = run({"every_bars": every, "drift": drift, "min_notional": 1.0}, data, fee=fee)
    assert outcome.status == "finished", outcome.error
    tickets = [(t.status, t.error) for t in rt.tickets.values()]
    # only an order placed at the last close may expire: no candle after it to fill at
    assert all(s == "filled" or (s == "expired" and "no candle after" in (e or "")) for s, e in tickets), tickets
    assert all(amount >= 0 for _, totals in rt.balance_points for amount in totals.values())
