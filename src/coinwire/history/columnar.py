"""Readers of candle files whose columns have names: freqtrade's feather (Arrow IPC) files and CSV with a header row.

Why by name rather than position: freqtrade's feather files are a `date` column and OHLCV
columns, and hand-made or exported CSVs put `timestamp,open,high,low,close,volume` in any
order. Values are read as float64 (what a stored series holds); a decimal string becomes the
nearest double, the same as pyarrow and freqtrade read it. Times become integer unix seconds
(open times; a sub-second part, as in Binance's funding times `00:00:00.017`, is dropped).
Times without a zone are UTC. A missing volume (mark-price candles have none) reads as 0; a
missing price is an error naming its row.

Errors (InvalidInput): `invalid_file` (unreadable feather), `missing_column`, `invalid_row`.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np

from coinwire.core.errors import InvalidInput
from coinwire.history.candles import parse_time

__all__ = [
    "Columns",
    "FEATHER_MAGIC",
    "epoch_seconds",
    "is_header_csv",
    "read_feather",
    "read_header_csv",
]

FEATHER_MAGIC: Final = (b"ARROW1", b"FEA1")  # Arrow IPC file (feather v2, freqtrade's) and feather v1
TIME_NAMES: Final = ("date", "timestamp", "time", "datetime", "open_time", "opentime")
VALUE_NAMES: Final = ("open", "high", "low", "close", "volume")
_TIME_UNITS: Final = ((10**17, 1_000_000_000), (10**14, 1_000_000), (10**11, 1_000), (0, 1))  # ns, µs, ms, s
_EPOCH_TEXT: Final = re.compile(r"-?\d+(?:\.\d*)?")


class Columns(NamedTuple):
    """Open times (int64 unix s) and the float64 block of open, high, low, close, volume."""

    time: np.ndarray
    values: np.ndarray


def epoch_seconds(raw: np.ndarray) -> np.ndarray:
    """Unix seconds from epoch numbers in s, ms (freqtrade, CCXT, Binance), µs (Binance from 2025) or ns,
    told apart by the first value's size (a series has one unit)."""
    if not len(raw):
        return raw.astype(np.int64)
    first = abs(int(raw[0]))
    for threshold, divisor in _TIME_UNITS:
        if first >= threshold:
            return raw.astype(np.int64) // divisor
    return raw.astype(np.int64)  # pragma: no cover - the last threshold is 0


def _time_name(names: list[str], path: Path) -> str:
    lowered = {name.strip().lower(): name for name in names}
    missing = [v for v in VALUE_NAMES[:4] if v not in lowered]
    time = next((lowered[t] for t in TIME_NAMES if t in lowered), None)
    if time is None or missing:
        wanted = ([] if time else ["a time column (" + "/".join(TIME_NAMES[:3]) + ")"]) + missing
        raise InvalidInput(
            "missing_column",
            f"{path}: no {', '.join(wanted)} among the columns {names}",
            path=str(path),
            missing=wanted,
        )
    return time


def is_header_csv(first_line: bytes) -> bool:
    """True when a CSV's first line names a time column and open, high, low and close."""
    cells = {c.strip().strip('"').lower() for c in first_line.decode("utf-8", "replace").split(",")}
    return bool(cells & set(TIME_NAMES)) and set(VALUE_NAMES[:4]) <= cells


