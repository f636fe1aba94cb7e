"""The contract harness for the venues a gateway runs (paper, live): a real Gateway over a SQLite store, on a test clock.

The gateway builds its venue through its `venue_factory`; the harness's factory hands the
venue a `RecordingHost`: the gateway itself as the venue's host, every `record` also kept in
`recorded` (what the venue handed its host, in order). Market data reaches the venue the way
a feed's does, through `Gateway.apply_market`; the clock moves only when a scenario says, and
expiry is the gateway's own (`expire_due`). `restart` closes the gateway and starts another
on the same store: the venue it builds gets its open orders back from what was stored.
"""

from __future__ import annotations

import time
from pathlib import Path

from coinwire.bus.memory import MemoryBus
from coinwire.config import ExchangeConfig, Settings
from coinwire.core.accounts import Account
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.orders import Fill, Order, OrderType, Side
from coinwire.core.positions import Position
from coinwire.messages import BookSnapshot
from coinwire.services.gateway import Gateway, make_venue
from coinwire.store import Store
from coinwire.venues.base import Execution
from coinwire.venues.hosted import GatewayHost, HostedVenue

SYMBOL = "BTC/USDT"


class RecordingHost:
    """The gateway as a venue's host, keeping every execution the venue records (in order) in `recorded`."""

    def __init__(self, gateway: GatewayHost, recorded: list[Execution]) -> None:
        self.gateway = gateway
        self.recorded = recorded

    @property
    def ledger(self) -> Ledger:
        return self.gateway.ledger

    @property
    def fill_ids(self) -> IdSequence:
        return self.gateway.fill_ids

    @property
    def order_ids(self) -> IdSequence:
        return self.gateway.order_ids

    def now(self) -> int:
        return self.gateway.now()

    async def record(self, execution: Execution, *, notify: bool = True) -> None:
        self.recorded.append(execution)
        await self.gateway.record(execution, notify=notify)

    async def log(self, level: str, source: str, message: str, owner_id: int | None = None) -> None:
        await self.gateway.log(level, source, message, owner_id)

    def snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None:
        return self.gateway.snapshot(exchange, symbol)

    async def refresh_status(self, venue: HostedVenue) -> None:
        await self.gateway.refresh_status(venue)

    async def live_account(self, exchange: str, user_name: str | None) -> Account:
        return await self.gateway.live_account(exchange, user_name)

    async def order_fills(self, order_id: int) -> list[Fill]:
        return await self.gateway.order_fills(order_id)

    async def publish_marks(self, positions: list[Position]) -> None:
        await self.gateway.publish_marks(positions)


class GatewayHarness:
    """What paper and live harnesses share: the gateway, its store and clock, orders, books and time."""

    symbol = SYMBOL

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.exchange = settings.exchanges[0].name
        self.store = Store(f"sqlite:///{tmp_path / 'contract.db'}")
        self.bus = MemoryBus()
        self.t = time.time_ns()
        self.recorded: list[Execution] = []
        self.account = 0
        self.gateway: Gateway | None = None
        self._book_id = 1

    def _factory(self, cfg: ExchangeConfig, host: GatewayHost, store: Store, settings: Settings) -> HostedVenue:
        return make_venue(cfg, RecordingHost(host, self.recorded), store, settings)

    async def open(self) -> None:
        await self.store.start()
        await self.bus.start()
        await self._start_gateway()

    async def _start_gateway(self) -> None:
        self.gateway = Gateway(self.settings, self.store, self.bus, clock=lambda: self.t, venue_factory=self._factory)
        await self.gateway.start()

    async def close(self) -> None:
        if self.gateway is not None:
            await self.gateway.close()
        await self.bus.close()
        await self.store.close()

    @property
    def gw(self) -> Gateway:
        assert self.gateway is not None
        return self.gateway

    @property
    def venue(self) -> HostedVenue:
        return self.gw.venues[self.exchange]

    @property
    def ledger(self) -> Ledger:
        return self.gw.ledger

    @property
    def instrument(self) -> Instrument:
        market = self.venue.market(SYMBOL)
        assert market is not None
        return market.instrument

    def order(
        self, side: str, type: str, size: str, limit: str = "0", cancel_after: int = 0, client_oid: str | None = None
    ) -> Order:
        inst = self.instrument
        order_id = self.gw.order_ids.next()
        return Order(
            id=order_id, client_oid=client_oid or f"contract-{order_id}", exchange=self.exchange, symbol=SYMBOL, side=Side(side),
            type=OrderType(type), size=inst.parse_size(size), limit=inst.parse_price(limit) if limit != "0" else 0,
            cancel_after=cancel_after, created_at=self.t, last_updated_at=self.t, account_id=self.account,
        )

    async def mirror_book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        """The book the venue's mirror sees: a snapshot, as a feed would send one."""
        inst = self.instrument
        self._book_id += 1
        await self.gw.apply_market(BookSnapshot(
            self.exchange, SYMBOL, self.t, self._book_id,
            [(inst.parse_price(p), inst.parse_size(s)) for p, s in bids],
            [(inst.parse_price(p), inst.parse_size(s)) for p, s in asks]))

    async def advance(self, seconds: float) -> None:
        self.t += int(seconds * 1_000_000_000)
        await self.gw.expire_due()
