"""HistoryStore: candle series on disk, one memory-mappable NumPy `.npy` file per exchange/symbol/timeframe.

Why `.npy` of a structured array: loading is a header read plus a memory map, so a million
bars are ready in milliseconds and only the pages a backtest touches are ever read; the
format is NumPy's own, documented and readable without coinwire. Layout:
`<root>/<exchange>/<BASE>_<QUOTE>-<timeframe>.npy` (freqtrade-like names); a perpetual's
series are `<BASE>_<QUOTE>_<SETTLE>-<timeframe>[-mark|-funding_rate|...].npy`, its trade
candles without a suffix (freqtrade's futures layout, less `-futures`).

Writes are atomic (temporary file, fsync, `os.replace`) and serialised per series with an
advisory lock, so a reader sees the old series or the new one, never half of either, and two
imports into one series cannot lose each other's bars.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.symbols import normalize_symbol
from coinwire.history.candles import KINDS, RECORD_DTYPE, Candles, concat, format_time, timeframe_seconds

__all__ = ["HistoryStore", "SeriesInfo", "default_history_root"]

_FILE: Final = re.compile(
    r"(?P<symbol>[A-Z0-9]+_[A-Z0-9]+)(?:_(?P<settle>[A-Z0-9]+))?-(?P<timeframe>[1-9][0-9]*[smhdw])(?:-(?P<kind>[a-z_]+))?\.npy"
)
_EXCHANGE: Final = re.compile(r"[a-z0-9][a-z0-9_-]*")


class SeriesInfo(msgspec.Struct, frozen=True):
    """What one stored series holds: bar count and the open times (unix s) of its first and last bar."""

    exchange: str
    symbol: str
    timeframe: str
    rows: int
    first: int | None
    last: int | None
    path: str
    kind: str = "trade"  # history.candles.KINDS

    def describe(self) -> str:
        span = f"{format_time(self.first or 0)} .. {format_time(self.last or 0)}" if self.rows else "empty"
        kind = "" if self.kind == "trade" else f" {self.kind}"
        return f"{self.exchange} {self.symbol} {self.timeframe}{kind} ({self.rows} bars, {span})"


def default_history_root(data_path: Path) -> Path:
    """Where history lives under the data directory (`Settings.data_path`)."""
    return data_path / "history"


def path_inside(text: str, root: Path) -> Path:
    """The `data` path `text`, resolved, when it lies inside `root`; else `file_not_found`.

    For callers who may not read the server's other files: a path outside `root` is refused with
    the same code and message as a missing one, so the answer never tells whether it exists.
    """
    path = Path(text).expanduser().resolve()
    if not path.is_relative_to(root.expanduser().resolve()) or not path.exists():
        raise InvalidInput("file_not_found", f"data {text}: no such file or folder on the server", path=text)
    return path


class HistoryStore:
    """Candle series under `root`; see the module docstring for the layout and guarantees."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # --- paths ----------------------------------------------------------------------------------
    def path(self, exchange: str, symbol: str, timeframe: str, kind: str = "trade") -> Path:
        if not isinstance(exchange, str) or not _EXCHANGE.fullmatch(exchange):
            raise InvalidInput("invalid_exchange", f"exchange must be a lowercase id like 'binance', got {exchange!r}")
        timeframe_seconds(timeframe)
        if kind not in KINDS:
            raise InvalidInput("invalid_kind", f"candle kind must be one of {', '.join(KINDS)}, got {kind!r}", kind=kind)
        token = normalize_symbol(symbol).replace("/", "_").replace(":", "_")
        return self.root / exchange / f"{token}-{timeframe}{'' if kind == 'trade' else '-' + kind}.npy"

    # --- reading --------------------------------------------------------------------------------
    def has(self, exchange: str, symbol: str, timeframe: str, kind: str = "trade") -> bool:
        return self.path(exchange, symbol, timeframe, kind).is_file()

    def load(
        self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None,
        kind: str = "trade",
    ) -> Candles:
        """Bars with start <= open time < end (unix s; None: unbounded), memory-mapped and read-only.

        Raises NotFound `history_missing` naming what was asked for and what is stored
        instead, when the series is absent or has no bar in the range.
        """
        path = self.path(exchange, symbol, timeframe, kind)
        symbol = normalize_symbol(symbol)
        try:
            records = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise self._missing(exchange, symbol, timeframe, start, end, None) from None
        except ValueError as exc:
            raise InvalidInput("corrupt_history", f"{path} is not a readable .npy file: {exc}", path=str(path)) from exc
        if records.dtype != RECORD_DTYPE:
            raise InvalidInput("corrupt_history", f"{path} holds {records.dtype}, not candle records", path=str(path))
        candles = Candles.from_records(exchange, symbol, timeframe, records, validate=False, kind=kind)
        if start is None and end is None:
            return candles
        part = candles.slice(start, end)
        if not len(part):
            raise self._missing(exchange, symbol, timeframe, start, end, candles)
        return part

    def _missing(
        self, exchange: str, symbol: str, timeframe: str, start: int | None, end: int | None, stored: Candles | None
    ) -> NotFound:
        wanted = f"{exchange} {symbol} {timeframe}"
        if start is not None or end is not None:
            wanted += f" from {format_time(start) if start is not None else 'the start'}"
            wanted += f" to {format_time(end) if end is not None else 'the end'}"
        if stored is not None and len(stored):
            have = f"the stored series covers {format_time(stored.first)} .. {format_time(stored.last)}"
        else:
            others = [info.describe() for info in self.list() if info.symbol == symbol or info.exchange == exchange]
            have = "stored: " + "; ".join(others) if others else f"nothing is stored for {exchange} or {symbol}"
            if not self.list():
                have = f"the history store at {self.root} is empty"
        return NotFound(
            "history_missing",
            f"no history for {wanted}: {have}. Import it with `coinwire data import FILE` "
            f"or `coinwire data download {exchange} {symbol} --timeframe {timeframe} --since DATE`",
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
        )

    def list(self, kinds: tuple[str, ...] = ("trade",)) -> list[SeriesInfo]:
        """Every stored series of `kinds`, sorted by exchange, symbol, timeframe length and kind.

        Trade candles by default: charts and warm-up read those; a perpetual's mark and funding
        series are listed when asked for (`coinwire data list`)."""
        out: list[SeriesInfo] = []
        if not self.root.is_dir():
            return out
        for exchange_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and _EXCHANGE.fullmatch(p.name)):
            for path in exchange_dir.iterdir():
                match = _FILE.fullmatch(path.name)
                if match is None or (match["kind"] or "trade") not in kinds:
                    continue
                try:
                    records = np.load(path, mmap_mode="r", allow_pickle=False)
                except ValueError:
                    continue  # not ours (or torn by a crash outside os.replace): `load` reports it
                rows = len(records)
                out.append(
                    SeriesInfo(
                        exchange=exchange_dir.name,
                        symbol=normalize_symbol(match["symbol"] + (f":{match['settle']}" if match["settle"] else "")),
                        timeframe=match["timeframe"],
                        rows=rows,
                        first=int(records["time"][0]) if rows else None,
                        last=int(records["time"][-1]) if rows else None,
                        path=str(path),
                        kind=match["kind"] or "trade",
                    )
                )
        out.sort(key=lambda i: (i.exchange, i.symbol, timeframe_seconds(i.timeframe), KINDS.index(i.kind)))
        return out

    # --- writing --------------------------------------------------------------------------------
    def write(self, candles: Candles, merge: bool = True) -> SeriesInfo:
        """Store a series, merged with what is stored (the new bars win on equal times) unless
        merge=False replaces it; returns what is stored afterwards."""
        path = self.path(*candles.series_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            if merge and path.exists():
                stored = self.load(*candles.key, kind=candles.kind)
                candles = concat([stored, candles])
            _atomic_save(path, candles.to_records())
        return SeriesInfo(
            exchange=candles.exchange,
            symbol=candles.symbol,
            timeframe=candles.timeframe,
            rows=len(candles),
            first=candles.first if len(candles) else None,
            last=candles.last if len(candles) else None,
            path=str(path),
            kind=candles.kind,
        )

    def delete(self, exchange: str, symbol: str, timeframe: str, kind: str = "trade") -> bool:
        """Remove a stored series; False when there was none."""
        path = self.path(exchange, symbol, timeframe, kind)
        with _locked(path):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
        return True


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `<file>.lock` for the duration of a read-merge-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _atomic_save(path: Path, records: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, records, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
