"""An independent pandas rollup of a freqtrade candle file, for tests/core/test_rollup_data.py; prints JSON.

Usage (in .venv-peers, which has pandas):

    .venv-peers/bin/python benchmarks/peers/pandas_resample.py FILE TIMEFRAME TZ [TIMEFRAME TZ ...]

TIMEFRAME is 4h, 1d or 1w. Prints `{"<timeframe> <tz>": [[start_s, open, high, low, close, volume], ...]}`
with every bucket that holds at least one candle.

How each is computed, without coinwire:
- 1d: `resample("1D")` on the index converted to the zone (pandas makes DST days 23 or 25 hours).
- 1w: `resample("W-MON", closed="left", label="left")`: weeks starting Monday 00:00 local.
- 4h: grouped by the local wall clock floored to 4 hours, labels localised back to the zone.
  Not `resample("4h")`: for hour frequencies pandas counts absolute hours from the first
  day's local midnight, so after a DST change its buckets start at 01:00, 05:00, ... local;
  coinwire's 4h buckets follow the wall clock (00:00, 04:00, ...) and nest in local days.
"""

from __future__ import annotations

import json
import sys

import pandas as pd

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def load(path: str) -> pd.DataFrame:
    with open(path) as handle:
        rows = json.load(handle)
    frame = pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "volume"])
    frame.index = pd.to_datetime(frame.pop("time"), unit="ms", utc=True)
    return frame


def resample(frame: pd.DataFrame, timeframe: str, tz: str) -> list[list[float]]:
    local = frame.tz_convert(tz)
    if timeframe == "1d":
        out = local.resample("1D").agg(AGG)
        counts = local["open"].resample("1D").size()
    elif timeframe == "1w":
        out = local.resample("W-MON", closed="left", label="left").agg(AGG)
        counts = local["open"].resample("W-MON", closed="left", label="left").size()
    elif timeframe == "4h":
        wall = local.index.tz_localize(None).floor("4h")
        grouped = local.groupby(wall, sort=True)
        out = grouped.agg(AGG)
        counts = grouped.size()
        out.index = out.index.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        counts.index = out.index
    else:
        raise SystemExit(f"unsupported timeframe {timeframe}")
    out = out[counts.to_numpy() > 0]
    starts = (out.index.tz_convert("UTC").asi8 // 1_000_000_000).tolist()
    columns = [out[name].astype(float).tolist() for name in ("open", "high", "low", "close", "volume")]
    return [[t, *values] for t, *values in zip(starts, *columns, strict=True)]


def main(argv: list[str]) -> None:
    path, pairs = argv[0], argv[1:]
    frame = load(path)
    result = {f"{tf} {tz}": resample(frame, tf, tz) for tf, tz in zip(pairs[::2], pairs[1::2], strict=True)}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
