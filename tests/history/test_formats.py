"""history.formats: every reader on real recorded data (converted into each format), name hints, errors."""

from __future__ import annotations

import gzip
import json
import zipfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coinwire.core.errors import InvalidInput
from coinwire.history.formats import detect_format, load_data_arg, name_hints, read_candles
from coinwire.history.store import HistoryStore
from tests.conftest import shared_data

CSV_HEADER = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"


def btc_1h_rows() -> list[list[float]]:
    rows: list[list[float]] = json.loads(shared_data("binance-spot-1h", "BTC_USDT-1h.json").read_text())
    return rows


def kline_cells(row: list[float], scale: int = 1) -> list[str]:
    """A data.binance.vision kline line's 12 cells, from a freqtrade row (times in ms * scale)."""
    t = int(row[0]) * scale
    return [str(t), *(f"{v:.8f}" for v in row[1:6]), str(t + 3_599_999 * scale), "0", "0", "0", "0", "0"]


def test_freqtrade_json_from_shared_data() -> None:
    candles = read_candles(shared_data("binance-spot-1h", "BTC_USDT-1h.json"))
    assert candles.key == ("binance", "BTC/USDT", "1h")  # exchange from the folder `binance-spot-1h`
    assert len(candles) == 5482 and candles.first == 1_606_780_800
    assert candles.close[0] == pytest.approx(19565.47)


def test_freqtrade_gzip_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-1h.json.gz"
    path.write_bytes(gzip.compress(json.dumps(btc_1h_rows()[:100]).encode()))
    candles = read_candles(path, exchange="binance")
    assert candles.key == ("binance", "BTC/USDT", "1h") and len(candles) == 100
    assert read_candles(path, exchange="kraken", symbol="XBT/USD").key == ("kraken", "XBT/USD", "1h")


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("scale", [1, 1000])  # ms, and µs as in data.binance.vision files from 2025
def test_binance_csv(tmp_path: Path, header: bool, scale: int) -> None:
    rows = btc_1h_rows()[:50]
    lines = ([CSV_HEADER] if header else []) + [",".join(kline_cells(r, scale)) for r in rows]
    path = tmp_path / "BTCUSDT-1h-2020-12.csv"
    path.write_text("\n".join(lines) + "\n")
    assert detect_format(path) == "binance_csv"
    candles = read_candles(path)
    assert candles.key == ("binance", "BTC/USDT", "1h") and len(candles) == 50
    assert candles.time.tolist() == [int(r[0]) // 1000 for r in rows]
    np.testing.assert_allclose(candles.close, [r[4] for r in rows], rtol=1e-12)


def test_binance_zip_as_downloaded(tmp_path: Path) -> None:
    path = tmp_path / "ETHBTC-1h-2020-12.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ETHBTC-1h-2020-12.csv", "\n".join(",".join(kline_cells(r)) for r in btc_1h_rows()[:24]))
    candles = read_candles(path)
    assert candles.key == ("binance", "ETH/BTC", "1h") and len(candles) == 24


