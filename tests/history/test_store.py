"""history.store: one .npy per series, merge on write, atomic replace, memory-mapped loads, clear misses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coinwire.core.errors import InvalidInput, NotFound
from coinwire.history.candles import RECORD_DTYPE
from coinwire.history.store import HistoryStore
from tests.history.test_candles import T0, H, make


def test_write_load_and_list(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    candles = make([T0 + i * H for i in range(5)])
    info = store.write(candles)
    path = tmp_path / "binance" / "BTC_USDT-1h.npy"
    assert Path(info.path) == path and info.rows == 5 and info.first == T0 and info.last == T0 + 4 * H
    records = np.load(path)  # plain NumPy can read it
    assert records.dtype == RECORD_DTYPE and records["close"].tolist() == candles.close.tolist()
    loaded = store.load("binance", "btc_usdt", "1h")
    assert loaded.equals(candles)
    assert isinstance(loaded.close.base, np.ndarray) or loaded.close.base is not None  # a view of the mapped file
    assert not loaded.close.flags.writeable
    assert store.has("binance", "BTC/USDT", "1h") and not store.has("binance", "BTC/USDT", "5m")
    store.write(make([T0, T0 + 300], symbol="ETH/USDT", tf="5m"))
    assert [(i.symbol, i.timeframe, i.rows) for i in store.list()] == [("BTC/USDT", "1h", 5), ("ETH/USDT", "5m", 2)]


def test_write_merges_new_bars_win(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    store.write(make([T0, T0 + H, T0 + 2 * H], [1, 2, 3]))
    info = store.write(make([T0 + 2 * H, T0 + 3 * H], [30, 40]))
    assert info.rows == 4
    assert store.load("binance", "BTC/USDT", "1h").close.tolist() == [1, 2, 30, 40]
    store.write(make([T0 + 9 * H], [9]), merge=False)
    assert store.load("binance", "BTC/USDT", "1h").close.tolist() == [9]
    assert not list((tmp_path / "binance").glob("*.tmp"))  # no temporary file left behind


def test_load_range(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    store.write(make([T0 + i * H for i in range(10)]))
    part = store.load("binance", "BTC/USDT", "1h", start=T0 + 3 * H, end=T0 + 5 * H)
    assert part.time.tolist() == [T0 + 3 * H, T0 + 4 * H]
    with pytest.raises(NotFound) as info:
        store.load("binance", "BTC/USDT", "1h", start=T0 + 20 * H)
    assert info.value.code == "history_missing"
    assert "2020-12-01 00:00 UTC .. 2020-12-01 09:00 UTC" in info.value.message


def test_missing_series_says_what_is_stored(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    with pytest.raises(NotFound) as info:
        store.load("binance", "BTC/USDT", "5m")
    assert info.value.code == "history_missing" and "empty" in info.value.message
    store.write(make([T0, T0 + H]))
    with pytest.raises(NotFound) as info:
        store.load("binance", "BTC/USDT", "5m")
    message = info.value.message
    assert "binance BTC/USDT 5m" in message and "binance BTC/USDT 1h (2 bars" in message
    assert "coinwire data import" in message


def test_bad_names_and_corrupt_files(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    with pytest.raises(InvalidInput):
        store.path("../etc", "BTC/USDT", "1h")
    with pytest.raises(InvalidInput):
        store.path("binance", "BTC/USDT", "1M")
    path = store.path("binance", "BTC/USDT", "1h")
    path.parent.mkdir(parents=True)
    np.save(path, np.arange(3))
    with pytest.raises(InvalidInput) as info:
        store.load("binance", "BTC/USDT", "1h")
    assert info.value.code == "corrupt_history"
    path.write_bytes(b"not numpy")
    with pytest.raises(InvalidInput) as info:
        store.load("binance", "BTC/USDT", "1h")
    assert info.value.code == "corrupt_history"
    assert store.list() == []  # unreadable files are skipped by list, reported by load


def test_delete(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    store.write(make([T0]))
    assert store.delete("binance", "BTC/USDT", "1h") and not store.delete("binance", "BTC/USDT", "1h")
