"""What the gateway runs: venues over a feed's mirrored markets, and what such a venue asks of the gateway.

`Venue` (venues/base.py) is the contract every venue keeps, a backtest's simulated one too.
A venue the gateway runs has more to it, and the gateway reaches all of it through
`HostedVenue` without knowing which kind it holds: the markets a feed mirrors (its checks,
a strategy's books, the status), a life (`start`, `close`), market data (`on_market`, which
fills resting orders), `cancel_after` deadlines (`expire`), and what it says of itself
(`virtual_funds`: users open funded paper accounts on it; `funds_known`; `account_id`), and
OCO lists (`place_oco`) and conditional orders accepted past their trigger (`allow_immediate`).

`GatewayHost` is the gateway as such a venue sees it: the `VenueHost` port plus the few
things a mirror or a real account needs (a snapshot on a book gap, the status announced,
the live account, the store's fills of an order).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from coinwire.core.accounts import Account
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.orders import Fill, Order
from coinwire.core.positions import Position
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from coinwire.venues.base import Execution, PerpVenue, Venue, VenueHost

if TYPE_CHECKING:
    from coinwire.venues.paper import PaperMarket

__all__ = ["GatewayHost", "HostedVenue", "MarketMessage"]

MarketMessage = BookSnapshot | BookDelta | TradeTick | BookTicker


class GatewayHost(VenueHost, Protocol):
    @property
    def order_ids(self) -> IdSequence:
        """The ids of new orders: those a venue makes itself (a bracket's children once the parent filled)."""
        ...

    def snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None:
        """A fresh book from the feed's snapshot source, for a book that lost its sync (None: no source)."""
        ...

    async def refresh_status(self, venue: HostedVenue) -> None:
        """Announce the venue's status if its books or account changed it (`computed_status`)."""
        ...

    async def live_account(self, exchange: str, user_name: str | None) -> Account:
        """The account a live venue trades (whose keys: `user_name`'s vault entry, None: the platform's), made on first use."""
        ...

    async def order_fills(self, order_id: int) -> list[Fill]:
        """The stored fills of an order (a live venue's trade ids already applied before a restart)."""
        ...

    async def publish_marks(self, positions: list[Position]) -> None:
        """Tell the followers of these positions that their mark moved (uPnL, margin ratio), without storing anything."""
        ...


class HostedVenue(Venue, PerpVenue, Protocol):
    mode: str  # the exchange's configured mode ("paper" | "live"): what a run of that mode may trade on
    feed_name: str
    markets: dict[str, PaperMarket]  # the mirror: checks, holds, strategies' books
    stale: set[str]  # symbols whose feed says data stopped flowing
    virtual_funds: bool  # users open paper accounts funded with virtual money here
    account_id: int  # the account the venue itself trades (live: the keys' owner); 0 when users open their own

    @property
    def funds_known(self) -> bool:
        """Whether the ledger's wallets hold what this venue really has (a live one: once its account is read)."""
        ...

    def market(self, symbol: str) -> PaperMarket | None: ...

    async def place(self, order: Order, budget: int | None = None, *, allow_immediate: bool = False) -> Execution:
        """`Venue.place`; `allow_immediate`: a conditional order its trigger price has already passed is accepted and fires at once."""
        ...

    async def place_oco(self, limit_leg: Order, stop_leg: Order) -> Execution:
        """Place an OCO's two legs at once (one hold, a shared `list_id`: the limit leg's id); recorded before it returns."""
        ...

    def add_instruments(self, instruments: Iterable[Instrument]) -> list[PaperMarket]: ...

    def computed_status(self) -> str: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def on_market(self, message: MarketMessage) -> bool:
        """Apply market data to the mirror; fills of resting orders it causes are recorded through the host.

        False: the message's symbol is not a market here (nothing was applied).
        """
        ...

    async def expire(self, now: int) -> None:
        """Retire the orders whose `cancel_after` or `expire_at` deadline is at or before `now`, untriggered ones too
        (recorded through the host)."""
        ...

    def take_back(self, order: Order) -> None:
        """Forget an order whose placement the store refused (nothing refers to it yet)."""
        ...

    def forget_orders(self) -> None:
        """Drop the orders it holds in memory before they are restored from the store (after a failed commit)."""
        ...