def test_ccxt_json_shapes(tmp_path: Path) -> None:
    rows = btc_1h_rows()[:30]
    plain = tmp_path / "ohlcv.json"
    plain.write_text(json.dumps(rows))
    candles = read_candles(plain, exchange="binance", symbol="BTC/USDT")
    assert candles.timeframe == "1h" and len(candles) == 30  # timeframe from the rows' spacing
    wrapped = tmp_path / "dump.json"
    wrapped.write_text(json.dumps({"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "ohlcv": rows}))
    assert read_candles(wrapped).equals(candles)
    # Binance's own /api/v3/klines answer: 12 cells, prices as strings
    raw = tmp_path / "klines.json"
    raw.write_text(json.dumps([[int(r[0]), *kline_cells(r)[1:6], 0, "0", 0, "0", "0", "0"] for r in rows]))
    assert read_candles(raw, exchange="binance", symbol="BTC/USDT").equals(candles)


def trade_candles(files: list[Path]) -> dict[int, list[Decimal]]:
    """1-minute OHLCV straight from the capture's trade messages, computed independently (Decimal)."""
    out: dict[int, list[Decimal]] = {}
    for file in files:
        with gzip.open(file, "rt") as handle:
            for line in handle:
                message: dict[str, Any] = json.loads(line.split(" ", 1)[1])
                if not message.get("stream", "").endswith("@trade"):
                    continue
                trade = message["data"]
                minute = trade["T"] // 60_000 * 60
                price, size = Decimal(trade["p"]), Decimal(trade["q"])
                bar = out.get(minute)
                if bar is None:
                    out[minute] = [price, price, price, price, size]
                else:
                    bar[1], bar[2], bar[3], bar[4] = max(bar[1], price), min(bar[2], price), price, bar[4] + size
    return out


def test_raw_capture_trades_become_one_minute_candles() -> None:
    files = sorted(shared_data("binance-spot-l2").glob("*.gz"))
    [candles] = load_data_arg(files[0].parent)  # both days merged into one series
    assert candles.key == ("binance", "BTC/USDT", "1m")
    expected = trade_candles(files)
    assert candles.time.tolist() == sorted(expected)
    for i, t in enumerate(candles.time.tolist()):
        o, h, lo, c, v = (float(x) for x in expected[t])
        assert (candles.open[i], candles.high[i], candles.low[i], candles.close[i]) == (o, h, lo, c)
        assert candles.volume[i] == pytest.approx(v, rel=1e-12)
    one_day = read_candles(files[0])
    assert len(one_day) < len(candles) and detect_format(files[0]) == "binance_capture"


def test_usdm_capture_is_binanceusdm() -> None:
    [candles] = load_data_arg(shared_data("binance-usdm-l2"))
    assert candles.key == ("binanceusdm", "BTC/USDT", "1m") and len(candles) > 3


def test_stored_npy_reads_back(tmp_path: Path) -> None:
    source = read_candles(shared_data("binance-spot-1h", "ETH_USDT-1h.json"))
    info = HistoryStore(tmp_path).write(source)
    assert read_candles(info.path).equals(source)
    assert load_data_arg(tmp_path / "binance")[0].equals(source)


def test_folder_selects_by_symbol_and_timeframe() -> None:
    folder = shared_data("binance-spot-5m")
    [btc] = load_data_arg(folder, exchange="binance", symbol="BTC_USDT", timeframe="5m")
    assert btc.key == ("binance", "BTC/USDT", "5m") and len(btc) > 65_000
    assert len(load_data_arg(shared_data("binance-spot-1h"), exchange="binance")) == 24
    with pytest.raises(InvalidInput) as info:
        load_data_arg(folder, exchange="binance", symbol="BTC/USDT", timeframe="1h")
    assert info.value.code == "no_candle_files" and "BTC_USDT-5m.json" in info.value.message


def test_name_hints() -> None:
    assert name_hints("BTC_USDT-5m.json") == ("BTC/USDT", "5m")
    assert name_hints("x/BTC_USDT-1h.json.gz") == ("BTC/USDT", "1h")
    assert name_hints("BTC_USDT_USDT-1h-futures.json") == ("BTC/USDT:USDT", "1h")  # a perpetual
    assert name_hints("BTCUSDT-1m-2024-08-09.zip") == ("BTC/USDT", "1m")
    assert name_hints("prices.json") == (None, None)


# --- errors -------------------------------------------------------------------------------------------
def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def code_of(path: Path, **kwargs: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        read_candles(path, **kwargs)
    return info.value


def test_unknown_format_and_empty_file(tmp_path: Path) -> None:
    assert code_of(write(tmp_path, "BTC_USDT-1h.json", "")).code == "empty_file"
    assert code_of(write(tmp_path, "BTC_USDT-1h.txt", "hello world\n"), exchange="binance").code == "unknown_format"
    assert code_of(write(tmp_path, "BTC_USDT-5m.json", "[]"), exchange="binance").code == "empty_file"
    assert code_of(write(tmp_path, "a.json", '{"candles": 3}'), exchange="binance").code == "unknown_format"
    assert code_of(tmp_path / "absent.json").code == "file_not_found"


def test_bad_csv_line_is_named(tmp_path: Path) -> None:
    rows = btc_1h_rows()[:5]
    lines = [CSV_HEADER] + [",".join(kline_cells(r)) for r in rows]
    lines[3] = lines[3].replace(lines[3].split(",")[2], "12x.5")
    error = code_of(write(tmp_path, "BTCUSDT-1h-2020-12.csv", "\n".join(lines)))
    assert error.code == "invalid_row" and error.data["line"] == 4 and "BTCUSDT-1h-2020-12.csv:4" in error.message


def test_bad_json_row_is_named(tmp_path: Path) -> None:
    rows: list[Any] = btc_1h_rows()[:5]
    rows[2] = rows[2][:4]
    error = code_of(write(tmp_path, "BTC_USDT-1h.json", json.dumps(rows)), exchange="binance")
    assert error.code == "invalid_row" and error.data["row"] == 2
    rows[2] = [rows[3][0], "abc", 1, 1, 1, 1]
    assert code_of(write(tmp_path, "BTC_USDT-1h.json", json.dumps(rows)), exchange="binance").code == "invalid_row"


def test_bad_candle_is_named_with_the_file(tmp_path: Path) -> None:
    rows = btc_1h_rows()[:5]
    rows[1][2] = rows[1][3] - 1  # high below low
    error = code_of(write(tmp_path, "BTC_USDT-1h.json", json.dumps(rows)), exchange="binance")
    assert error.code == "invalid_candle" and error.data["row"] == 1 and "BTC_USDT-1h.json" in error.message


def test_timeframe_must_match_the_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "BTC_USDT-5m.json", json.dumps(btc_1h_rows()[:20]))
    error = code_of(path, exchange="binance")
    assert error.code == "timeframe_mismatch" and "1h apart" in error.message and "5m" in error.message
    assert code_of(path, exchange="binance", timeframe="4h").code == "timeframe_mismatch"
    assert read_candles(path, exchange="binance", timeframe="1h").timeframe == "1h"


def test_symbol_and_exchange_required(tmp_path: Path) -> None:
    path = write(tmp_path, "ohlcv.json", json.dumps(btc_1h_rows()[:3]))
    assert code_of(path, exchange="binance").code == "symbol_required"
    error = code_of(path, symbol="BTC/USDT")  # tmp folder names are no exchange ids
    assert error.code == "exchange_required" and "--exchange" in error.message


def test_folder_without_candles(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "nothing here")
    with pytest.raises(InvalidInput) as info:
        load_data_arg(tmp_path, exchange="binance")
    assert info.value.code == "no_candle_files"


def test_unmerged_parts_of_one_series_are_merged(tmp_path: Path) -> None:
    rows = btc_1h_rows()[:40]
    write(tmp_path, "BTCUSDT-1h-2020-12-01.csv", "\n".join(",".join(kline_cells(r)) for r in rows[:24]))
    write(tmp_path, "BTCUSDT-1h-2020-12-02.csv", "\n".join(",".join(kline_cells(r)) for r in rows[20:]))
    [candles] = load_data_arg(tmp_path)
    assert len(candles) == 40 and candles.exchange == "binance"
    counts: dict[str, int] = defaultdict(int)
    for c in load_data_arg(tmp_path):
        counts[c.symbol] += len(c)
    assert counts == {"BTC/USDT": 40}
