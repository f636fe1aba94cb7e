"""A perpetual's backtest data in freqtrade's futures layout: trade candles, mark candles and funding rates, found by name.

freqtrade keeps a perpetual `XRP/USDT:USDT` as `XRP_USDT_USDT-5m-futures` (trades),
`XRP_USDT_USDT-5m-mark` (mark price) and `XRP_USDT_USDT-8h-funding_rate` (one row per
funding time, the rate in `open`), each `.feather` or `.json`/`.json.gz`. `--data DIR` of a
perpetual backtest reads the three through `load_futures`.

Why gaps are reported and never filled: a funding time without a recorded rate has no
knowable rate, and a backtest that made one up would report funding nobody paid. The funding
times the candles span are Binance's schedule (multiples of the interval since the epoch:
00:00, 08:00, 16:00 UTC for 8h); each one without a recorded rate is part of a gap.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Final, NamedTuple

from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import FEE_SCALE
from coinwire.core.symbols import normalize_symbol
from coinwire.history.candles import Candles, timeframe_seconds
from coinwire.history.formats import name_hints, read_candles

__all__ = ["FundingRate", "FuturesData", "load_futures"]

_NS: Final = 1_000_000_000
_FLOAT_NOISE: Final = Decimal("1e-6")  # of a 1e-8 unit: far above a double's rounding of a rate, far below 1e-8
_SUFFIXES: Final = (".feather", ".json", ".json.gz")
DEFAULT_FUNDING_INTERVAL_S: Final = 28_800  # Binance's 8 hours, when no funding file says otherwise


class FundingRate(NamedTuple):
    """One recorded funding: its time (ns, to the second) and rate in 1e-8 (FEE_SCALE: 0.0001 -> 10_000)."""

    ts: int
    rate: int


class FuturesData(NamedTuple):
    """A perpetual's series for one timeframe.

    `mark_candles` is None when the folder has no mark file of that timeframe (the trade candles
    then stand in, as the documented rule says). `funding` holds every recorded rate in time order,
    also those outside the candles. `gaps` are (first, last) missing funding times in ns, inclusive,
    within the candles' span [first open, last open + timeframe).
    """

    candles: Candles
    mark_candles: Candles | None
    funding: list[FundingRate]
    gaps: list[tuple[int, int]]
    funding_interval_s: int


def _token(symbol: str) -> str:
    return symbol.replace("/", "_").replace(":", "_")


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in _SUFFIXES:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def _funding_file(folder: Path, token: str) -> Path | None:
    """`<token>-<interval>-funding_rate.*`; the shortest interval when several are present."""
    found = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.startswith(f"{token}-") and p.name.endswith(tuple(f"-funding_rate{s}" for s in _SUFFIXES))
    ]
    found.sort(key=lambda p: timeframe_seconds(name_hints(p).timeframe or "8h"))
    return found[0] if found else None


def funding_rates(candles: Candles) -> list[FundingRate]:
    """The rates of a funding series as 1e-8 integers (Binance publishes 8 decimals).

    A stored double may sit an ulp or so off its decimal (freqtrade writes -0.0021933400000000002
    for -0.00219334): that is float noise and reads as the decimal; a rate really finer than 1e-8
    is refused, never rounded."""
    out: list[FundingRate] = []
    for time, value in zip(candles.time.tolist(), candles.open.tolist(), strict=True):
        scaled = Decimal(repr(value)) * FEE_SCALE
        units = scaled.to_integral_value()
        if abs(scaled - units) > _FLOAT_NOISE:
            raise InvalidInput(
                "too_precise", f"{candles.symbol} funding rate {value!r} at {time} has more than 8 decimal places",
                symbol=candles.symbol, ts=time,
            )  # fmt: skip
        out.append(FundingRate(time * _NS, int(units)))
    return out


def funding_gaps(candles: Candles, funding: list[FundingRate], interval_s: int) -> list[tuple[int, int]]:
    """Runs of scheduled funding times within the candles' span that have no recorded rate, as (first, last) ns."""
    if not len(candles):
        return []
    start = candles.first
    end = candles.last + candles.timeframe_seconds  # the last bar closes here
    recorded = {round(f.ts / _NS / interval_s) for f in funding}
    gaps: list[tuple[int, int]] = []
    run: list[int] = []
    for slot in range(-(-start // interval_s), (end - 1) // interval_s + 1):
        if slot in recorded:
            if run:
                gaps.append((run[0] * interval_s * _NS, run[-1] * interval_s * _NS))
                run = []
        else:
            run.append(slot)
    if run:
        gaps.append((run[0] * interval_s * _NS, run[-1] * interval_s * _NS))
    return gaps


def load_futures(folder: Path | str, pair: str, timeframe: str, exchange: str | None = None) -> FuturesData:
    """The trade candles, mark candles and funding rates of `pair` (`XRP/USDT:USDT`; `XRP/USDT` means the
    linear perpetual settled in its quote) at `timeframe`, from the files in `folder` named as freqtrade names them.

    Raises InvalidInput `file_not_found` for a missing folder and `no_candle_files` (listing what is there)
    when the trade candles are absent; missing mark or funding files are not errors (None / a gap).
    """
    path = Path(folder)
    if not path.is_dir():
        raise InvalidInput("file_not_found", f"{path}: no such folder", path=str(path))
    symbol = normalize_symbol(pair)
    if ":" not in symbol:
        symbol = f"{symbol}:{symbol.partition('/')[2]}"
    timeframe_seconds(timeframe)
    token = _token(symbol)
    trades = _find(path, f"{token}-{timeframe}-futures")
    if trades is None:
        names = sorted(p.name for p in path.iterdir() if p.name.startswith(f"{token}-"))
        raise InvalidInput(
            "no_candle_files",
            f"{path}: no {token}-{timeframe}-futures.feather or .json (found: {', '.join(names) or 'nothing for ' + symbol})",
            path=str(path), symbol=symbol, timeframe=timeframe,
        )  # fmt: skip
    candles = read_candles(trades, exchange, symbol, timeframe)
    mark_path = _find(path, f"{token}-{timeframe}-mark")
    mark = read_candles(mark_path, candles.exchange, symbol, timeframe) if mark_path else None
    funding_path = _funding_file(path, token)
    funding: list[FundingRate] = []
    interval = DEFAULT_FUNDING_INTERVAL_S
    if funding_path is not None:
        series = read_candles(funding_path, candles.exchange, symbol)
        interval = series.timeframe_seconds
        funding = funding_rates(series)
    return FuturesData(candles, mark, funding, funding_gaps(candles, funding, interval), interval)
