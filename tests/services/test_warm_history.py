"""Warm-up sources: the history store (rolled up), a CCXT download from a local Binance, and their order in `load_warmup`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from coinwire.config import ExchangeConfig
from coinwire.engine.warmup import Need, describe, load_warmup, unavailable
from coinwire.history.formats import read_candles
from coinwire.history.store import HistoryStore
from coinwire.services.warm_history import CcxtDownloadSource, HistoryStoreSource
from tests.conftest import shared_data
from tests.history.klines_server import KlinesVenue, serve_klines

T0 = 1_606_780_800  # 2020-12-01 00:00 UTC, the recorded file's first bar
H = 3600
SPOT_ONLY = {"fetchMarkets": {"types": ["spot"]}}  # the local server has no futures API


@pytest.fixture()
def venue() -> Iterator[KlinesVenue]:
    with serve_klines(shared_data("binance-spot-1h", "BTC_USDT-1h.json")) as running:
        yield running


def recorded() -> object:
    return read_candles(shared_data("binance-spot-1h", "BTC_USDT-1h.json"), exchange="binance")


def _iso(seconds: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def ccxt_exchange(url: str) -> ExchangeConfig:
    return ExchangeConfig(name="binance", feed="ccxt", ccxt_urls={"api.public": f"{url}/api/v3"}, ccxt_options=SPOT_ONLY)


async def test_a_download_gets_the_closed_hours_before_the_start(venue: KlinesVenue) -> None:
    source = CcxtDownloadSource({"binance": ccxt_exchange(venue.url)})
    at = T0 + 500 * H + 1800  # half an hour into a bar: the bar still open is not taken
    (loaded,) = await load_warmup([source], "binance", [Need("BTC/USDT", "1h", 200)], at)
    expected = recorded().slice(None, T0 + 500 * H)  # type: ignore[attr-defined]
    assert loaded.complete and loaded.source == "a download"
    assert loaded.candles.time.tolist() == expected.time[-200:].tolist()  # the file has gaps: 200 candles, not 200 hours
    assert np.array_equal(loaded.candles.close, expected.close[-200:])
    assert f"200 candles from a download {_iso(int(expected.time[-200]))}–2020-12-21T19:00Z" in describe(loaded)
    assert venue.requests  # it really asked the server


async def test_a_failed_download_is_reported_and_required_names_it(venue: KlinesVenue) -> None:
    source = CcxtDownloadSource({"binance": ccxt_exchange(venue.url)})
    (loaded,) = await load_warmup([source], "binance", [Need("ETH/USDT", "1h", 10)], T0 + 100 * H)
    assert not loaded.complete and loaded.taken == 0
    assert loaded.missing.startswith("10 of 10 candles missing (a download: ")
    refusal = unavailable("binance", [loaded])
    assert refusal is not None and refusal.code == "warmup_unavailable" and "ETH/USDT 1h" in refusal.message
    # an exchange whose feed is not ccxt is not served at all
    assert await source.candles("demo", "BTC/USDT", "1h", T0, T0 + H) is None


async def test_the_history_store_comes_first_and_rolls_up_finer_series(tmp_path: Path, venue: KlinesVenue) -> None:
    store = HistoryStore(tmp_path / "history")
    store.write(recorded())  # type: ignore[arg-type]
    sources = [HistoryStoreSource(store), CcxtDownloadSource({"binance": ccxt_exchange(venue.url)})]
    at = T0 + 400 * H
    hours, fours = await load_warmup(sources, "binance", [Need("BTC/USDT", "1h", 48), Need("BTC/USDT", "4h", 12)], at)
    assert hours.source == fours.source == "the history store" and hours.complete and fours.complete
    assert not venue.requests  # the download was never needed
    expected = recorded().slice(at - 48 * H, at)  # type: ignore[attr-defined]
    assert fours.candles.time.tolist() == [at - (12 - i) * 4 * H for i in range(12)]
    first = expected.time < at - 44 * H
    assert fours.candles.high[0] == pytest.approx(float(np.max(expected.high[first])))
    assert fours.candles.close[-1] == pytest.approx(float(expected.close[-1]))
    # a series the store does not hold falls through to the download
    (eth,) = await load_warmup([HistoryStoreSource(store)], "binance", [Need("ETH/USDT", "1h", 5)], at)
    assert eth.taken == 0 and eth.missing.endswith("(no source serves this market)")


async def test_stored_rates_warm_a_series_up_as_candles_of_their_minutes(tmp_path: Path) -> None:
    """Ten minutes of rates are two 5m candles: open the first rate, close the last, high/low the extremes, no volume."""
    from decimal import Decimal

    from coinwire.services.warm_history import StoredRatesSource
    from coinwire.store import Store
    from coinwire.store.rates import RateRow, insert_rates

    t0 = 1_733_479_200  # 2024-12-06 10:00 UTC, a 5m bucket's start
    prices = ["100", "101.5", "99", "102", "100.5", "100.25", "103", "98.75", "101", "100"]
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'rates.db'}")
    await store.start()
    try:
        await insert_rates(store, [RateRow(exchange="demo", symbol="BTC/USDT", minute_ms=(t0 + 60 * i) * 1000,
                                           price=Decimal(p), source="ticker", received_ms=(t0 + 60 * i) * 1000 + 5)
                                   for i, p in enumerate(prices)])
        source = StoredRatesSource(store)
        assert await source.candles("demo", "ETH/USDT", "5m", t0, t0 + 600) is None  # nothing stored: not a source
        (loaded,) = await load_warmup([source], "demo", [Need("BTC/USDT", "5m", 2)], t0 + 600)
        assert loaded.complete and loaded.source == "stored rates"
        assert loaded.candles.time.tolist() == [t0, t0 + 300]
        assert loaded.candles.open.tolist() == [100.0, 100.25]
        assert loaded.candles.high.tolist() == [102.0, 103.0]
        assert loaded.candles.low.tolist() == [99.0, 98.75]
        assert loaded.candles.close.tolist() == [100.5, 100.0]
        assert loaded.candles.volume.tolist() == [0.0, 0.0]
        minutes = await source.candles("demo", "BTC/USDT", "1m", t0, t0 + 600)
        assert minutes is not None and minutes.close.tolist() == [float(p) for p in prices]
    finally:
        await store.close()
