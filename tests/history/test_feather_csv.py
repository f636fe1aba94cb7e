"""history: freqtrade feather files and CSV with a header, on the recorded USD-M futures data, value by value; their errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coinwire.core.errors import InvalidInput
from coinwire.history.candles import Candles
from coinwire.history.formats import candle_kind, detect_format, load_data_arg, read_candles
from coinwire.history.store import HistoryStore
from tests.conftest import shared_data
from tests.test_cli import coinwire

FUTURES = "binance-usdm-futures"
FILES = {
    "XRP_USDT_USDT-1h-futures.feather": ("1h", "trade", 100),
    "XRP_USDT_USDT-1h-mark.feather": ("1h", "mark", 100),
    "XRP_USDT_USDT-5m-futures.feather": ("5m", "trade", 1999),
    "XRP_USDT_USDT-8h-funding_rate.feather": ("8h", "funding_rate", 91),
    "XRP_USDT_USDT-8h-mark.feather": ("8h", "mark", 91),
}


def exact(value: object) -> Decimal:
    """A float as the exact decimal its binary value is (None: a missing value)."""
    return Decimal(0) if value is None else Decimal(float(value))  # type: ignore[arg-type]


def assert_same_as_pyarrow(path: Path, candles: Candles) -> None:
    """Every row of the file as pyarrow reads it equals the series exactly: open time (s) and the five values."""
    rows = feather.read_table(path).to_pylist()
    assert len(rows) == len(candles)
    for i, row in enumerate(rows):
        assert int(candles.time[i]) == int(row["date"].timestamp()), (path.name, i)
        for name in ("open", "high", "low", "close", "volume"):
            assert exact(getattr(candles, name)[i]) == exact(row[name]), (path.name, i, name)


def test_every_shared_futures_feather_file_reads_exactly() -> None:
    folder = shared_data(FUTURES)
    assert sorted(p.name for p in folder.glob("*.feather")) == sorted(FILES)
    for name, (timeframe, kind, rows) in FILES.items():
        path = folder / name
        assert detect_format(path) == "feather"
        candles = read_candles(path)
        assert candles.key == ("binanceusdm", "XRP/USDT:USDT", timeframe) and candles.kind == kind and len(candles) == rows
        assert_same_as_pyarrow(path, candles)


def test_every_shared_futures_feather_file_imports_exactly(tmp_path: Path) -> None:
    """`coinwire data import` of the whole folder: five series, each read back from the store as the file holds it."""
    folder = shared_data(FUTURES)
    data = tmp_path / "data"
    files = [str(folder / name) for name in FILES]
    result = coinwire("--data-dir", str(data), "data", "import", "--exchange", "binanceusdm", "--json", *files)
    assert result.returncode == 0, result.stderr
    imported = {(r["symbol"], r["timeframe"], r["kind"]): r["read"] for r in json.loads(result.stdout)}
    assert imported == {("XRP/USDT:USDT", tf, kind): rows for tf, kind, rows in FILES.values()}
    store = HistoryStore(data / "history")
    for name, (timeframe, kind, _) in FILES.items():
        assert_same_as_pyarrow(folder / name, store.load("binanceusdm", "XRP/USDT:USDT", timeframe, kind=kind))
    listed = coinwire("--data-dir", str(data), "data", "list", "--json")
    kinds = sorted((r["timeframe"], r["kind"]) for r in json.loads(listed.stdout))
    assert kinds == sorted((tf, kind) for tf, kind, _ in FILES.values())
    assert [i.kind for i in store.list()] == ["trade", "trade"]  # charts and warm-up see trade candles only


def test_funding_series_keeps_its_signed_rates() -> None:
    candles = read_candles(shared_data(FUTURES, "XRP_USDT_USDT-8h-funding_rate.feather"))
    assert candles.open[0] == 0.0001 and candles.open.min() < 0  # negative rates are kept (no OHLC checks)
    assert int(candles.time[0]) == int(datetime(2021, 11, 18, tzinfo=UTC).timestamp())  # 00:00:00.017 -> 00:00:00


def test_folder_data_arg_gives_trade_candles_only() -> None:
    """The engine's `--data DIR` sees the perpetual's trade series; its mark and funding files are read by load_futures."""
    found = load_data_arg(shared_data(FUTURES), exchange="binanceusdm")
    assert [(c.key, c.kind) for c in found] == [
        (("binanceusdm", "XRP/USDT:USDT", "1h"), "trade"),
        (("binanceusdm", "XRP/USDT:USDT", "5m"), "trade"),
    ]


def test_spot_feather_from_recorded_json(tmp_path: Path) -> None:
    """freqtrade's spot `PAIR-TF.feather` (written as freqtrade writes it) reads like the JSON file it came from."""
    source = shared_data("binance-spot-1h", "ETH_USDT-1h.json")
    rows = json.loads(source.read_text())
    table = pa.table(
        {
            "date": pa.array([r[0] for r in rows], pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("ns", tz="UTC")),
            **{name: pa.array([float(r[i]) for r in rows]) for i, name in enumerate(("open", "high", "low", "close", "volume"), 1)},
        }
    )
    folder = tmp_path / "binance"
    folder.mkdir()
    path = folder / "ETH_USDT-1h.feather"
    feather.write_feather(table, path, compression="lz4")
    candles = read_candles(path)
    from_json = read_candles(source)
    assert candles.key == from_json.key == ("binance", "ETH/USDT", "1h") and candles.kind == "trade"
    for name in ("time", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(candles, name), getattr(from_json, name))


