"""Candle backtests with stops and targets: the path assumed inside a bar (`--intrabar`), gaps, exits from the entry bar on.

A table of hand-made bars, each row run in every mode through the whole backtest (strategy
API, candle venue, core): where a long's exits fill, and which bars the assumption decided.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from coinwire.core.errors import InvalidInput
from coinwire.engine.backtest import BacktestConfig, Series
from coinwire.engine.runs import run_backtest
from coinwire.engine.strategy import OrderTicket, Strategy

H = 3600
T0 = 1_600_000_000 // H * H


def bars(*rows: tuple[float, float, float, float]) -> Series:
    a = np.array(rows, dtype=float)
    t = np.arange(len(a), dtype=np.int64) * H + T0
    return Series("BTC/USDT", "1h", t, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.full(len(a), 1000.0))


class Entry(Strategy):
    """Buys 1 at the first bar's open with the exits it is given ('' for none); or a buy stop entry at `stop_entry`."""

    symbol = "BTC/USDT"
    timeframe = "1h"
    stop_loss = ""
    take_profit = ""
    trailing = ""
    stop_entry = ""

    def on_start(self) -> None:
        self.at(self.time, self.go)
        self.seen: list[tuple[str, str, str | None]] = []

    def go(self) -> None:
        if self.stop_entry:
            self.entry = self.buy(self.symbol, size="1", stop_price=self.stop_entry)
            return
        self.entry = self.buy(self.symbol, size="1", stop_loss=self.stop_loss or None, take_profit=self.take_profit or None,
                              trailing=self.trailing or None)

    def on_order(self, order: OrderTicket) -> None:
        self.seen.append((order.client_oid.rsplit("-", 1)[-1], order.status, order.trigger_state))


def run(series: Series, mode: str, **params: str) -> tuple[dict[str, Any], Any]:
    config = BacktestConfig(exchange="binance", balances={"USDT": "1000"}, fee="0", intrabar=mode)
    outcome, rt = run_backtest(Entry, params, [series], config)
    assert outcome.status == "finished", outcome.error
    rt.ledger.check()
    return outcome.report, rt


FLAT = (100.0, 100.0, 100.0, 100.0)
MODES = ("pessimistic", "ohlc", "olhc")

# (case, bars after the entry bar, exits, {mode: (exit price, bar index of the exit) or None}, bars_with_both_legs)
TABLE: list[tuple[str, list[tuple[float, float, float, float]], dict[str, str], dict[str, tuple[str, int] | None], int]] = [
    ("both inside: the stop first when pessimistic", [(100, 112, 94, 100)], {"stop_loss": "95", "take_profit": "110"},
     {"pessimistic": ("95", 1), "ohlc": ("110", 1), "olhc": ("95", 1)}, 1),
    ("gap down through the stop: the worse open", [(90, 92, 88, 91)], {"stop_loss": "95", "take_profit": "110"},
     dict.fromkeys(MODES, ("90", 1)), 0),
    ("gap up over the target: the better open", [(115, 116, 113, 114)], {"stop_loss": "95", "take_profit": "110"},
     dict.fromkeys(MODES, ("115", 1)), 0),
    ("only the stop inside", [(100, 105, 94, 100)], {"stop_loss": "95", "take_profit": "110"}, dict.fromkeys(MODES, ("95", 1)), 0),
    ("only the target inside", [(100, 111, 96, 100)], {"stop_loss": "95", "take_profit": "110"}, dict.fromkeys(MODES, ("110", 1)), 0),
    ("neither inside", [(100, 105, 96, 100), (100, 109, 96, 100)], {"stop_loss": "95", "take_profit": "110"},
     dict.fromkeys(MODES), 0),
    ("a later bar reaches the stop", [(100, 105, 96, 100), (99, 101, 94.5, 95)], {"stop_loss": "95"},
     dict.fromkeys(MODES, ("95", 2)), 0),
    ("percent levels from the fill, on the tick half-up", [(100, 100, 96.91, 96.95)], {"stop_loss": "3.005%"},
     dict.fromkeys(MODES, ("97", 1)), 0),  # 100 * (1 - 0.03005) = 96.995, half-up to 97.00
    # trailing 5: pessimistic and olhc test the low before the high raises the level, ohlc lets the high raise it first
    ("a trailing stop and the order of high and low", [(104, 110, 103, 108), (107, 108, 104, 105)], {"trailing": "5"},
     {"pessimistic": ("105", 2), "ohlc": ("105", 1), "olhc": ("105", 2)}, 0),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", TABLE, ids=[row[0] for row in TABLE])
def test_exits_fill_where_the_assumed_path_reaches_them(case: Any, mode: str) -> None:
    _, later, exits, expected, both = case
    report, _ = run(bars(FLAT, *later), mode, **exits)
    trades = report["trades"]
    assert (trades[0]["side"], trades[0]["price"], trades[0]["time"]) == ("buy", "100", T0)
    want = expected[mode]
    if want is None:
        assert len(trades) == 1
    else:
        price, bar = want
        assert [(t["side"], t["price"], t["time"], t["size"]) for t in trades[1:]] == [("sell", price, T0 + bar * H, "1")]
        assert report["final_equity"] == pytest.approx(float(Decimal(1000) - 100 + Decimal(price)))
    assert report["bars_with_both_legs"] == both and report["intrabar"] == mode


@pytest.mark.parametrize("mode", MODES)
def test_exits_exist_from_the_entry_fill_so_they_can_fire_inside_the_entry_bar(mode: str) -> None:
    report, rt = run(bars((100, 112, 94, 100), FLAT), mode, stop_loss="95", take_profit="110")
    exit_price = {"pessimistic": "95", "ohlc": "110", "olhc": "95"}[mode]
    assert [(t["side"], t["price"], t["time"]) for t in report["trades"]] == [("buy", "100", T0), ("sell", exit_price, T0)]
    assert report["bars_with_both_legs"] == 1
    fired, other = ("sl", "tp") if exit_price == "95" else ("tp", "sl")
    seen = rt._strategy.seen
    assert ("1", "filled", None) in seen and ("1:" + fired, "filled", "triggered") in seen
    assert ("1:" + other, "cancelled", "untriggered") in seen  # its OCO sibling, never fired
    assert seen.index(("1", "filled", None)) < seen.index(("1:sl", "untriggered", "untriggered"))


@pytest.mark.parametrize("mode", MODES)
def test_a_buy_stop_fires_where_the_path_rises_through_it_or_at_a_gap_open(mode: str) -> None:
    report, _ = run(bars(FLAT, (100, 106, 99, 104), (103, 104, 102, 103)), mode, stop_entry="105")
    assert [(t["side"], t["price"], t["time"]) for t in report["trades"]] == [("buy", "105", T0 + H)]
    report, _ = run(bars(FLAT, (107, 108, 106, 107)), mode, stop_entry="105")
    assert [(t["side"], t["price"], t["time"]) for t in report["trades"]] == [("buy", "107", T0 + H)]


def test_an_unknown_intrabar_mode_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        BacktestConfig(exchange="binance", balances={"USDT": "1"}, intrabar="random")
    assert refused.value.code == "invalid_intrabar"
