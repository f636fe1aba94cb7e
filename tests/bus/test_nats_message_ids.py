"""A notification published again (services/notify_queue.py retrying a batch whose acknowledgement was lost) is kept once.

On the machine's NATS: an order and a fill notification sent twice with the same account and seq
are stored once (JetStream's duplicate window, by their `<account>.<seq>` message ids); another
account's same seq is its own; a position's update, whose mark-only pushes repeat the seq by design,
is stored each time.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

from coinwire.bus.nats import NatsBus
from coinwire.messages import FillEvent, OrderUpdate, PositionUpdate, account_subject
from tests.api.test_positions_stream import _view
from tests.conftest import NATS_URL, require_service
from tests.events import fill_view, order_view

pytestmark = pytest.mark.services


async def test_an_order_or_fill_sent_again_is_kept_once_a_positions_mark_each_time() -> None:
    url = urlsplit(NATS_URL)
    require_service("NATS", url.hostname or "127.0.0.1", url.port or 4222)
    bus = NatsBus(NATS_URL, f"t{uuid.uuid4().hex[:16]}")
    await bus.start()
    try:
        order = ("order", OrderUpdate(order_view(id=1, status="open"), 9, 7, 1))
        fill = ("fill", FillEvent(fill_view(id=1, order_id=1), 9, 7, 2))
        theirs = ("order", OrderUpdate(order_view(id=2, status="open"), 8, 8, 1))  # another account's seq 1
        mark = ("position", PositionUpdate(_view(7, 3, "0.01"), 9, 7, 3))
        batch = [(account_subject(kind, m.account_id, "demo", "BTC/USDT"), m) for kind, m in (order, fill, theirs, mark)]
        await bus.publish_many(batch)
        await bus.publish_many(batch)  # the retry of a batch already stored
        kept = [(type(m).__name__, m.account_id, m.seq) for _, _, m in await bus.replay(">")]  # type: ignore[union-attr]
        assert kept == [("OrderUpdate", 7, 1), ("FillEvent", 7, 2), ("OrderUpdate", 8, 1), ("PositionUpdate", 7, 3),
                        ("PositionUpdate", 7, 3)]
    finally:
        await bus.delete_stream()
        await bus.close()