def test_header_csv_with_iso_dates_imports_exactly(tmp_path: Path) -> None:
    """A CSV with a header in another column order, ISO-8601 times with and without a zone: exact values."""
    rows = json.loads(shared_data("binance-spot-1h", "BTC_USDT-1h.json").read_text())[:48]
    lines = ["volume,close,Date,open,low,high"]
    texts = []
    for i, r in enumerate(rows):
        moment = datetime.fromtimestamp(r[0] // 1000, UTC)
        when = moment.strftime("%Y-%m-%dT%H:%M:%SZ") if i % 2 else moment.strftime("%Y-%m-%d %H:%M:%S")
        cells = [repr(float(v)) for v in r[1:6]]
        texts.append(cells)
        lines.append(f"{cells[4]},{cells[3]},{when},{cells[0]},{cells[2]},{cells[1]}")
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(lines) + "\n")
    assert detect_format(path) == "header_csv"
    data = tmp_path / "data"
    result = coinwire(
        "--data-dir", str(data), "data", "import", "--exchange", "kraken", "--symbol", "BTC/USDT", "--json", str(path)
    )
    assert result.returncode == 0, result.stderr
    assert [(r["symbol"], r["timeframe"], r["read"]) for r in json.loads(result.stdout)] == [("BTC/USDT", "1h", 48)]
    stored = HistoryStore(data / "history").load("kraken", "BTC/USDT", "1h")
    for i, (r, cells) in enumerate(zip(rows, texts, strict=True)):
        assert int(stored.time[i]) == r[0] // 1000
        for j, name in enumerate(("open", "high", "low", "close", "volume")):
            assert Decimal(float(getattr(stored, name)[i])) == Decimal(float(Decimal(cells[j])))


def test_header_csv_epoch_times_in_s_ms_us(tmp_path: Path) -> None:
    base = 1_606_780_800
    for scale in (1, 1000, 1_000_000):
        path = tmp_path / f"BTC_USDT-1h-{scale}.csv"
        path.write_text(
            "timestamp,open,high,low,close,volume\n"
            + "".join(f"{(base + 3600 * i) * scale},1.5,2.25,1.0,2.0,10\n" for i in range(3))
        )
        candles = read_candles(path, "binance", "BTC/USDT")
        assert candles.time.tolist() == [base, base + 3600, base + 7200] and candles.high[0] == 2.25


