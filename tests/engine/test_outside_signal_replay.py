"""Outside signals in backtests: `signals.jsonl` beside the candles is replayed at each signal's time, after the candle that
closed at or before it and before the next (no look-ahead), to the subscribed providers only; signal_trader trades on it;
a bad line is refused naming the file and line; a strategy that defines `on_signal` instead of calling it is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coinwire.core.errors import InvalidInput
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.runs import SIGNALS_FILE, finish_backtest, prepare_any_backtest
from coinwire.engine.strategy import Strategy
from coinwire.strategies.registry import load_strategy

H = 3_600
S = 1_000_000_000
T0 = 1_700_000_000 // H * H  # the first candle's open (unix s)


def write_candles(folder: Path, n: int = 24, price: float = 30_000.0) -> Path:
    """n hourly BTC/USDT candles in freqtrade's JSON layout, each closing 10 above its open."""
    rows = [[(T0 + i * H) * 1000, price + 10 * i, price + 10 * i + 15, price + 10 * i - 5, price + 10 * (i + 1), 50.0]
            for i in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "BTC_USDT-1h.json").write_text(json.dumps(rows))
    return folder


def write_signals(folder: Path, signals: list[dict[str, Any]]) -> None:
    (folder / SIGNALS_FILE).write_text("".join(json.dumps(s) + "\n" for s in signals))


def config() -> BacktestConfig:
    return BacktestConfig(exchange="binance", balances={"USDT": "10000"})


class Probe(Strategy):
    """Hears hourly candles and `news` signals; notes each event as (kind, run clock ns, detail)."""

    name = "probe"
    symbol = "BTC/USDT"
    timeframe = "1h"

    def on_start(self) -> None:
        self.events: list[tuple[str, int, Any]] = []
        self.subscribe_candles(self.symbol, self.timeframe, self.candle)
        self.on_signal("news", self.news)

    def candle(self, candle: dict[str, Any]) -> None:
        self.events.append(("candle", self.time * S, candle["time"]))

    def news(self, signal: dict[str, Any]) -> None:
        assert signal["provider"] == "news"
        self.events.append(("signal", signal["ts"], signal["params"]["n"]))


def run(folder: Path, cls: type[Strategy], params: dict[str, Any] | None = None) -> Any:
    prepared = prepare_any_backtest(cls, params or {}, [str(folder / "BTC_USDT-1h.json")], config(), folder)
    outcome = finish_backtest(prepared)
    assert outcome.status == "finished", outcome.error
    return prepared, outcome


def test_recorded_signals_arrive_at_their_times_after_the_candle_that_closed_and_only_to_subscribers(tmp_path: Path) -> None:
    folder = write_candles(tmp_path / "data")
    close_3 = (T0 + 3 * H) * S  # the instant the third candle closes
    write_signals(folder, [
        {"provider": "news", "method": "headline", "ts": close_3 + 1_800 * S, "params": {"n": 2}},  # between two closes
        {"provider": "news", "method": "headline", "ts": close_3, "params": {"n": 1}},  # at a close: after that candle
        {"provider": "tradingview", "method": "alert", "ts": close_3, "params": {"n": 9}},  # not subscribed: never heard
        {"provider": "news", "method": "headline", "ts": (T0 - H) * S, "params": {"n": 0}},  # before the data: not replayed
        {"provider": "news", "method": "headline", "ts": "2023-11-14T22:00:00Z", "params": {"n": 3}},  # an ISO time
    ])
    prepared, _ = run(folder, Probe)
    events = prepared.runtime._strategy.events
    signals = [(ts, n) for kind, ts, n in events if kind == "signal"]
    iso = T0 * S  # 2023-11-14T22:00:00Z
    assert signals == [(iso, 3), (close_3, 1), (close_3 + 1_800 * S, 2)]
    at = events.index(("signal", close_3, 1))
    assert events[at - 1] == ("candle", close_3, T0 + 2 * H)  # the candle that closed at that instant came first
    assert events[at + 1] == ("signal", close_3 + 1_800 * S, 2) and events[at + 2][0] == "candle"  # then the next candle
    hub = [(m.ts, m.method, m.params) for m in prepared.runtime.hub.messages if m.method.startswith(("news.", "tradingview."))]
    assert hub == [(iso, "news.headline", {"n": 3}), (close_3, "news.headline", {"n": 1}),
                   (close_3 + 1_800 * S, "news.headline", {"n": 2})]


def test_signal_trader_buys_and_sells_what_the_replayed_alerts_say(tmp_path: Path) -> None:
    folder = write_candles(tmp_path / "data")
    alert = {"ticker": "BINANCE:BTCUSDT", "symbol": "BTC/USDT", "contracts": "0.1"}
    write_signals(folder, [
        {"provider": "tradingview", "method": "alert", "ts": (T0 + 2 * H) * S + 60 * S, "params": {**alert, "action": "buy"}},
        {"provider": "tradingview", "method": "alert", "ts": (T0 + 5 * H) * S, "params": {**alert, "action": "sell",
                                                                                           "contracts": "5"}},
        {"provider": "tradingview", "method": "alert", "ts": (T0 + 6 * H) * S, "params": {**alert, "symbol": "ETH/USDT",
                                                                                           "action": "buy"}},
    ])
    prepared, outcome = run(folder, load_strategy("signal_trader"))
    fills = [m.params for m in prepared.runtime.hub.messages if m.method == "venue.fill"]
    # a market order fills at the next candle's open: the buy's (a minute after T0+2h) at T0+3h, the sell's (at the close
    # of T0+5h, for more than is held: all of it) at the open of the candle starting then
    assert [(f["side"], f["size"], f["time"]) for f in fills] == [("buy", "0.1", T0 + 3 * H), ("sell", "0.1", T0 + 5 * H)]
    assert any("ETH/USDT" in line[2] and "not a market of this run" in line[2] for line in prepared.runtime.logs)
    assert outcome.report["entries"] == 1


def test_a_bad_line_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    folder = write_candles(tmp_path / "data")
    (folder / SIGNALS_FILE).write_text('{"provider": "news", "method": "m", "ts": 1}\n\n{"provider": "news", "method": "m"}\n')
    with pytest.raises(InvalidInput) as refused:
        prepare_any_backtest(Probe, {}, [str(folder)], config(), folder)
    assert refused.value.code == "invalid_signal" and f"{SIGNALS_FILE}:3" in refused.value.message


def test_on_signal_is_called_not_defined() -> None:
    with pytest.raises(InvalidInput) as refused:
        type("Defines", (Strategy,), {"on_signal": lambda self, signal: None})
    assert refused.value.code == "strategy_callback_misnamed" and "self.on_signal(" in refused.value.message
