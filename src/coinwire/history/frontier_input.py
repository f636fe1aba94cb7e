"""Closes of several assets for the efficient frontier: read from files or the history store, aligned, windowed.

The I/O side of `coinwire.core.frontier`, shared by the CLI, the API and the strategy: files go
through the readers `coinwire run --data` uses (`history.formats`), stored series through
`HistoryStore`; then `core.frontier` aligns them on shared timestamps and estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from coinwire.core import frontier as fr
from coinwire.core.errors import InvalidInput
from coinwire.core.symbols import normalize_symbol
from coinwire.history.candles import Candles, timeframe_seconds
from coinwire.history.formats import load_data_arg, read_files
from coinwire.history.store import HistoryStore

__all__ = ["UNNAMED_EXCHANGE", "estimates_from_candles", "load_from_files", "load_from_store", "parse_window"]

UNNAMED_EXCHANGE = "files"  # labels candle files whose exchange nothing says: a frontier compares assets, not exchanges


def parse_window(text: str | None) -> int | None:
    """`180d` -> seconds, `all` (or None) -> None: any duration like 12h, 30d or 4w."""
    if text is None or text == "all":
        return None
    try:
        return timeframe_seconds(text)
    except InvalidInput:
        raise InvalidInput(
            "invalid_window", f"window must be a duration like 180d, 12h or 4w, or 'all'; got {text!r}", window=str(text)
        ) from None


def _pick(candles: list[Candles], symbols: Sequence[str] | None, timeframe: str | None, where: str) -> list[Candles]:
    if timeframe is not None:
        timeframe_seconds(timeframe)
        candles = [c for c in candles if c.timeframe == timeframe]
    timeframes = sorted({c.timeframe for c in candles}, key=timeframe_seconds)
    if len(timeframes) > 1:
        raise InvalidInput(
            "mixed_timeframes", f"{where} holds several timeframes ({', '.join(timeframes)}): pass --timeframe"
        )
    by_symbol = {c.symbol: c for c in candles}
    if not symbols:
        return sorted(by_symbol.values(), key=lambda c: c.symbol)
    wanted = [normalize_symbol(s) for s in symbols]
    if len(set(wanted)) != len(wanted):
        _duplicate(wanted)
    missing = [s for s in wanted if s not in by_symbol]
    if missing:
        have = ", ".join(sorted(by_symbol)) or "nothing"
        raise InvalidInput(
            "unknown_asset", f"no {timeframe + ' ' if timeframe else ''}candles of {', '.join(missing)} in {where} (found: {have})",
            assets=missing,
        )
    return [by_symbol[s] for s in wanted]


def _duplicate(wanted: list[str]) -> None:
    dup = next(s for s in wanted if wanted.count(s) > 1)
    raise InvalidInput("duplicate_assets", f"{dup} is listed twice", asset=dup)


def load_from_files(
    paths: Sequence[str | Path], symbols: Sequence[str] | None = None, timeframe: str | None = None,
    exchange: str | None = None,
) -> list[Candles]:
    """Candles of the chosen symbols from files and folders (every candle file of a folder).

    Why no exchange is needed: the frontier compares assets, so a folder named `mydata` is read
    as it is. `exchange`, when given, labels every file, as `coinwire run --data` does."""
    if not paths:
        raise InvalidInput("no_candle_files", "give candle files or a folder of them")
    found: list[Candles] = []
    files = [Path(p) for p in paths]
    for folder in (p for p in files if p.is_dir()):
        found.extend(load_data_arg(folder, exchange, timeframe=timeframe, default_exchange=UNNAMED_EXCHANGE))
    plain = [p for p in files if not p.is_dir()]
    for path in plain:
        if not path.exists():
            raise InvalidInput("file_not_found", f"{path}: no such file or folder", path=str(path))
    if plain:
        found.extend(read_files(plain, exchange, default_exchange=UNNAMED_EXCHANGE))
    return _pick(found, symbols, timeframe, ", ".join(str(p) for p in paths))


def load_from_store(store: HistoryStore, exchange: str, symbols: Sequence[str], timeframe: str) -> list[Candles]:
    """Stored candles of each symbol (`history_missing` names what is stored instead)."""
    wanted = [normalize_symbol(s) for s in symbols]
    if len(set(wanted)) != len(wanted):
        _duplicate(wanted)
    return [store.load(exchange, s, timeframe) for s in wanted]


def estimates_from_candles(
    candles: Sequence[Candles],
    window: str | None = "180d",
    covariance: str = "sample",
    returns: str = "simple",
) -> fr.Estimates:
    """Align the series on their shared open times, keep the last `window`, estimate (annualised by the timeframe)."""
    if len(candles) < 2:
        raise InvalidInput("too_few_assets", f"a portfolio needs at least 2 assets, got {len(candles)}")
    timeframes = {c.timeframe for c in candles}
    if len(timeframes) > 1:
        raise InvalidInput("mixed_timeframes", f"the assets come in several timeframes: {', '.join(sorted(timeframes))}")
    seconds = parse_window(window)
    assets = [c.symbol for c in candles]
    times, prices = fr.align_closes(assets, [c.time for c in candles], [c.close for c in candles])
    part = fr.window_slice(times, seconds)
    return fr.estimate(assets, prices[part], fr.periods_per_year(timeframe_seconds(candles[0].timeframe)), covariance, returns)
