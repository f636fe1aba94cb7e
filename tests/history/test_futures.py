"""history.futures.load_futures on the recorded XRP/USDT:USDT perpetual: files found by name, exact funding, gaps stated."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.feather as feather
import pytest

from coinwire.core.errors import InvalidInput
from coinwire.history.futures import FundingRate, load_futures
from tests.conftest import shared_data

FUTURES = "binance-usdm-futures"
NS = 10**9


def ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * NS  # type: ignore[misc]


def recorded_funding() -> list[FundingRate]:
    """The funding file as pyarrow reads it: time to the second, rate as Binance's 8-decimal number."""
    rows = feather.read_table(shared_data(FUTURES, "XRP_USDT_USDT-8h-funding_rate.feather")).to_pylist()
    return [FundingRate(int(r["date"].timestamp()) * NS, int(Decimal(f"{r['open']:.8f}") * 10**8)) for r in rows]


def test_five_minute_perpetual_with_funding_gap_and_no_mark_file() -> None:
    data = load_futures(shared_data(FUTURES), "XRP/USDT:USDT", "5m")
    assert data.candles.key == ("binanceusdm", "XRP/USDT:USDT", "5m") and len(data.candles) == 1999  # from the folder name
    assert data.mark_candles is None  # the folder has 1h and 8h mark files only
    assert data.funding == recorded_funding() and len(data.funding) == 91
    assert data.funding[0] == FundingRate(ns(2021, 11, 18), 10_000)  # 0.0001
    assert min(f.rate for f in data.funding) == -219_334  # stored as -0.0021933400000000002
    assert data.funding_interval_s == 28_800
    # the candles start 2021-11-15 00:00, the funding record 2021-11-18 00:00: 8 funding times unknown
    assert data.gaps == [(ns(2021, 11, 15), ns(2021, 11, 17, 16))]


def test_hourly_perpetual_with_mark_candles() -> None:
    data = load_futures(shared_data(FUTURES), "xrp_usdt:usdt", "1h", exchange="binanceusdm")
    assert data.candles.key == ("binanceusdm", "XRP/USDT:USDT", "1h") and data.candles.kind == "trade"
    assert data.mark_candles is not None and data.mark_candles.kind == "mark" and len(data.mark_candles) == 100
    assert data.mark_candles.key == data.candles.key
    assert data.gaps == [(ns(2021, 11, 17, 8), ns(2021, 11, 17, 16))]  # candles from 11-17 01:00


def test_spot_spelling_means_the_linear_perpetual() -> None:
    assert load_futures(shared_data(FUTURES), "XRP/USDT", "1h").candles.symbol == "XRP/USDT:USDT"


def write_json(folder: Path, name: str, source: str) -> None:
    """A feather file rewritten as freqtrade's JSON layout: [[time ms, o, h, l, c, v], ...]."""
    rows = feather.read_table(shared_data(FUTURES, source)).to_pylist()
    body = [[int(r["date"].timestamp() * 1000), r["open"], r["high"], r["low"], r["close"], r["volume"] or 0] for r in rows]
    (folder / name).write_text(json.dumps(body))


def test_json_layout_and_a_missing_funding_row_is_a_gap(tmp_path: Path) -> None:
    write_json(tmp_path, "XRP_USDT_USDT-1h-futures.json", "XRP_USDT_USDT-1h-futures.feather")
    write_json(tmp_path, "XRP_USDT_USDT-1h-mark.json", "XRP_USDT_USDT-1h-mark.feather")
    rows = feather.read_table(shared_data(FUTURES, "XRP_USDT_USDT-8h-funding_rate.feather")).to_pylist()
    kept = [[int(r["date"].timestamp() * 1000), r["open"], 0, 0, 0, 0] for r in rows]
    del kept[3]  # 2021-11-19 00:00 lost
    (tmp_path / "XRP_USDT_USDT-8h-funding_rate.json").write_text(json.dumps(kept))
    data = load_futures(tmp_path, "XRP/USDT:USDT", "1h", exchange="binanceusdm")
    assert data.mark_candles is not None and len(data.candles) == len(data.mark_candles) == 100
    assert len(data.funding) == 90 and ns(2021, 11, 19) not in {f.ts for f in data.funding}
    assert data.gaps == [(ns(2021, 11, 17, 8), ns(2021, 11, 17, 16)), (ns(2021, 11, 19), ns(2021, 11, 19))]


def test_no_funding_file_is_one_gap_over_the_candles(tmp_path: Path) -> None:
    write_json(tmp_path, "XRP_USDT_USDT-1h-futures.json", "XRP_USDT_USDT-1h-futures.feather")
    data = load_futures(tmp_path, "XRP/USDT:USDT", "1h", exchange="binanceusdm")
    assert data.funding == [] and data.mark_candles is None
    assert data.gaps == [(ns(2021, 11, 17, 8), ns(2021, 11, 21))]  # every scheduled time from 01:00 to 05:00 on 11-21


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_futures(tmp_path / "nowhere", "XRP/USDT:USDT", "1h")
    assert caught.value.code == "file_not_found"
    with pytest.raises(InvalidInput) as caught:
        load_futures(shared_data(FUTURES), "XRP/USDT:USDT", "15m")
    assert caught.value.code == "no_candle_files" and "XRP_USDT_USDT-1h-futures.feather" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        load_futures(shared_data(FUTURES), "XRP/USDT:USDT", "1M")
    assert caught.value.code == "invalid_timeframe"
    write_json(tmp_path, "XRP_USDT_USDT-1h-futures.json", "XRP_USDT_USDT-1h-futures.feather")
    (tmp_path / "XRP_USDT_USDT-8h-funding_rate.json").write_text(json.dumps([[1637193600000, 0.000100001, 0, 0, 0, 0]]))
    with pytest.raises(InvalidInput) as caught:
        load_futures(tmp_path, "XRP/USDT:USDT", "1h", exchange="binanceusdm")
    assert caught.value.code == "too_precise"
