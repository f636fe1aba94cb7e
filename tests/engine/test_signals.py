"""Strategy signals: ma_cross's crosses in a backtest report equal an independent computation, a repeat of the last value
of a name is dropped (in the runtime and, across a restart, in the store), and bad names or values are refused."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coinwire.bus.memory import MemoryBus
from coinwire.core.errors import InvalidInput
from coinwire.engine.runs import run_backtest
from coinwire.engine.runtime import StrategyFailed
from coinwire.engine.strategy import Strategy
from coinwire.messages import Message, Signal
from coinwire.services.signals import Signals
from coinwire.store import Store
from coinwire.store.analysis import load_signals
from coinwire.strategies.registry import load_strategy
from tests.engine.test_backtest import config, series, walk


def crosses(c: np.ndarray, fast: int, slow: int) -> list[str]:
    """Every side change of SMA(fast) against SMA(slow), by an independent loop (fsum windows)."""
    def sma(n: int) -> np.ndarray:
        out = np.full(len(c), np.nan)
        for i in range(n - 1, len(c)):
            out[i] = math.fsum(c[i - n + 1 : i + 1]) / n
        return out

    f, s = sma(fast), sma(slow)
    out: list[str] = []
    for i in range(1, len(c)):
        if np.isnan(s[i - 1]):
            continue
        side = "above" if f[i] > s[i] and f[i - 1] <= s[i - 1] else "below" if f[i] < s[i] and f[i - 1] >= s[i - 1] else None
        if side is not None and (not out or out[-1] != side):
            out.append(side)
    return out


def test_ma_cross_signals_in_the_report_equal_the_crosses() -> None:
    s = walk(3_000, seed=11)
    outcome, _ = run_backtest(load_strategy("ma_cross"), {"fast": "10", "slow": "40", "timeframe": "1h"}, [s], config(fill="close"))
    signals = outcome.report["signals"]
    want = crosses(s.close, 10, 40)
    assert len(want) > 20
    assert [x["value"] for x in signals] == want and {x["name"] for x in signals} == {"ma_cross"}
    times = [x["time"] for x in signals]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(a != b for a, b in zip(want, want[1:], strict=False))  # never the same one twice in a row


class Chatty(Strategy):
    """Sends the same signal on every candle; the runtime keeps the changes only."""

    name = "chatty"
    symbol = "BTC/USDT"

    def on_start(self) -> None:
        self.sent: list[bool] = []
        self.subscribe_candles(self.symbol, "1h", self.bar)

    def bar(self, candle: dict[str, Any]) -> None:
        side = "up" if candle["close"] >= 100 else "down"
        self.sent.append(self.signal("side", side))
        self.sent.append(self.signal("flag", True))
        self.sent.append(self.signal("flag", 1))  # equal to True in Python, but another value: kept


def test_repeats_are_dropped_by_the_runtime() -> None:
    s = series([100, 101, 99, 98, 102, 103, 103])
    outcome, rt = run_backtest(Chatty, {}, [s], config())
    got = [(x["name"], x["value"]) for x in outcome.report["signals"]]
    sides = [v for n, v in got if n == "side"]
    assert sides == ["up", "down", "up"]
    flags = [v for n, v in got if n == "flag"]
    assert len(flags) >= 10 and flags == [True, 1] * (len(flags) // 2)  # True and 1 alternate: each a change
    assert len(rt.signals) == len(got)


@pytest.mark.parametrize(("name", "value"), [("", "x"), ("a b", "x"), ("x" * 65, 1), ("ok", [1]), ("ok", math.nan), ("ok", {"a": 1})])
def test_bad_signals_are_refused(name: str, value: Any) -> None:
    class Bad(Strategy):
        symbol = "BTC/USDT"

        def on_start(self) -> None:
            self.signal(name, value)

    with pytest.raises((InvalidInput, StrategyFailed)) as info:
        outcome, _ = run_backtest(Bad, {}, [series([100, 101, 102])], config())
        if outcome.status == "failed":
            raise InvalidInput("invalid_signal", outcome.error or "")
    assert "invalid_signal" in str(info.value) or getattr(info.value, "code", "") == "invalid_signal"


@asynccontextmanager
async def signal_store(tmp_path: Path) -> AsyncIterator[tuple[Store, MemoryBus, list[tuple[str, Message]]]]:
    """A SQLite store, an in-process bus, and what is published on `signal.>` (in order)."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    await store.start()
    bus = MemoryBus()
    await bus.start()
    heard: list[tuple[str, Message]] = []

    async def on(subject: str, message: Message) -> None:
        heard.append((subject, message))

    await bus.subscribe("signal.>", on)
    try:
        yield store, bus, heard
    finally:
        await store.close()


