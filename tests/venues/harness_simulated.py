"""Harnesses that put the simulated venue under the contract scenarios: over candles (`CandleVenue`) and over an L2 book (`BookVenue`).

Each harness is the venue's host, as a backtest runtime is: it owns the ledger, the fill ids
and the simulated clock, and keeps every `Execution` the venue records (`recorded`) and the
orders it placed, which is what `restart` builds a new venue from. Both keep the contract's
`VenueHarness` protocol (tests/venues/contract.py) on its market: BTC/USDT on the grid of
Binance's BTCUSDT (tick 0.01, step 0.00001, minimum notional 5 USDT), fees 0.1%.
"""

from __future__ import annotations

import heapq

import msgspec
import numpy as np

from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.numbers import ATTO_DECIMALS, str_to_atto, to_units
from coinwire.core.orders import Order, OrderType, Side
from coinwire.engine.backtest import Series
from coinwire.messages import BookSnapshot, TradeTick
from coinwire.venues.base import Execution
from coinwire.venues.simulated import SimClock
from coinwire.venues.simulated_book import BookVenue
from coinwire.venues.simulated_candles import CandleVenue

__all__ = ["BookHarness", "SimulatedHarness", "INSTRUMENT"]

NS = 1_000_000_000
EXCHANGE = "sim"
SYMBOL = "BTC/USDT"
INSTRUMENT = Instrument(exchange=EXCHANGE, symbol=SYMBOL, base="BTC", quote="USDT", price_decimals=2, size_decimals=5,
                        min_notional=str_to_atto("5"), maker_fee=100_000, taker_fee=100_000)  # 0.1%
T0 = 1_700_000_000 * NS


class _Host:
    """What both harnesses share: the host side (ledger, ids, records) and the scenario-facing helpers."""

    venue: CandleVenue | BookVenue

    def __init__(self) -> None:
        self.ledger = Ledger({EXCHANGE: {"BTC", "USDT"}})
        self.fill_ids = IdSequence()
        self.order_ids = IdSequence()
        self.recorded: list[Execution] = []
        self.kept: dict[int, Order] = {}  # what a store would hold: every order placed, by id
        self.logged: list[tuple[str, str, str]] = []
        self.account = 3
        self.symbol = SYMBOL
        self.book: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])  # the last set_book, for restart

    # --- VenueHost ---------------------------------------------------------------------------
    def now(self) -> int:
        raise NotImplementedError

    async def record(self, execution: Execution, *, notify: bool = True) -> None:
        self.recorded.append(execution)
        for order in execution.orders:
            self.kept[order.id] = order

    async def log(self, level: str, source: str, message: str, owner_id: int | None = None) -> None:
        self.logged.append((level, source, message))

    # --- the scenarios' side -------------------------------------------------------------------
    async def fund(self, currency: str, amount: str) -> None:
        self.ledger.add_virtual_tx(EXCHANGE, currency, to_units(amount, ATTO_DECIMALS), self.now(), self.account)

    def order(self, side: str, type: str, size: str, limit: str = "0", cancel_after: int = 0, client_oid: str | None = None) -> Order:
        oid = self.order_ids.next()
        now = self.now()
        return Order(id=oid, client_oid=client_oid or f"c-{oid}", exchange=EXCHANGE, symbol=SYMBOL, side=Side(side),
                     type=OrderType(type), size=to_units(size, INSTRUMENT.size_decimals), limit=to_units(limit, INSTRUMENT.price_decimals),
                     cancel_after=cancel_after, account_id=self.account, created_at=now, last_updated_at=now)

    def _levels(self, levels: list[tuple[str, str]]) -> list[tuple[int, int]]:
        return [(to_units(p, INSTRUMENT.price_decimals), to_units(s, INSTRUMENT.size_decimals)) for p, s in levels]

    def _restored(self) -> list[Order]:
        """The orders not done as a store would give them back: copies, the venue's own objects gone with it."""
        kept = {oid: msgspec.structs.replace(o) for oid, o in self.kept.items()}
        self.kept = kept
        return [o for o in kept.values() if not o.is_done]


class SimulatedHarness(_Host):
    """The candle venue on a `SimClock`. Its one market's candles lie ten days ahead, so no candle touches an order
    during a scenario: the book is what `set_book` says, trades are what `trade` prints."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = SimClock(T0)
        start_s = T0 // NS + 10 * 86_400
        flat = np.full(4, 100.0)
        self.series = Series(SYMBOL, "1m", np.arange(start_s, start_s + 240, 60), flat, flat, flat, flat, np.ones(4))
        self.venue = self._new_venue()

    def _new_venue(self) -> CandleVenue:
        venue = CandleVenue(EXCHANGE, self, self.clock)
        venue.add_market(INSTRUMENT, self.series)
        return venue

    def now(self) -> int:
        return self.clock.now

    async def set_book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.book = (bids, asks)
        await self.venue.set_book(SYMBOL, self._levels(bids), self._levels(asks))

    async def trade(self, price: str, size: str, aggressor: str) -> None:
        await self.venue.trade(SYMBOL, to_units(price, INSTRUMENT.price_decimals), to_units(size, INSTRUMENT.size_decimals),
                               Side(aggressor))

    async def advance(self, seconds: float) -> None:
        """Run the clock's wake-ups (the venue's expiries) due by now + `seconds`, in order."""
        until = self.clock.now + int(seconds * NS)
        events = self.clock.events
        while events and events[0][0] <= until:
            ts, _, _, step = heapq.heappop(events)
            self.clock.now = max(self.clock.now, ts)
            await step()
        self.clock.now = max(self.clock.now, until)

    async def restart(self) -> None:
        """A new clock and venue; the orders not done come back from what the host kept, the book as it was."""
        self.clock = SimClock(self.clock.now)
        self.venue = self._new_venue()
        for order in self._restored():
            assert self.venue.restore_order(order)
        await self.set_book(*self.book)


class BookHarness(_Host):
    """The L2 venue (book sync and matching of the paper exchange) fed snapshots and trades as messages."""

    def __init__(self) -> None:
        super().__init__()
        self.clock_ns = T0
        self.update_id = 0
        self.venue = self._new_venue()

    def _new_venue(self) -> BookVenue:
        venue = BookVenue(EXCHANGE, self)
        venue.add_market(INSTRUMENT)
        return venue

    def now(self) -> int:
        return self.clock_ns

    async def set_book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.book = (bids, asks)
        self.update_id += 1
        snapshot = BookSnapshot(EXCHANGE, SYMBOL, self.clock_ns, self.update_id, self._levels(bids), self._levels(asks))
        await self.venue.settle(self.venue.on_market(snapshot))

    async def trade(self, price: str, size: str, aggressor: str) -> None:
        self.update_id += 1
        price_units, size_units = to_units(price, INSTRUMENT.price_decimals), to_units(size, INSTRUMENT.size_decimals)
        trade = TradeTick(EXCHANGE, SYMBOL, self.clock_ns, str(self.update_id), price_units, size_units, aggressor)
        await self.venue.settle(self.venue.on_market(trade))

    async def advance(self, seconds: float) -> None:
        """Market time moves on as the L2 backtest moves it: orders due by then expire."""
        self.clock_ns += int(seconds * NS)
        due = self.venue.next_expiry()
        if due is not None and due <= self.clock_ns:
            await self.venue.expire(self.clock_ns)

    async def restart(self) -> None:
        """A new venue; the orders not done come back from what the host kept, then the feed's next snapshot (the book as it was)."""
        self.venue = self._new_venue()
        for order in self._restored():
            assert self.venue.restore_order(order)
        await self.set_book(*self.book)