# --- feather ---------------------------------------------------------------------------------------
def read_feather(path: Path, data: bytes) -> Columns:
    """The candles of a feather file (freqtrade's `date, open, high, low, close, volume`)."""
    import pyarrow as pa
    import pyarrow.feather as feather

    try:
        table = feather.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput("invalid_file", f"{path}: not a readable feather file: {exc}", path=str(path)) from exc
    time_name = _time_name(table.column_names, path)
    lowered = {name.strip().lower(): name for name in table.column_names}
    time_column = table.column(time_name)
    rows = table.num_rows
    if pa.types.is_timestamp(time_column.type) or pa.types.is_date(time_column.type):
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
        unit = getattr(time_column.type, "unit", "ms")
        as_time = time_column if pa.types.is_timestamp(time_column.type) else time_column.cast(pa.timestamp("ms"))
        raw = as_time.cast(pa.int64())
        _no_nulls(raw, path, time_name)
        time = np.asarray(raw.to_numpy(), dtype=np.int64) // per_second[unit]
    elif pa.types.is_integer(time_column.type) or pa.types.is_floating(time_column.type):
        _no_nulls(time_column, path, time_name)
        time = epoch_seconds(np.asarray(time_column.to_numpy(), dtype=np.int64))
    else:
        time = np.array([_text_time(str(v), path, i) for i, v in enumerate(time_column.to_pylist())], dtype=np.int64)
    values = np.zeros((rows, 5))
    for index, name in enumerate(VALUE_NAMES):
        if name not in lowered:
            continue  # only volume may be absent (_time_name checked the prices)
        column = table.column(lowered[name])
        try:
            floats = column.cast(pa.float64())
        except pa.ArrowException as exc:
            raise InvalidInput(
                "invalid_row", f"{path}: column {name} is {column.type}, not numbers", path=str(path), column=name
            ) from exc
        if name != "volume":
            _no_nulls(floats, path, name)
        values[:, index] = floats.fill_null(0.0).to_numpy() if floats.null_count else floats.to_numpy()
    return Columns(time, values)


def _no_nulls(column: Any, path: Path, name: str) -> None:
    if column.null_count:
        row = int(np.argmax(np.asarray(column.is_null().to_numpy(zero_copy_only=False))))
        raise InvalidInput("invalid_row", f"{path} row {row}: {name} is empty", path=str(path), row=row, column=name)


# --- CSV with a header -------------------------------------------------------------------------------
def _text_time(text: str, path: Path, line: int) -> int:
    """Unix seconds of an ISO-8601 time (no zone: UTC) or an epoch number in s, ms, µs or ns."""
    text = text.strip().strip('"')
    if _EPOCH_TEXT.fullmatch(text):
        whole = int(text.partition(".")[0])
        return int(epoch_seconds(np.array([whole], dtype=np.int64))[0])
    try:
        return parse_time(text)  # the one reader of dates: ISO-8601, UTC when no zone is given
    except InvalidInput:
        raise InvalidInput(
            "invalid_row", f"{path}:{line}: {text!r} is neither an ISO-8601 time nor an epoch number",
            path=str(path), line=line,
        ) from None  # fmt: skip


def read_header_csv(path: Path, data: bytes) -> Columns:
    """The candles of a CSV whose first line names its columns, in any order."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", "replace")))
    header = next(reader)
    time_name = _time_name(header, path)
    index = {name.strip().lower(): i for i, name in enumerate(header)}
    time_at = index[time_name.strip().lower()]
    value_at = [index.get(name) for name in VALUE_NAMES]
    times: list[int] = []
    rows: list[list[float]] = []
    for line, cells in enumerate(reader, 2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise InvalidInput(
                "invalid_row", f"{path}:{line}: {len(cells)} cells under a header of {len(header)}",
                path=str(path), line=line,
            )  # fmt: skip
        times.append(_text_time(cells[time_at], path, line))
        row: list[float] = []
        for name, at in zip(VALUE_NAMES, value_at, strict=True):
            cell = cells[at].strip() if at is not None else ""
            if not cell and name == "volume":
                row.append(0.0)
                continue
            try:
                row.append(float(cell))
            except ValueError:
                raise InvalidInput(
                    "invalid_row", f"{path}:{line}: {name} {cell!r} is not a number", path=str(path), line=line
                ) from None
        rows.append(row)
    return Columns(np.array(times, dtype=np.int64), np.array(rows, dtype=np.float64).reshape(-1, 5))