async def test_the_store_drops_a_repeat_across_a_restart_and_publishes_changes_only(tmp_path: Path) -> None:
    async with signal_store(tmp_path) as (store, bus, heard):
        first = Signals(store, bus)
        sink = first.sink("pp-1", 7)
        sink("ma_cross", "above", 10 * 10**9)
        sink("ma_cross", "below", 20 * 10**9)
        first.put("pp-2", 8, "ma_cross", "above", 20 * 10**9)  # another user's run
        await first.settled()
        again = Signals(store, bus)  # a restart: the last stored value of (pp-1, ma_cross) is "below"
        again.put("pp-1", 7, "ma_cross", "below", 30 * 10**9)
        again.put("pp-1", 7, "ma_cross", "above", 40 * 10**9)
        await again.settled()
        await bus.close()  # delivers what was published
        rows = await load_signals(store, run_id="pp-1", name="ma_cross")
        assert [(r.value, r.time_ns // 10**9, r.owner_id) for r in rows] == [("above", 10, 7), ("below", 20, 7), ("above", 40, 7)]
        assert [r.run_id for r in await load_signals(store, owner_id=8, owner_only=True)] == ["pp-2"]
        signals = [m for _, m in heard if isinstance(m, Signal)]
        assert [(m.run_id, m.value, m.time) for m in signals] == [("pp-1", "above", 10), ("pp-1", "below", 20),
                                                                 ("pp-2", "above", 20), ("pp-1", "above", 40)]
        assert {s for s, _ in heard} == {"signal.pp-1.ma_cross", "signal.pp-2.ma_cross"}


async def test_a_repeat_within_one_process_is_neither_stored_nor_published_and_a_change_is(tmp_path: Path) -> None:
    """The store level's own check (services/signals.py), not the runtime's: values put straight into one `Signals` are
    compared with the last one of their (run, name), by value and type, whatever other runs and names send between."""
    async with signal_store(tmp_path) as (store, bus, heard):
        signals = Signals(store, bus)
        sent = [("pp-1", "side", "up", 1), ("pp-1", "side", "up", 2), ("pp-1", "mood", "up", 3), ("pp-2", "side", "down", 4),
                ("pp-1", "side", "up", 5), ("pp-1", "side", "down", 6), ("pp-1", "side", "down", 7), ("pp-1", "side", "up", 8),
                ("pp-1", "flag", True, 9), ("pp-1", "flag", True, 10), ("pp-1", "flag", 1, 11), ("pp-1", "flag", 1, 12),
                ("pp-1", "flag", 1.5, 13), ("pp-1", "flag", 1.5, 14), ("pp-1", "flag", None, 15), ("pp-1", "flag", None, 16)]
        for run_id, name, value, t in sent:
            signals.put(run_id, 7, name, value, t * 10**9)
        await signals.settled()
        await bus.close()  # delivers what was published
        kept = [(r, n, v, t) for r, n, v, t in sent if t not in (2, 5, 7, 10, 12, 14, 16)]
        rows = [(r.run_id, r.name, r.value, r.time_ns // 10**9) for r in await load_signals(store, owner_id=7)]
        assert sorted(rows, key=lambda x: x[3]) == kept
        assert [type(r[2]) for r in sorted(rows, key=lambda x: x[3]) if r[1] == "flag"] == [bool, int, float, type(None)]
        published = [(m.run_id, m.name, m.value, m.time) for s, m in heard if isinstance(m, Signal) and s == f"signal.{m.run_id}.{m.name}"]
        assert published == kept and len(heard) == len(kept)
