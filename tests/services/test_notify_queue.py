"""The gateway's notification queue keeps only what the bus could not take while away, never a message it refuses.

A batch with a subject or message the bus refuses (a bug, not an outage) raises to the command as it
did, and nothing is kept: kept, it would hold back every later notification for ever. The outage itself
(NATS killed and started again) is tests/cluster/test_bus_outage.py.
"""

from __future__ import annotations

import pytest

from coinwire.bus.memory import MemoryBus
from coinwire.core.errors import CoinwireError
from coinwire.messages import OrderUpdate, account_subject
from coinwire.services.notify_queue import NotificationQueue
from tests.events import order_view


async def test_a_batch_the_bus_refuses_raises_and_is_not_kept() -> None:
    bus = MemoryBus()
    await bus.start()
    queue = NotificationQueue(bus)
    good = (account_subject("order", 7, "demo", "BTC/USDT"), OrderUpdate(order_view(id=1, status="open"), 1, 7, 1))
    with pytest.raises(CoinwireError) as wildcard:
        await queue.publish([("order.7.>", good[1])])
    assert wildcard.value.code == "invalid_subject"
    with pytest.raises(TypeError):
        await queue.publish([(good[0], {"not": "a message"})])  # type: ignore[list-item]
    assert queue.waiting == 0
    await queue.publish([good])  # the next batch goes out at once
    assert [seq for seq, _, _ in await bus.replay(">")] == [1]
    await queue.close()
    await bus.close()


async def test_a_repair_held_goes_out_ahead_of_what_came_meanwhile() -> None:
    bus = MemoryBus()
    await bus.start()
    queue = NotificationQueue(bus)
    subject = account_subject("order", 7, "demo", "BTC/USDT")

    def batch(seq: int) -> list[tuple[str, OrderUpdate]]:
        return [(subject, OrderUpdate(order_view(id=seq, status="open"), 1, 7, seq))]

    queue.hold()  # a restore found seqs 1-2 missing from the bus: their repair is being built
    assert queue.holding
    await queue.publish(batch(3))  # a new command meanwhile: kept behind the repair
    assert await bus.replay(">") == []
    queue.release([batch(1), batch(2)])
    await queue.close()
    assert [m.seq for _, _, m in await bus.replay(">")] == [1, 2, 3]  # type: ignore[union-attr]
    assert not queue.holding
    await bus.close()
