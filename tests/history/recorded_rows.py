"""Candle rows as the candle recorder writes them (1-minute and 1-hour, exact integers): a store's recording for tests."""

from __future__ import annotations

import random

from coinwire.store import Store
from coinwire.store.candles import CandleRow, write_candles

T0 = 1_796_000_040 // 3600 * 3600  # an hour's start
MINUTES = 600


def bars(exchange: str = "demo", symbol: str = "BTC/USDT", minutes: int = MINUTES, seed: int = 3) -> list[CandleRow]:
    """A random walk of 1-minute candles at 2 price and 5 size decimals, and their hour candles (as the recorder writes both)."""
    rng = random.Random(seed)
    price = 6_000_000
    rows = []
    for i in range(minutes):
        o = price
        price = max(100, price + rng.randint(-900, 900))
        h, low = max(o, price) + rng.randint(0, 300), min(o, price) - rng.randint(0, 300)
        rows.append(CandleRow(exchange=exchange, symbol=symbol, interval_s=60, open_time=T0 + 60 * i, close_time=T0 + 60 * i + 60,
                              price_decimals=2, size_decimals=5, open=o, high=h, low=low, close=price, volume=rng.randint(1, 10**6),
                              trades=3, updated_at=(T0 + 60 * i + 59) * 10**9))
    for start in range(0, minutes, 60):
        hour = rows[start:start + 60]
        rows.append(CandleRow(exchange=exchange, symbol=symbol, interval_s=3600, open_time=hour[0].open_time,
                              close_time=hour[0].open_time + 3600, price_decimals=2, size_decimals=5, open=hour[0].open,
                              high=max(r.high for r in hour), low=min(r.low for r in hour), close=hour[-1].close,
                              volume=sum(r.volume for r in hour), trades=180, updated_at=hour[-1].updated_at))
    return rows


async def recorded_store(url: str, schema: str | None = None) -> Store:
    store = Store(url, schema)
    await store.start()
    await write_candles(store, bars() + bars("demo", "ETH/USDT", 120, seed=4) + bars("kraken", "BTC/USDT", 60, seed=5))
    return store
