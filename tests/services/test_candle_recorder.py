"""CandleRecorder: public trades on a real in-process bus become exact 1m/1h candles, written when closed
(by market time or by the clock), rewritten after a late trade, and served with the forming one by OhlcvQuery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from coinwire.bus.memory import MemoryBus
from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.history.formats import read_candles
from coinwire.history.store import HistoryStore
from coinwire.messages import Markets, TradeTick, subject
from coinwire.services.candle_recorder import CandleRecorder
from coinwire.services.ohlcv import OhlcvQuery
from coinwire.store import Store
from coinwire.store.candle_writer import CandleWriter
from coinwire.store.candles import load_candles
from tests.conftest import shared_data

BTC = Instrument(exchange="binance", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=5)
T0 = 1_617_235_200  # 2021-04-01 00:00 UTC
S = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0 * S

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[MemoryBus, CandleRecorder, CandleWriter, Store, Clock]]:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    await store.start()
    bus = MemoryBus()
    await bus.start()
    writer = CandleWriter(store)
    await writer.start()
    clock = Clock()
    recorder = CandleRecorder(bus, writer, clock=clock, tick=3600)  # flushes only when the test says
    await recorder.start()
    await bus.publish(subject("markets", "binance"), Markets("binance", [BTC]))
    await until(lambda: recorder.precision("binance", "BTC/USDT") is not None)
    yield bus, recorder, writer, store, clock
    await recorder.close()
    await writer.close()
    await bus.close()
    await store.close()


async def until(condition: Callable[[], bool]) -> None:
    """The memory bus delivers from its own task: wait (briefly) for the recorder to see what was published."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the recorder never saw the published messages")


async def trade(bus: MemoryBus, seconds: float, price: int, size: int) -> None:
    tick = TradeTick("binance", "BTC/USDT", int((T0 + seconds) * S), "t", price, size, "buy")
    await bus.publish(subject("trade", "binance", "BTC/USDT"), tick)
    await asyncio.sleep(0)


async def test_trades_become_exact_candles_written_when_closed(rig: tuple) -> None:  # type: ignore[type-arg]
    bus, recorder, writer, store, clock = rig
    for seconds, price, size in [(1, 100_00, 5), (20, 103_00, 1), (59.9, 99_00, 2), (61, 101_00, 7), (130, 98_00, 1)]:
        await trade(bus, seconds, price, size)
    clock.now = (T0 + 135) * S
    assert recorder.flush_closed() == 2  # minutes 0 and 1 closed by later trades; minute 2 and the hour still form
    await writer.flush()
    stored = await load_candles(store, "binance", "BTC/USDT", 60)
    assert stored is not None and (stored.price_decimals, stored.size_decimals) == (2, 5)
    assert [c.tolist() for c in stored.candles] == [
        [T0, T0 + 60], [100_00, 101_00], [103_00, 101_00], [99_00, 101_00], [99_00, 101_00], [8, 7]
    ]
    assert await load_candles(store, "binance", "BTC/USDT", 3600) is None
    # a late trade of minute 1 re-dirties it; the clock closes minute 2 and, an hour later, the hour
    await trade(bus, 62, 110_00, 1)
    await until(lambda: recorder.trades == 6)
    clock.now = (T0 + 3600 + 3) * S
    assert recorder.flush_closed() == 3
    await writer.flush()
    minutes = await load_candles(store, "binance", "BTC/USDT", 60)
    assert minutes is not None and minutes.candles.high.tolist() == [103_00, 110_00, 98_00]
    hour = await load_candles(store, "binance", "BTC/USDT", 3600)
    assert hour is not None and [c.tolist() for c in hour.candles] == [[T0], [100_00], [110_00], [98_00], [98_00], [17]]
    assert recorder.flush_closed() == 0  # nothing changed since


async def test_trades_of_unknown_markets_are_counted_not_guessed(rig: tuple) -> None:  # type: ignore[type-arg]
    bus, recorder, *_ = rig
    await bus.publish(subject("trade", "kraken", "BTC/USD"), TradeTick("kraken", "BTC/USD", T0 * S, "t", 1, 1, "buy"))
    await until(lambda: recorder.unknown_trades == 1)
    assert recorder.unknown_trades == 1 and recorder.trades == 0


async def test_query_merges_history_store_and_forming_candles(rig: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    bus, recorder, writer, store, clock = rig
    for seconds, price in [(10, 100_00), (70, 105_00)]:
        await trade(bus, seconds, price, 100_000)
    await until(lambda: recorder.trades == 2)
    recorder.flush_closed()  # minute 0 closed by minute 1's trade; minute 1 forms in memory
    await writer.flush()
    query = OhlcvQuery(store, HistoryStore(tmp_path / "history"), recorder, max_points=10, clock=clock)
    answer = await query.candles("binance", "BTC_USDT", "1m", "UTC", T0, T0 + 180)
    assert answer["candles"] == [[T0, 100.0, 100.0, 100.0, 100.0, 1.0], [T0 + 60, 105.0, 105.0, 105.0, 105.0, 1.0]]
    hour = await query.candles("binance", "BTC/USDT", "1h", "Europe/London", T0, T0 + 180)
    assert hour["candles"] == [[T0 - 3600 + 3600, 100.0, 105.0, 100.0, 105.0, 2.0]]  # BST: 01:00 local = 00:00 UTC
    # paging: 3 hours of 1m buckets at 10 points a page
    page = await query.candles("binance", "BTC/USDT", "1m", "UTC", T0, T0 + 3 * 3600)
    assert page["next"] == T0 + 600 and len(page["candles"]) == 2
    for bad, code in [({"timeframe": "1y"}, "invalid_timeframe"), ({"tz": "Mars/Olympus"}, "invalid_timezone"),
                      ({"start": T0 + 10, "end": T0}, "invalid_range"), ({"start": "yesterday"}, "invalid_time")]:  # fmt: skip
        with pytest.raises(InvalidInput) as info:
            await query.candles("binance", "BTC/USDT", **bad)  # type: ignore[arg-type]
        assert info.value.code == code


async def test_query_reads_hourly_history_for_days_and_minutes_for_kathmandu(tmp_path: Path) -> None:
    history = HistoryStore(tmp_path / "history")
    hourly = read_candles(shared_data("binance-spot-1h", "BTC_USDT-1h.json"), exchange="binance")
    history.write(hourly)
    query = OhlcvQuery(None, history, None, max_points=1000)
    # London days 27th (GMT), 28th (23 hours: the clocks go forward) and 29th (BST): end 30th 00:00 BST
    london = await query.candles("binance", "BTC/USDT", "1d", "Europe/London", "2021-03-27", "2021-03-29T23:00")
    assert [row[0] for row in london["candles"]] == [1616803200, 1616889600, 1616972400]
    for row, (lo, hi) in zip(london["candles"], [(1616803200, 1616889600), (1616889600, 1616972400), (1616972400, 1617058800)],
                             strict=True):
        day = hourly.slice(lo, hi)
        assert len(day) == (23 if lo == 1616889600 else 24)
        assert row[1:5] == [day.open[0], day.high.max(), day.low.min(), day.close[-1]]
    with pytest.raises(Exception) as info:  # +05:45 days do not lie on the hourly grid
        await query.candles("binance", "BTC/USDT", "1d", "Asia/Kathmandu", "2021-03-27", "2021-03-30")
    assert getattr(info.value, "code", None) == "no_fitting_candles"
