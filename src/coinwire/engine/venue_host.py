"""A backtest runtime as its simulated venue's host: the run's ledger and clock, and the report events of each change.

The venue hands every change to `record` as one `Execution`; here it becomes what the run
reports, exactly as the runtime's own bookkeeping always did: a placement binds the order to
the strategy's ticket, then each order's new fills (`venue.fill`, balance points, `on_fill`)
and its new state (`venue.order`, `on_order`). Nothing here suspends, which is what lets the
backtest drive the venue's coroutines with `completed`.

This is an object of its own rather than the runtime itself because `Runtime.log` is the
strategy's (`log(level, message)`), not the venue's.
"""

from __future__ import annotations

from coinwire.core.ids import IdSequence
from coinwire.core.ledger import Ledger
from coinwire.core.orders import Order
from coinwire.engine.runtime import Runtime
from coinwire.venues.base import Execution

__all__ = ["RunHost"]


class RunHost:
    """The `VenueHost` of a backtest: `orders` is what it kept of the venue's orders (by id), as a store would."""

    __slots__ = ("runtime", "fill_ids", "order_ids", "orders")

    def __init__(self, runtime: Runtime, fill_ids: IdSequence, order_ids: IdSequence) -> None:
        self.runtime = runtime
        self.fill_ids = fill_ids
        self.order_ids = order_ids  # the run's: the venue numbers the exits it places from them
        self.orders: dict[int, Order] = {}

    @property
    def ledger(self) -> Ledger:
        return self.runtime.ledger

    def now(self) -> int:
        return self.runtime.now_ns()

    async def record(self, execution: Execution, *, notify: bool = True) -> None:
        rt = self.runtime
        placed = execution.placed
        if placed is not None:
            ticket = rt.tickets[placed.client_oid]
            ticket.order_id = placed.id
            self.orders[placed.id] = placed
            rt.ticket_of[placed.id] = ticket
        orders, fills = execution.orders, execution.fills
        for order in orders:
            if order.id not in rt.ticket_of:  # an exit the venue placed for an entry in this step: a ticket of its own
                ticket = rt.exit_ticket(order)
                ticket.order_id = order.id
                self.orders[order.id] = order
                rt.ticket_of[order.id] = ticket
            mine = fills if len(orders) == 1 else [f for f in fills if f.order_id == order.id]
            instrument = rt.instrument(order.symbol, order.exchange)
            assert instrument is not None  # the venue only trades markets the run has
            rt.record_fills(order, mine, instrument)

    async def log(self, level: str, source: str, message: str, owner_id: int | None = None) -> None:
        self.runtime.logs.append((self.now(), level, f"{source}: {message}"))
