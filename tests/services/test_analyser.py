"""The analyser over a real gateway, tracker and store: portfolio series from the tracker's candles (15m and rolled up
to 1h), a balance point series from the ledger, a market's candles through the chart's OhlcvQuery; every value checked
against an independent computation, published on its bus subject with its owner, stored, told to listeners."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from coinwire.bus.memory import MemoryBus
from coinwire.core.analysis import analysis_key
from coinwire.core.errors import InvalidInput, NotFound, NotReady
from coinwire.core.indicators import rsi, sma
from coinwire.core.orders import Side
from coinwire.core.portfolio import BUCKET_S
from coinwire.messages import AnalysisValue, Message
from coinwire.services.analyser import Analyser
from coinwire.services.ohlcv import OhlcvQuery
from coinwire.store.candles import CandleRow, write_candles
from coinwire.store.portfolio_candles import load_portfolio_candles
from tests.services.portfolio_rig import Clock, portfolio_rig
from tests.services.test_portfolio_tracker import EXCHANGE, set_book, store_url, trade  # noqa: F401 - store_url: SQLite and PostgreSQL

S = 10**9


async def test_portfolio_and_balance_series_from_the_tracker(store_url: tuple[str, str | None], tmp_path: Path) -> None:  # noqa: F811
    url, schema = store_url
    t0 = (time.time_ns() // S // 3600) * 3600 - 3600  # an hour boundary: four 15m buckets make one 1h bar
    clock = Clock(t0 * S + 60 * S)
    async with portfolio_rig(tmp_path, url, schema, clock, EXCHANGE) as r:
        g = r.gateway
        alice, bob = await g.account_for(1, "demo"), await g.account_for(2, "demo")
        await set_book(r, "30000", "30002")
        await r.tracker.start(loop=False)
        await r.tracker.step()  # alice's portfolio is tracked from here
        bus_seen: list[tuple[str, Message]] = []

        async def on_bus(subject: str, message: Message) -> None:
            bus_seen.append((subject, message))

        await r.gateway.bus.subscribe("analysis.>", on_bus)
        analyser = Analyser(r.store, r.gateway.bus, r.tracker, g, None, clock=clock)
        heard: list[tuple[str, float, int]] = []
        stop_listening = analyser.listen(lambda key, value, t: heard.append((key, value, t)))
        series15, series1h = f"portfolio:account:{alice.id}:15m", f"portfolio:account:{alice.id}:1h"
        keys = {
            "close": analysis_key(series15, "value"),
            "sma": analysis_key(series15, "sma", [2]),
            "hour": analysis_key(series1h, "value"),
            "usdt": analysis_key(f"balance:{alice.id}:USDT", "value"),
        }
        untrack = [
            analyser.track(keys["close"], series15, "value", [], 1),
            analyser.track(keys["sma"], series15, "sma", [2], 1),
            analyser.track(keys["hour"], series1h, "value", [], 1),
            analyser.track(keys["usdt"], f"balance:{alice.id}:USDT", "value", [], 1),
            analyser.track(keys["close"], series15, "value", [], 1),  # a second follower: computed once
        ]
        assert len(analyser.tracks) == 4
        await analyser.settled()
        assert analyser.latest(keys["usdt"]) == 10_000.0  # the paper funds, at once
        mids = ["30500", "31000", "29000", "29500", "32000"]
        for i, mid in enumerate(mids, start=1):
            clock.now = (t0 + (i - 1) * BUCKET_S + 300) * S
            await trade(r, 1, Side.BUY if i % 2 else Side.SELL, "0.01")
            await trade(r, 2, Side.BUY, "0.02")  # bob trades too: never in alice's series
            await set_book(r, mid, str(int(mid) + 2))
            await r.tracker.step()
            clock.now = (t0 + i * BUCKET_S + 5) * S
            await r.tracker.step()
        await analyser.settled()
        await r.writer.flush()

        stored = await load_portfolio_candles(r.store, "account", str(alice.id), "USD")
        assert stored is not None
        closes = (stored.candles.close / 1e8).tolist()
        ends = [(t + BUCKET_S) * S for t in stored.candles.time.tolist()]
        live15 = [(v, t) for k, v, t in heard if k == keys["close"]]
        assert live15 == list(zip(closes, ends, strict=True))[-len(live15):] and len(live15) >= 5
        want_sma = sma(np.array(closes), 2)
        live_sma = [(v, t) for k, v, t in heard if k == keys["sma"]]
        assert live_sma and all(v == want_sma[ends.index(t)] for v, t in live_sma)
        hour_end = (t0 + 3600) * S  # the 1h bar closes with the 15m bucket ending at t0 + 1h
        assert [(v, t) for k, v, t in heard if k == keys["hour"]] == [(closes[ends.index(hour_end)], hour_end)]
        balances = [v for k, v, _ in heard if k == keys["usdt"]]
        usdt = sum(w.balance for w in g.ledger.wallets(accounts=[alice.id]) if w.currency == "USDT") / 1e18
        assert len(balances) == 1 + len(mids) and balances[-1] == pytest.approx(usdt, rel=1e-15)
        assert len(set(balances)) == len(balances)  # a point only when it changed

        # the bus: one AnalysisValue per live value, on its subject, with alice as owner; bob's account never appears
        values = [m for _, m in bus_seen if isinstance(m, AnalysisValue)]
        assert len(values) == len(heard) and all(m.owner_id == 1 for m in values)
        subjects = {s for s, _ in bus_seen}
        assert f"analysis.portfolio.account-{alice.id}-15m.sma-2" in subjects
        assert f"analysis.balance.{alice.id}-usdt.value" in subjects
        assert not any(f"-{bob.id}-" in s or f".{bob.id}-" in s for s in subjects)
        # stored: history answers what was heard (and the warm-up values, none here: no stored candle before tracking)
        rows = await analyser.history(keys["sma"], None, None, 100)
        assert [(row.value, row.time_ns) for row in rows] == live_sma and rows[0].owner_id == 1
        assert rows[0].series == series15 and rows[0].indicator == "sma" and rows[0].params == (2,)

        # a new analyser warms up from the stored candles: its SMA equals the batch SMA of the stored closes
        again = Analyser(r.store, r.gateway.bus, r.tracker, g, None, clock=clock)
        stop = again.track(keys["sma"], series15, "sma", [2], 1)
        await again.settled()
        assert again.latest(keys["sma"]) == want_sma[-1]
        stop()
        for u in untrack:
            u()
        assert not analyser.tracks
        stop_listening()
        await again.close()
        await analyser.close()


async def test_market_series_over_the_chart_candles(tmp_path: Path) -> None:
    from coinwire.store import Store

    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    await store.start()
    try:
        hour = 3600
        t0 = (time.time_ns() // S // hour) * hour - 40 * hour
        rng = np.random.default_rng(3)
        cents = np.round(3_000_000 * np.exp(np.cumsum(rng.normal(0, 0.01, 45)))).astype(np.int64)
        closes = cents / 100
        rows = [CandleRow(exchange="demo", symbol="BTC/USDT", interval_s=hour, open_time=t0 + i * hour,
                          close_time=t0 + (i + 1) * hour, price_decimals=2, size_decimals=6,
                          open=int(c), high=int(c) + 50, low=int(c) - 50, close=int(c),
                          volume=1_000_000, trades=1, updated_at=0)
                for i, c in enumerate(cents)]  # fmt: skip
        await write_candles(store, rows[:30])  # 30 closed hours before "now"
        clock = Clock((t0 + 30 * hour + 10) * S)
        analyser = Analyser(store, MemoryBus(), None, None, OhlcvQuery(store, None, clock=clock), clock=clock, grace=2)
        series = "market:demo:BTC/USDT:1h"
        key = analysis_key(series, "rsi", [14])
        heard: list[tuple[float, int]] = []
        analyser.listen(lambda k, v, t: heard.append((v, t)))
        analyser.track(key, series, "rsi", [14], None)
        await analyser.settled()
        want = rsi(closes[:30], 14)
        assert analyser.latest(key) == pytest.approx(want[29], rel=1e-12) and heard == []  # warm-up: no live value
        await write_candles(store, rows[30:33])
        clock.now = (t0 + 33 * hour + 1) * S
        assert await analyser.poll_markets() == 2  # the third bar is within the grace
        clock.now = (t0 + 33 * hour + 3) * S
        assert await analyser.poll_markets() == 1
        want = rsi(closes[:33], 14)
        assert heard == [(pytest.approx(want[i], rel=1e-12), (t0 + (i + 1) * hour) * S) for i in (30, 31, 32)]
        with pytest.raises(InvalidInput) as info:
            analyser.track(analysis_key("portfolio", "sma", [3]), "portfolio", "sma", [3], 1)
        assert info.value.code == "unknown_series"
        # a series this process cannot serve is refused and nothing is kept
        with pytest.raises(NotReady) as off:
            analyser.track(analysis_key("balance:1:USDT", "value"), "balance:1:USDT", "value", [], 1)
        assert off.value.code == "portfolio_tracking_off"
        bare = Analyser(store, MemoryBus(), None, None, None, clock=clock)
        with pytest.raises(NotFound):
            bare.track(key, series, "rsi", [14], None)
        with pytest.raises(InvalidInput) as wrong:
            bare.track("another.key", series, "rsi", [14], None)
        assert wrong.value.code == "invalid_key"
        assert set(analyser.tracks) == {key} and not bare.tracks
        await analyser.close()
    finally:
        await store.close()
