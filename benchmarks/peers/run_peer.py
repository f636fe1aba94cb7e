"""Run the MA cross on one peer backtester with fill semantics matched to the reference; print JSON.

Usage (in .venv-peers, built by `make peers`):

    .venv-peers/bin/python benchmarks/peers/run_peer.py PEER --data FILE [--fast 50] [--slow 200]
        [--fee 0.001] [--fill open|close] [--cash 10000] --json

PEER is backtrader, vectorbt, backtesting or nautilus (see docs/PEERS.md for how each is
configured to match benchmarks/peers/reference.py). Prints one JSON object:
`{peer, version, entries, exits, final_equity, trades, seconds_import, seconds_load,
seconds_compute[, seconds_compute_cold]}`. seconds_load is the common JSON -> NumPy read;
seconds_compute is the peer's own work from those arrays (building its data structures,
indicators, the run). vectorbt runs twice: `seconds_compute_cold` includes numba's JIT
compile (truly cold only with an empty NUMBA_CACHE_DIR), `seconds_compute` is the warm call.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.peers.reference import Candles, bar_ms, load_freqtrade_json

Result = dict[str, Any]
# fraction of equity backtesting.py may spend: its relative sizes must be < 1
_ALMOST_ONE = 1.0 - 2.0**-52
# backtesting.py trades whole units; scaling prices by 1e-12 makes a unit 1e-12 BTC
_BACKTESTING_UNIT = 1e-12


def _late(c: Candles, fill: str) -> int:
    """ms from a bar's open time to its fill instant: 0 for next-open fills, the bar for close fills."""
    return bar_ms(c.time_ms) if fill == "close" else 0


def _trade(time_ms: int, side: str, price: float, size: float, fee: float) -> dict[str, Any]:
    return {"time": int(time_ms), "side": side, "price": float(price), "size": abs(float(size)), "fee": float(fee)}


def _summary(trades: list[dict[str, Any]], final_equity: float) -> Result:
    entries = sum(1 for t in trades if t["side"] == "buy")
    return {"entries": entries, "exits": len(trades) - entries, "final_equity": float(final_equity), "trades": trades}


def _affordable(cash: float, price: float, fee: float) -> float:
    """cash / (price * (1 + fee)), lowered by ulps until backtrader's own cost check passes.

    backtrader nullifies an execution that leaves `cash - size * price - size * price * fee`
    (in that float order) below 0.0, which all-in sizing does by an ulp about half the time.
    """
    import math

    size = cash / (price * (1.0 + fee))
    while (cash - size * price) - size * price * fee < 0.0:
        size = math.nextafter(size, 0.0)
    return size


# --- backtrader -------------------------------------------------------------------------------


def run_backtrader(c: Candles, fast: int, slow: int, fee: float, fill: str, cash: float) -> Result:
    """Market orders; next-open fills sized on the fill price via cheat-on-open, or coc for close."""
    import backtrader as bt
    import pandas as pd

    frame = pd.DataFrame(
        {"open": c.open, "high": c.high, "low": c.low, "close": c.close, "volume": c.volume},
        index=pd.to_datetime(c.time_ms.astype("int64"), unit="ms"),
    )
    trades: list[dict[str, Any]] = []
    refused: list[str] = []
    late = _late(c, fill)

    class MaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.fast = bt.indicators.SMA(self.data.close, period=fast)
            self.slow = bt.indicators.SMA(self.data.close, period=slow)
            self.pending: str | None = None

        def _signal(self) -> str | None:
            f0, s0, f1, s1 = self.fast[0], self.slow[0], self.fast[-1], self.slow[-1]
            if f0 > s0 and f1 <= s1 and not self.position:
                return "buy"
            if f0 < s0 and f1 >= s1 and self.position:
                return "sell"
            return None

        def _act(self, side: str, price: float) -> None:
            if side == "buy":
                self.buy(size=_affordable(self.broker.getcash(), price, fee))
            else:
                self.close()

        def next(self) -> None:
            side = self._signal()
            if side is None:
                return
            if fill == "close":
                self._act(side, self.data.close[0])  # broker coc: fills at this bar's close
            else:
                self.pending = side  # filled in next_open, at the next bar's open

        def next_open(self) -> None:
            if self.pending is not None:
                self._act(self.pending, self.data.open[0])
                self.pending = None

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                ex = order.executed
                side = "buy" if order.isbuy() else "sell"
                when = bt.num2date(ex.dt).replace(tzinfo=UTC).timestamp() * 1000 + late
                trades.append(_trade(when, side, ex.price, ex.size, ex.comm))
            elif order.status in (order.Margin, order.Rejected, order.Canceled):
                refused.append(f"{bt.num2date(self.data.datetime[0])} {order.getstatusname()} {order.created.size}")

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=(fill == "open"))
    # PandasDirectData (itertuples) loads ~4x faster than PandasData's per-cell .iloc lookups
    cerebro.adddata(bt.feeds.PandasDirectData(dataname=frame, openinterest=-1))
    cerebro.addstrategy(MaCross)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=fee)
    cerebro.broker.set_checksubmit(False)  # all-in: cost + fee == cash up to float rounding
    if fill == "close":
        cerebro.broker.set_coc(True)
    cerebro.run()
    return _summary(trades, cerebro.broker.getvalue()) | {"refused_orders": refused}


