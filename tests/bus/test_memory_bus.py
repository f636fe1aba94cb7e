"""MemoryBus specifics beyond the shared contract: the bounded, encoded durable log."""

from __future__ import annotations

import gc

import pytest

from coinwire.bus import MemoryBus
from tests.bus.test_bus_contract import fill, order, tick


async def test_the_durable_log_keeps_the_newest_max_log_messages() -> None:
    bus = MemoryBus(max_log=3)
    published = [(await bus.publish("order.binance.usdt.btc", order(n)), "order.binance.usdt.btc", order(n)) for n in range(5)]
    assert await bus.last_seq() == 5  # sequences keep counting past what is kept
    assert await bus.replay(">") == published[2:]  # from before the oldest kept: the oldest kept on
    assert await bus.replay(">", from_seq=4) == published[3:]
    assert await bus.replay(">", from_seq=6) == []
    await bus.publish("trade.binance.usdt.btc", tick(1))  # ephemeral: neither kept nor counted
    assert await bus.last_seq() == 5
    await bus.close()
    with pytest.raises(ValueError):
        MemoryBus(max_log=0)


async def test_the_durable_log_holds_no_objects_for_the_garbage_collector() -> None:
    bus = MemoryBus()
    for n in range(100):
        await bus.publish("fill.binance.usdt.btc", fill(n))
    assert all(not gc.is_tracked(entry) or not any(gc.is_tracked(part) for part in entry) for entry in bus._log)
    assert (await bus.replay(">", from_seq=100))[0][2] == fill(99)  # and replay gives the message back, equal
    await bus.close()