def code_of(path: Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        read_candles(path, "binance", "BTC/USDT", "1h")
    return caught.value


def test_bad_files_have_clear_codes(tmp_path: Path) -> None:
    no_close = tmp_path / "a.csv"
    no_close.write_text("date,open,high,low,volume\n2021-01-01,1,2,0.5,3\n")
    error = code_of(no_close)
    assert error.code == "missing_column" and "close" in error.message
    bad_time = tmp_path / "b.csv"
    bad_time.write_text("date,open,high,low,close\n2021-01-01,1,2,0.5,1\nyesterday,1,2,0.5,1\n")
    error = code_of(bad_time)
    assert error.code == "invalid_row" and "b.csv:3" in error.message and "yesterday" in error.message
    bad_number = tmp_path / "c.csv"
    bad_number.write_text("date,open,high,low,close\n2021-01-01,1,2,x,1\n")
    error = code_of(bad_number)
    assert error.code == "invalid_row" and "c.csv:2" in error.message and "low" in error.message
    short = tmp_path / "d.csv"
    short.write_text("date,open,high,low,close\n2021-01-01,1,2\n")
    assert code_of(short).code == "invalid_row"
    torn = tmp_path / "BTC_USDT-1h.feather"
    torn.write_bytes(shared_data(FUTURES, "XRP_USDT_USDT-1h-futures.feather").read_bytes()[:3000])
    error = code_of(torn)
    assert error.code == "invalid_file" and "feather" in error.message
    no_price = tmp_path / "e.feather"
    feather.write_feather(pa.table({"date": pa.array([0], pa.timestamp("s")), "open": [1.0], "high": [1.0], "low": [1.0]}), no_price)
    error = code_of(no_price)
    assert error.code == "missing_column" and "close" in error.message
    empty_price = tmp_path / "f.feather"
    table = pa.table({"date": pa.array([0, 3600], pa.timestamp("s")), "open": [1.0, None], "high": [1.0, 1.0],
                      "low": [1.0, 1.0], "close": [1.0, 1.0]})  # fmt: skip
    feather.write_feather(table, empty_price)
    error = code_of(empty_price)
    assert error.code == "invalid_row" and "row 1" in error.message and "open" in error.message
    assert candle_kind("XRP_USDT_USDT-8h-funding_rate.feather") == "funding_rate"
    with pytest.raises(InvalidInput) as caught:
        candle_kind("XRP_USDT_USDT-8h-weird.feather")
    assert caught.value.code == "unknown_format"


def test_cli_import_of_a_bad_file_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_text("when,open,high,low,close\n2021-01-01,1,2,0.5,1\n")
    data = tmp_path / "data"
    result = coinwire("--data-dir", str(data), "data", "import", "--exchange", "binance", "--symbol", "BTC/USDT", str(bad))
    assert result.returncode == 2 and "missing_column" in result.stderr and "Traceback" not in result.stderr
    assert HistoryStore(data / "history").list() == []  # nothing half-written


price_text = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("99999999"), places=8).map(lambda d: f"{d:f}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(["timestamp", "open", "high", "low", "close", "volume"]),
    start_hour=st.integers(300_000, 600_000),  # 2004 to 2038: epoch units are told apart by size
    rows=st.lists(st.tuples(st.lists(price_text, min_size=4, max_size=4), price_text, st.sampled_from(range(5))), min_size=1, max_size=20),
)
def test_header_csv_any_order_any_time_spelling(tmp_path: Path, order: list[str], start_hour: int, rows: list[Any]) -> None:
    """Property: whatever the column order and time spelling (ISO naive = UTC, Z, +00:00, epoch s, ms), every value reads exactly."""
    lines = [",".join(order)]
    expected = []
    for i, (prices, volume, spelling) in enumerate(rows):
        ts = (start_hour + i) * 3600
        moment = datetime.fromtimestamp(ts, UTC)
        when = [moment.strftime("%Y-%m-%d %H:%M:%S"), moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                moment.isoformat(), str(ts), str(ts * 1000)][spelling]  # fmt: skip
        ordered = sorted(prices, key=Decimal)
        cells = {"timestamp": when, "open": ordered[1], "high": ordered[3], "low": ordered[0], "close": ordered[2], "volume": volume}
        lines.append(",".join(cells[name] for name in order))
        expected.append((ts, [float(cells[name]) for name in ("open", "high", "low", "close", "volume")]))
    path = tmp_path / "any.csv"
    path.write_text("\n".join(lines) + "\n")
    candles = read_candles(path, "binance", "BTC/USDT", "1h")
    assert candles.time.tolist() == [ts for ts, _ in expected]
    got = np.stack([candles.open, candles.high, candles.low, candles.close, candles.volume], axis=1).tolist()
    assert got == [values for _, values in expected]
