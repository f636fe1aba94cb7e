"""A run's 15-minute portfolio candles in its report: equal to an independent valuation of its fills at recorded prices."""

from __future__ import annotations

import json
from bisect import bisect_right
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import numpy as np

from coinwire.engine.backtest import BacktestConfig, Series
from coinwire.engine.report import MAX_EQUITY_POINTS
from coinwire.engine.runs import run_backtest
from coinwire.engine.strategy import Strategy
from coinwire.strategies.registry import load_strategy
from tests.conftest import shared_data
from tests.engine.test_cli_run import coinwire

B = 900  # seconds in a bucket
NS = 10**9
START_5M = 1_609_459_200  # 2021-01-01 00:00 UTC


def recorded(timeframe: str, symbol: str = "BTC_USDT") -> Series:
    rows = np.array(json.loads((shared_data() / f"binance-spot-{timeframe}" / f"{symbol}-{timeframe}.json").read_bytes()), dtype=float)
    return Series(symbol.replace("_", "/"), timeframe, (rows[:, 0] // 1000).astype(np.int64), *(rows[:, k] for k in range(1, 6)))


def q(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN).normalize()


def independent_candles(report: dict[str, Any], s: Series, balances: dict[str, str]) -> list[list[Any]]:
    """Every bucket of the run from the report's trades and the recorded candles alone, valued exactly at each instant."""
    base, quote = s.symbol.split("/")
    opens, closes, close_s = s.open.tolist(), s.close.tolist(), (s.close_ns // NS).tolist()
    start, end = report["start"], report["end"]
    fills = [(t["time"], t["side"], Decimal(t["price"]), Decimal(t["size"]), Decimal(t["fee"]), t["fee_currency"])
             for t in report["trades"]]
    held = {base: Decimal(balances.get(base, "0")), quote: Decimal(balances.get(quote, "0"))}

    def price(ts: int) -> Decimal:  # the newest close at or before ts, the first open before any
        i = bisect_right(close_s, ts) - 1
        return Decimal(repr(opens[0] if i < 0 else closes[i]))

    def value(ts: int) -> Decimal:
        return held[quote] + held[base] * price(ts)

    instants = sorted({t for t in close_s if start < t <= end} | {f[0] for f in fills})
    out: list[list[Any]] = []
    first_end = start // B * B + B  # a start at a boundary opens the bucket after it (with what happens at the start)
    opening = value(start)
    bucket_end, o, h, lo, vol, k = first_end, opening, opening, opening, Decimal(0), 0
    last = opening
    for ts in [*instants, None]:
        while (ts is None and bucket_end <= end) or (ts is not None and ts > bucket_end):
            out.append([bucket_end - B, *(str(q(x)) for x in (o, h, lo, last, vol))])
            bucket_end += B
            o = h = lo = last
            vol = Decimal(0)
        if ts is None:
            break
        while k < len(fills) and fills[k][0] == ts:
            _, side, p, size, fee, fee_currency = fills[k]
            sign = 1 if side == "buy" else -1
            held[base] += sign * size
            held[quote] -= sign * p * size
            held[fee_currency] -= fee
            vol += p * size
            k += 1
        last = value(ts)
        h, lo = max(h, last), min(lo, last)
    if end % B:  # the run ended inside a bucket: that bucket so far
        out.append([bucket_end - B, *(str(q(x)) for x in (o, h, lo, last, vol))])
    return out


def normalised(candles: list[list[Any]]) -> list[list[Any]]:
    return [[c[0], *(str(Decimal(x).normalize()) for x in c[1:])] for c in candles]


def test_a_backtest_on_5m_candles_reports_the_independent_candles_exactly() -> None:
    s = recorded("5m")
    balances = {"USDT": "10000"}
    config = BacktestConfig(exchange="binance", balances=balances, fee="0.001", start=START_5M, end=START_5M + 20 * 86400)
    outcome, _ = run_backtest(load_strategy("ma_cross"), {"fast": "5", "slow": "20", "timeframe": "5m"}, [s], config)
    rep = outcome.report
    assert rep is not None and len(rep["trades"]) > 20
    block = rep["portfolio"]
    assert block["timeframe"] == "15m" and block["currency"] == "USDT"
    candles = block["candles"]
    assert len(candles) == 20 * 96  # every bucket of the 20 days, none before the start
    assert candles[0][0] == START_5M and all(b[0] - a[0] == B for a, b in zip(candles, candles[1:], strict=False))
    assert all(isinstance(c[0], int) and all(isinstance(x, str) and "e" not in x.lower() for x in c[1:]) for c in candles)
    assert normalised(candles) == independent_candles(rep, s, balances)
    assert Decimal(candles[-1][4]) == q(Decimal(rep["final_equity_exact"]))
    for a, b in zip(candles, candles[1:], strict=False):  # the next bucket opens at the previous close
        assert a[4] == b[1]
    for c in candles:
        o, h, lo, close, _ = (Decimal(x) for x in c[1:])
        assert lo <= min(o, close) and h >= max(o, close)
    traded = sum(Decimal(t["price"]) * Decimal(t["size"]) for t in rep["trades"])
    assert abs(sum(Decimal(c[5]) for c in candles) - traded) <= len(candles) * Decimal("0.5e-8")  # each rounded half-even


class BuyAtHourThenSell(Strategy):
    """Buys with half the quote at the open of candle 3 (a 15-minute boundary) and sells it all at candle 6's open."""

    def on_start(self) -> None:
        self.bar = 0
        self.subscribe_candles("BTC/USDT", "1h", self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        self.bar += 1
        if self.bar == 2:
            self.buy("BTC/USDT", funds=self.balance("USDT") / 2)
        elif self.bar == 5:
            self.sell("BTC/USDT", size=self.balance("BTC"))


def test_hourly_data_gives_flat_candles_and_a_fill_at_a_boundary_counts_in_the_bucket_ending_there() -> None:
    s = recorded("1h")
    start = int(s.time_ns[100] // NS)
    balances = {"USDT": "10000"}
    config = BacktestConfig(exchange="binance", balances=balances, fee="0.001", start=start, end=start + 24 * 3600)
    outcome, _ = run_backtest(BuyAtHourThenSell, {}, [s], config)
    rep = outcome.report
    assert rep is not None
    candles = rep["portfolio"]["candles"]
    assert normalised(candles) == independent_candles(rep, s, balances)
    assert len(candles) == 24 * 4 and candles[0][0] == start
    buy, sell = rep["trades"]
    assert buy["time"] == start + 2 * 3600 and sell["time"] == start + 5 * 3600  # both at an hour's open: a boundary
    by_open = {c[0]: c for c in candles}
    for fill in (buy, sell):
        at = by_open[fill["time"] - B]  # the bucket that ENDS at the fill
        assert Decimal(at[5]) == q(Decimal(fill["price"]) * Decimal(fill["size"]))
        assert Decimal(by_open[fill["time"]][5]) == 0  # not the one that opens there
    assert sum(Decimal(c[5]) != 0 for c in candles) == 2
    # between two hourly prices: three flat candles at the last value, then the one whose end carries the next close
    for c in candles:
        if c[0] % 3600 != 2700 and Decimal(c[5]) == 0:
            assert c[1] == c[2] == c[3] == c[4]
    assert any(c[1] != c[4] for c in candles if c[0] % 3600 == 2700)


def test_cli_json_carries_every_candle_beyond_the_equity_cap(tmp_path: Path) -> None:
    data = shared_data() / "binance-spot-1h" / "BTC_USDT-1h.json"
    done = coinwire(tmp_path, "run", "ma_cross", "-m", "backtest", "--data", str(data), "--balance", "binance:USDT=10000",
                    "--param", "fast=20", "--param", "slow=50", "--param", "timeframe=1h", "--json", "--no-save",
                    "--report", str(tmp_path / "report.html"))
    assert done.returncode == 0, done.stderr
    rep = json.loads(done.stdout)
    candles = rep["portfolio"]["candles"]
    assert rep["equity_sampled_from"] > MAX_EQUITY_POINTS >= len(rep["equity"])
    assert len(candles) == (rep["end"] - rep["start"]) // B > 4 * MAX_EQUITY_POINTS  # uncapped: every bucket
    assert Decimal(candles[-1][4]) == q(Decimal(rep["final_equity_exact"]))


async def test_a_paper_run_reports_the_same_candles_as_the_l2_backtest_of_its_recording(tmp_path: Path) -> None:
    """One clock, one rule: the paper run over a recording and the backtest of it chart the same portfolio."""
    from coinwire.engine.runs import finish_backtest, prepare_any_backtest
    from coinwire.services.paper_runs import finish_paper
    from tests.engine.test_paper import FUNDS, PROBE, capture, paper_session

    config = BacktestConfig(exchange="binance", balances=FUNDS, fee="0.001")
    prepared = prepare_any_backtest(load_strategy(PROBE), {}, [str(shared_data("binance-spot-l2"))], config, tmp_path)
    backtest = finish_backtest(prepared).report
    run, _, _ = await paper_session(tmp_path, load_strategy(PROBE), capture())
    paper = finish_paper(run, "l2_probe", {}).report
    assert backtest is not None and paper is not None and len(paper["trades"]) >= 40
    candles = paper["portfolio"]["candles"]
    assert paper["portfolio"] == backtest["portfolio"] and paper["portfolio"]["currency"] == "USDT"
    assert candles[0][0] == paper["start"] // B * B and Decimal(candles[-1][4]) == q(Decimal(paper["final_equity_exact"]))
    assert abs(sum(Decimal(c[5]) for c in candles) - sum(Decimal(t["price"]) * Decimal(t["size"]) for t in paper["trades"])) \
        <= len(candles) * Decimal("0.5e-8")


def test_a_perpetual_runs_candles_close_at_its_exact_equity_with_unrealised_pnl(tmp_path: Path) -> None:
    """A leveraged long: each hour's candle closes at the report's exact equity point there (funding paid, PnL at the close)."""
    from tests.engine.test_perp_backtest import XRP, LongAt, config, futures_dir, load_futures, run

    data = load_futures(futures_dir(), XRP, "1h")
    start = int(data.candles.time[0])
    outcome, _ = run(LongAt, {"leverage": "3", "at": str(start + 3600)}, [str(futures_dir())], config(), tmp_path)
    assert outcome.status == "finished", outcome.error
    rep = outcome.report
    candles = rep["portfolio"]["candles"]
    assert len(candles) == (rep["end"] - rep["start"]) // B and candles[0][0] == rep["start"]
    closing = {c[0] + B: Decimal(c[4]) for c in candles}
    points = rep["equity"][1:]
    assert len(points) >= 100
    for t, value in points:
        assert closing[t] == q(Decimal(value)), t
    assert Decimal(candles[-1][4]) == q(Decimal(rep["final_equity_exact"]))
    fill = rep["trades"][0]
    at = next(c for c in candles if c[0] + B == fill["time"])
    assert Decimal(at[5]) == q(Decimal(fill["price"]) * Decimal(fill["size"]))