# --- vectorbt ---------------------------------------------------------------------------------


def run_vectorbt(c: Candles, fast: int, slow: int, fee: float, fill: str, cash: float) -> Result:
    """vbt.MA crosses; from_signals with entries/exits shifted one bar and price=open for next-open."""
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    index = pd.to_datetime(c.time_ms.astype("int64"), unit="ms")
    close = pd.Series(c.close, index=index)
    fast_ma = vbt.MA.run(close, fast)
    slow_ma = vbt.MA.run(close, slow)
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    price = close
    if fill == "open":
        entries = entries.shift(1, fill_value=False)
        exits = exits.shift(1, fill_value=False)
        price = pd.Series(c.open, index=index)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=price, size=np.inf, fees=fee, init_cash=cash, freq="5min"
    )
    records, late = pf.orders.values, _late(c, fill)
    trades = [
        _trade(c.time_ms[r["idx"]] + late, "buy" if r["side"] == 0 else "sell", r["price"], r["size"], r["fees"])
        for r in records
    ]
    return _summary(trades, pf.final_value())


# --- backtesting.py ---------------------------------------------------------------------------


def run_backtesting(c: Candles, fast: int, slow: int, fee: float, fill: str, cash: float) -> Result:
    """FractionalBacktest (1e-12 units), all-but-2^-52 of equity per buy, trade_on_close for close."""
    import numpy as np
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    frame = pd.DataFrame(
        {"Open": c.open, "High": c.high, "Low": c.low, "Close": c.close, "Volume": c.volume},
        index=pd.to_datetime(c.time_ms.astype("int64"), unit="ms"),
    )

    def rolling_mean(values: np.ndarray, period: int) -> np.ndarray:
        return pd.Series(values).rolling(period).mean().to_numpy()

    class MaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(rolling_mean, self.data.Close, fast)
            self.slow = self.I(rolling_mean, self.data.Close, slow)

        def next(self) -> None:
            f0, s0, f1, s1 = self.fast[-1], self.slow[-1], self.fast[-2], self.slow[-2]
            if f0 > s0 and f1 <= s1 and not self.position:
                self.buy(size=_ALMOST_ONE)
            elif f0 < s0 and f1 >= s1 and self.position:
                self.position.close()

    backtest = FractionalBacktest(
        frame, MaCross, cash=cash, commission=fee, trade_on_close=(fill == "close"),
        exclusive_orders=False, finalize_trades=False, fractional_unit=_BACKTESTING_UNIT,
    )
    stats = backtest.run()
    trades: list[dict[str, Any]] = []
    late = _late(c, fill)
    for row in stats["_trades"].itertuples():
        trades.append(_trade(c.time_ms[row.EntryBar] + late, "buy", row.EntryPrice, row.Size, row.EntryPrice * row.Size * fee))
        trades.append(_trade(c.time_ms[row.ExitBar] + late, "sell", row.ExitPrice, row.Size, row.ExitPrice * row.Size * fee))
    for trade in stats["_strategy"]._broker.trades:  # still open at the end (prices are scaled)
        price = trade.entry_price / _BACKTESTING_UNIT
        size = trade.size * _BACKTESTING_UNIT
        trades.append(_trade(c.time_ms[trade.entry_bar] + late, "buy", price, size, price * size * fee))
    return _summary(trades, stats["Equity Final [$]"])


# --- nautilus_trader --------------------------------------------------------------------------


