"""history.download and `coinwire data download`: a real ccxt.binance paging through a local klines server; errors."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.history.download import MAX_RETRIES, download, make_exchange, rehost_urls
from coinwire.history.formats import read_candles
from coinwire.venues.ccxt_errors import Backoff
from tests.conftest import shared_data
from tests.history.klines_server import KlinesVenue, serve_klines
from tests.test_cli import coinwire

T0 = 1_606_780_800  # 2020-12-01 00:00 UTC, the file's first bar
H = 3600


@pytest.fixture()
def venue() -> Iterator[KlinesVenue]:
    with serve_klines(shared_data("binance-spot-1h", "BTC_USDT-1h.json")) as running:
        yield running


def recorded() -> Path:
    return shared_data("binance-spot-1h", "BTC_USDT-1h.json")


def test_pages_through_the_whole_history(venue: KlinesVenue) -> None:
    exchange = make_exchange("binance", venue.url)
    seen: list[tuple[int, int]] = []
    candles = download(exchange, "BTC/USDT", "1h", T0, limit=1000, progress=lambda n, last: seen.append((n, last)))
    expected = read_candles(recorded(), exchange="binance")
    assert candles.key == ("binance", "BTC/USDT", "1h") and candles.equals(expected)
    # 5,482 bars in pages of 1,000: six full-or-partial pages, then one empty answer ends it
    starts = [start for start, _, _ in venue.requests]
    assert len(starts) == 7 and starts[0] == T0 * 1000
    assert [n for n, _ in seen] == [1000, 2000, 3000, 4000, 5000, 5482]
    for (start, _, limit), previous_last in zip(venue.requests[1:], [last for _, last in seen], strict=True):
        assert start == (previous_last + H) * 1000 and limit == 1000  # each page starts after the last bar


def test_until_is_exclusive_and_default_pages_are_ccxts(venue: KlinesVenue) -> None:
    exchange = make_exchange("binance", venue.url)
    until = T0 + 1200 * H
    candles = download(exchange, "BTC/USDT", "1h", T0 + 5 * H, until)
    expected = read_candles(recorded(), exchange="binance").slice(T0 + 5 * H, until)
    assert candles.equals(expected) and candles.last < until
    assert {limit for _, _, limit in venue.requests} == {500}  # ccxt's default for binance


def test_the_open_bar_is_never_returned(venue: KlinesVenue) -> None:
    exchange = make_exchange("binance", venue.url)
    now_ms = (T0 + 10 * H + 1800) * 1000  # half way through the 11th bar
    exchange.milliseconds = lambda: now_ms  # the venue's clock, not ours
    candles = download(exchange, "BTC/USDT", "1h", T0)
    assert len(candles) == 10 and candles.last == T0 + 9 * H


def test_offline_is_a_clear_network_error_after_retries() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    exchange = make_exchange("binance", url, timeout_ms=2000)
    delays: list[float] = []
    with pytest.raises(CoinwireError) as info:
        download(exchange, "BTC/USDT", "1h", T0, sleep=delays.append, backoff=Backoff(base=0.5, jitter=0))
    assert info.value.code == "exchange_network_error" and "binance load_markets" in info.value.message
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0][:MAX_RETRIES]


def test_bad_symbol_and_timeframe_are_not_retried(venue: KlinesVenue) -> None:
    exchange = make_exchange("binance", venue.url)
    delays: list[float] = []
    with pytest.raises(CoinwireError) as info:
        download(exchange, "ETH/USDT", "1h", T0, sleep=delays.append)
    assert info.value.code == "exchange_bad_symbol" and delays == []
    with pytest.raises(InvalidInput) as info:
        download(exchange, "BTC/USDT", "7m", T0)
    assert info.value.code == "unsupported_timeframe" and "1h" in info.value.message


def test_exchange_ids_and_rehosting() -> None:
    with pytest.raises(InvalidInput) as info:
        make_exchange("binanse")
    assert info.value.code == "unknown_exchange"
    urls = {"public": "https://api.binance.com/api/v3", "nested": {"x": "https://fapi.binance.com/fapi/v1"}, "n": 3}
    assert rehost_urls(urls, "http://127.0.0.1:9/") == {
        "public": "http://127.0.0.1:9/api/v3",
        "nested": {"x": "http://127.0.0.1:9/fapi/v1"},
        "n": 3,
    }


# --- the command ----------------------------------------------------------------------------------------
def test_download_through_a_local_binance(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    with serve_klines(shared_data("binance-spot-1h", "BTC_USDT-1h.json")) as venue:
        result = coinwire(
            "--data-dir", data, "data", "download", "binance", "BTC/USDT", "--timeframe", "1h",
            "--since", "2021-01-01", "--until", "2021-03-01", "--api-url", venue.url, "--json",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["first_utc"] == "2021-01-01 00:00 UTC" and summary["last_utc"] == "2021-02-28 23:00 UTC"
    assert summary["downloaded"] == summary["rows"] > 1400 and len(venue.requests) >= 3


def test_download_offline_fails_clearly(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = coinwire(
        "--data-dir", str(tmp_path), "data", "download", "binance", "BTC/USDT", "-t", "1h", "--since", "2021-01-01",
        "--api-url", url, "--retries", "1",
    )  # fmt: skip
    assert result.returncode == 2
    assert "exchange_network_error" in result.stderr and "binance" in result.stderr
    bad_date = coinwire("--data-dir", str(tmp_path), "data", "download", "binance", "BTC/USDT", "-t", "1h", "--since", "soon")
    assert bad_date.returncode == 2 and "invalid_date" in bad_date.stderr
