"""The one venue contract: what paper, simulated and live venues answer to, and what they ask of their host.

A venue is where one exchange's orders execute. Three kinds implement `Venue`:

- `paper` (`venues/paper.py`): `core.execution` + `core.matching` + `core.ledger` over the
  books mirrored from a feed;
- `simulated` (`venues/simulated.py`): the same core on a simulated clock, over candles or a
  recorded L2 capture (the backtests);
- `live` (`venues/live.py`): a real account through CCXT; the mirror only checks and holds.

A venue never stores or notifies anything itself: every change it makes (an order accepted,
filled, cancelled or expired, the wallet lines that settled it) is handed to its host as one
`Execution` through `VenueHost.record`, which the gateway turns into one change set and then
notifications, and which a backtest turns into its report. Commands (`place`, `cancel`)
record their own changes and return them; what the venue does on its own (market data
filling a resting order, an expiry, an exchange report) is recorded the same way, so the
host's `record` is the venue's one event stream.

The simulated venue's host never suspends, so a backtest runs a venue coroutine to its end
at once with `completed` and keeps its synchronous, simulated-clock loop.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from typing import Any, Protocol, TypeVar, runtime_checkable

from coinwire.core.errors import Conflict
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance, Ledger
from coinwire.core.orders import DoneReason, Fill, Order, PositionSide
from coinwire.core.positions import FundingPayment, HedgeMode, MarginMode, Position, PositionSettings
from coinwire.core.wallets import WalletLine

__all__ = ["MARK_FEED", "MARK_VENUE", "MARK_MEDIAN", "Execution", "OpenOrders", "PerpVenue", "Venue", "VenueHost", "VenueMarket",
           "completed"]

# Where a perpetual's mark price comes from, as a venue's status says it (PerpVenue.mark_rule)
MARK_FEED = "feed's own"  # the feed's mark price messages (paper)
MARK_VENUE = "venue's own"  # the exchange's mark, from its position reports (live)
MARK_MEDIAN = "median of best bid, best ask and last trade"  # core.margin.mark_price, when neither is known

T = TypeVar("T")


class Execution:
    """What one step at a venue changed: orders in their new state, the fills, and the ledger lines that settled them.

    `placed`: the order this step created (a placement), which nothing stored refers to yet,
    so a host whose store refuses the step can take it back alone. `created`: further orders
    the step made (an OCO's second leg, a bracket's children, a liquidation's order), which the
    host keeps as it keeps `placed` (found by id and client_oid until done); None on every plain step.

    Perpetuals: `positions` each position the step changed, in its new state; `settings` and
    `modes` leverage, margin mode and hedge mode it set; `funding` the payments it settled.
    All None on a spot step (no list made per spot order).
    """

    __slots__ = ("orders", "fills", "lines", "placed", "created", "positions", "settings", "modes", "funding")

    def __init__(
        self, orders: list[Order] | None = None, fills: list[Fill] | None = None, lines: list[WalletLine] | None = None,
        placed: Order | None = None, created: list[Order] | None = None, positions: list[Position] | None = None,
        settings: list[PositionSettings] | None = None, modes: list[HedgeMode] | None = None,
        funding: list[FundingPayment] | None = None,
    ) -> None:
        self.orders: list[Order] = orders if orders is not None else []
        self.fills: list[Fill] = fills if fills is not None else []
        self.lines: list[WalletLine] = lines if lines is not None else []
        self.placed = placed
        self.created = created
        self.positions = positions
        self.settings = settings
        self.modes = modes
        self.funding = funding

    def __bool__(self) -> bool:
        return bool(self.orders or self.fills or self.lines or self.positions or self.settings or self.modes)


class OpenOrders(dict[int, Order]):
    """A venue's orders not done, by id, with each owner's client_oids: a second open order under one is refused.

    The client_oid index follows `keep` and `drop` only: a venue adds and removes orders through them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._oids: dict[int | None, dict[str, int]] = {}  # owner -> client_oid -> id (nested: no tuple per order)

    def refuse_duplicate(self, order: Order, venue: str) -> None:
        """Raise `duplicate_client_oid` when the owner has an order open here under `order`'s client_oid, as exchanges do."""
        mine = self._oids.get(order.owner_id)
        if mine is not None and order.client_oid in mine:
            raise Conflict("duplicate_client_oid", f"client_oid {order.client_oid!r} names an order open on {venue}",
                           order_id=mine[order.client_oid])

    def keep(self, order: Order) -> None:
        self[order.id] = order
        mine = self._oids.get(order.owner_id)
        if mine is None:
            mine = self._oids[order.owner_id] = {}
        mine[order.client_oid] = order.id

    def drop(self, order: Order) -> None:
        self.pop(order.id, None)
        mine = self._oids.get(order.owner_id)
        if mine is not None and mine.get(order.client_oid) == order.id:
            del mine[order.client_oid]

    def clear(self) -> None:
        super().clear()
        self._oids.clear()


class VenueMarket(Protocol):
    """One symbol at a venue: its instrument (precision, filters, fees)."""

    @property
    def instrument(self) -> Instrument: ...


class VenueHost(Protocol):
    """The process a venue runs in: the gateway (paper, live) or a backtest (simulated)."""

    @property
    def ledger(self) -> Ledger: ...

    @property
    def fill_ids(self) -> IdSequence: ...

    def now(self) -> int:
        """The host's clock in ns: wall time for the gateway, the simulated clock in a backtest."""
        ...

    async def record(self, execution: Execution, *, notify: bool = True) -> None:
        """Keep what the venue changed (one change set), then, with `notify`, tell its followers.

        `notify=False`: written ahead (a live order before it is sent), to be notified by a later record.
        Raises the store's refusal; the host has then taken back what it could (see `Execution.placed`).
        """
        ...

    async def log(self, level: str, source: str, message: str, owner_id: int | None = None) -> None:
        """A message for the log feed (`owner_id`: the user whose order it is about, who may read it)."""
        ...


class Venue(Protocol):
    """Where one exchange's orders execute. A venue with perpetual markets is also a `PerpVenue`."""

    name: str
    kind: str  # "paper" | "simulated" | "live"
    status: str  # "starting" | "ready" | "degraded" | "stopped"

    def market(self, symbol: str) -> VenueMarket | None: ...

    def currencies(self) -> list[str]: ...

    async def place(self, order: Order, budget: int | None = None) -> Execution:
        """Place a new order (checked, held and matched as the venue does); recorded through the host before it returns."""
        ...

    async def cancel(self, order: Order, reason: DoneReason | None = None) -> Execution:
        """Cancel an order not done; its hold goes back. Recorded through the host before it returns."""
        ...

    def open_orders(self) -> Iterable[Order]:
        """The orders not done at this venue (resting, or sent and not yet answered)."""
        ...

    def balances(self, account: int) -> dict[str, Balance]:
        """What `account` holds at this venue, per currency (total and held), as the host's ledger keeps it."""
        ...

    def restore_order(self, order: Order) -> bool:
        """Take back an order not done from the store after a restart; False while its market is not known yet."""
        ...


@runtime_checkable
class PerpVenue(Protocol):
    """The position commands of a venue with perpetual markets (docs/DERIVATIVES.md); orders go through `Venue.place`.

    Each names the account it acts for (the host checked the caller may trade it), is recorded
    through the host before it returns, and refuses with stable codes (`leverage_above_maximum`,
    `margin_mode_change_with_open_position`, `not_a_perpetual`, ...).
    """

    async def set_leverage(self, account: int, symbol: str, leverage: int) -> Execution:
        """Set the account's leverage on a perpetual (an open position's margin follows, as the venue does)."""
        ...

    async def set_margin_mode(self, account: int, symbol: str, mode: MarginMode) -> Execution:
        """Isolated or cross on a perpetual; refused while the account has a position or an order there."""
        ...

    async def set_hedge_mode(self, account: int, hedge: bool) -> Execution:
        """Hedge (long and short legs) or one-way mode on this exchange; refused with positions or orders open."""
        ...

    async def adjust_margin(self, account: int, symbol: str, amount: int, side: PositionSide,
                            wallet_set_id: int | None = None) -> Execution:
        """Add (+) or remove (-) ATTO of isolated margin on a position."""
        ...

    def mark_price(self, symbol: str) -> int | None:
        """The latest mark price of a perpetual (None: not known yet)."""
        ...

    def mark_rule(self, symbol: str) -> str:
        """Where that mark comes from (`MARK_FEED`, `MARK_VENUE` or `MARK_MEDIAN`): what the exchange's status says."""
        ...


def completed(step: Coroutine[Any, Any, T]) -> T:
    """Run a venue coroutine that never suspends (a simulated venue with a backtest host) to its result, synchronously."""
    try:
        step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    step.close()
    raise RuntimeError("a simulated venue step suspended: its host must not await anything")