def run_nautilus(c: Candles, fast: int, slow: int, fee: float, fill: str, cash: float) -> Result:
    """BacktestEngine over bars; market orders fill at the signal bar's close (its bar execution).

    Quantities are rounded down to the instrument's size precision (8 decimals here), so
    equity drifts a little from the reference; next-open fills are not expressible (see
    docs/PEERS.md), so `fill="open"` is refused.
    """
    if fill != "close":
        raise SystemExit("nautilus: market orders fill at the signal bar's close; run it with --fill close")
    from decimal import ROUND_DOWN, Decimal

    import pandas as pd
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.indicators import SimpleMovingAverage
    from nautilus_trader.model.currencies import BTC, USDT
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.events import OrderFilled
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.persistence.wranglers import BarDataWrangler
    from nautilus_trader.trading.strategy import Strategy as NautilusStrategy

    size_decimals = 8
    venue = Venue("BINANCE")
    instrument = CurrencyPair(
        instrument_id=InstrumentId(Symbol("BTCUSDT"), venue), raw_symbol=Symbol("BTCUSDT"),
        base_currency=BTC, quote_currency=USDT, price_precision=2, size_precision=size_decimals,
        price_increment=Price(0.01, precision=2), size_increment=Quantity(10**-size_decimals, precision=size_decimals),
        lot_size=None, max_quantity=None, min_quantity=None, max_notional=None, min_notional=None,
        max_price=None, min_price=None, margin_init=Decimal(0), margin_maint=Decimal(0),
        maker_fee=Decimal(str(fee)), taker_fee=Decimal(str(fee)), ts_event=0, ts_init=0,
    )
    bar_type = BarType.from_str(f"{instrument.id}-5-MINUTE-LAST-EXTERNAL")
    frame = pd.DataFrame(
        {"open": c.open, "high": c.high, "low": c.low, "close": c.close, "volume": c.volume},
        index=pd.to_datetime(c.time_ms.astype("int64") + 300_000, unit="ms", utc=True),  # bars stamp their close
    )
    bars = BarDataWrangler(bar_type, instrument).process(frame)
    fills: list[dict[str, Any]] = []
    step = Decimal(1).scaleb(-size_decimals)
    fee_factor = Decimal(1) + Decimal(str(fee))

    class MaCrossConfig(StrategyConfig, frozen=True):  # type: ignore[misc,call-arg]
        pass

    class MaCross(NautilusStrategy):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(MaCrossConfig())
            self.fast = SimpleMovingAverage(fast)
            self.slow = SimpleMovingAverage(slow)
            self.prev: tuple[float, float] | None = None

        def on_start(self) -> None:
            self.register_indicator_for_bars(bar_type, self.fast)
            self.register_indicator_for_bars(bar_type, self.slow)
            self.subscribe_bars(bar_type)

        def on_bar(self, bar: Bar) -> None:
            if not self.slow.initialized:
                return
            f0, s0 = self.fast.value, self.slow.value
            prev, self.prev = self.prev, (f0, s0)
            if prev is None:
                return
            f1, s1 = prev
            flat = self.portfolio.is_flat(instrument.id)
            if f0 > s0 and f1 <= s1 and flat:
                free = self.portfolio.account(venue).balance_free(USDT).as_decimal()
                size = (free / (Decimal(str(bar.close)) * fee_factor)).quantize(step, rounding=ROUND_DOWN)
                self.submit_order(self.order_factory.market(instrument.id, OrderSide.BUY, Quantity(size, size_decimals)))
            elif f0 < s0 and f1 >= s1 and not flat:
                self.close_all_positions(instrument.id)

        def on_order_filled(self, event: OrderFilled) -> None:
            side = "buy" if event.order_side == OrderSide.BUY else "sell"
            fills.append(_trade(event.ts_event // 1_000_000, side, float(event.last_px),
                                float(event.last_qty), float(event.commission)))

    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(venue, OmsType.NETTING, AccountType.CASH, [Money(cash, USDT), Money(0, BTC)], base_currency=None)
    engine.add_instrument(instrument)
    engine.add_data(bars)
    engine.add_strategy(MaCross())
    engine.run()
    account = engine.trader.generate_account_report(venue)
    usdt = float(account[account["currency"] == "USDT"].iloc[-1]["total"])
    btc_rows = account[account["currency"] == "BTC"]
    btc = float(btc_rows.iloc[-1]["total"]) if len(btc_rows) else 0.0
    engine.dispose()
    return _summary(fills, usdt + btc * float(c.close[-1]))


PEERS: dict[str, tuple[str, Callable[..., Result]]] = {
    "backtrader": ("backtrader", run_backtrader),
    "vectorbt": ("vectorbt", run_vectorbt),
    "backtesting": ("backtesting", run_backtesting),
    "nautilus": ("nautilus_trader", run_nautilus),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--fast", type=int, default=50)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--fee", type=float, default=0.001)
    parser.add_argument("--fill", choices=("open", "close"), default="open")
    parser.add_argument("--cash", type=float, default=10_000.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object (the only output format)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar
    warnings.simplefilter("ignore")  # peers' deprecation chatter must not pollute stdout or fail runs

    module_name, run = PEERS[args.peer]
    started = time.perf_counter()
    module = __import__(module_name)
    seconds_import = time.perf_counter() - started

    started = time.perf_counter()
    candles = load_freqtrade_json(args.data)
    seconds_load = time.perf_counter() - started

    params = (candles, args.fast, args.slow, args.fee, args.fill, args.cash)
    started = time.perf_counter()
    result = run(*params)
    seconds = time.perf_counter() - started
    out: Result = {"peer": args.peer, "version": getattr(module, "__version__", "?"), "bars": len(candles.close)}
    if args.peer == "vectorbt":  # first call compiled the numba kernels; time a warm call too
        out["seconds_compute_cold"] = round(seconds, 4)
        started = time.perf_counter()
        result = run(*params)
        seconds = time.perf_counter() - started
    out.update(result)
    out.update(seconds_import=round(seconds_import, 4), seconds_load=round(seconds_load, 4), seconds_compute=round(seconds, 4))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
