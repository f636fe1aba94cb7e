"""The venue contract (tests/venues/contract.py) run against the live venue, inside a real gateway, on the local signed Binance.

The account is the local server's (tests/venues/binance_trading.py): signed REST, the
polling report stream, Binance's matching of our orders against the book the harness sets
there; the venue's mirror gets the same book as a feed's snapshot. A trade is printed at the
server, then the venue asks after its orders (`reconcile`) so the scenario continues once it
knows. Every scenario runs but the conditional orders' (SKIPPED).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from coinwire.config import load_settings
from coinwire.core.orders import OrderStatus, OrderType
from coinwire.venues.live import LiveVenue
from tests.feeds.binance_server import RecordedBinance, ServerRunner
from tests.feeds.test_ccxt_feed import capture
from tests.venues.binance_trading import API_KEY, SECRET, TradingBinance, trading_urls
from tests.venues.conftest import OPTIONS, until
from tests.venues.contract import CONDITIONAL_SCENARIOS, SCENARIOS, Scenario
from tests.venues.gateway_harness import SYMBOL, GatewayHarness

ENV = {"COINWIRE_BINANCE_API_KEY": API_KEY, "COINWIRE_BINANCE_SECRET": SECRET}
SKIPPED: dict[str, str] = dict.fromkeys(CONDITIONAL_SCENARIOS, "conditional orders: cond-bt/cond-live")  # scenario -> why not


class LiveHarness(GatewayHarness):
    def __init__(self, tmp_path: Path, account: TradingBinance, server: ServerRunner) -> None:
        exchange = {
            "name": "binance", "mode": "live", "feed": "ccxt", "symbols": [SYMBOL], "poll_interval": 0.05,
            "ccxt_websocket": False, "ccxt_urls": trading_urls(server), "ccxt_options": OPTIONS, "live_reconcile_interval": 0.2,
        }
        super().__init__(load_settings(env=ENV, overrides={"data_dir": str(tmp_path), "exchanges": [exchange]}), tmp_path)
        self.binance = account
        self.book: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])

    @property
    def live(self) -> LiveVenue:
        venue = self.venue
        assert isinstance(venue, LiveVenue)
        return venue

    async def open(self) -> None:
        await super().open()
        await self._connected()

    async def _connected(self) -> None:
        await until(lambda: self.venue.funds_known)  # markets loaded, account made, balances synced
        self.account = self.venue.account_id

    async def fund(self, currency: str, amount: str) -> None:
        self.binance.free[currency] = self.binance.free.get(currency, Decimal(0)) + Decimal(amount)
        await self.live.sync_balances()  # a deposit, as the next start would sync it

    async def set_book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.book = (bids, asks)
        self.binance.set_book(bids, asks)
        await self.mirror_book(bids, asks)

    async def trade(self, price: str, size: str, aggressor: str) -> None:
        self.binance.trade(Decimal(price), Decimal(size))
        await self.live.reconcile()

    async def restart(self) -> None:
        await self.gw.close()
        await self._start_gateway()
        await self._connected()
        await self.mirror_book(*self.book)


@pytest.fixture
async def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LiveHarness]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    account = TradingBinance(RecordedBinance(capture()), {"BTC": "0", "USDT": "0"})
    server = ServerRunner(account)
    await server.start()
    h = LiveHarness(tmp_path, account, server)
    try:
        await asyncio.wait_for(h.open(), 20)
        yield h
    finally:
        await h.close()
        await server.stop()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__.removeprefix("scenario_"))
async def test_live_venue_keeps_the_contract(harness: LiveHarness, scenario: Scenario) -> None:
    if scenario.__name__ in SKIPPED:
        pytest.skip(SKIPPED[scenario.__name__])
    await scenario(harness)


async def test_a_buy_by_funds_reaches_binance_as_quote_order_qty_of_the_funds_less_the_fee(harness: LiveHarness) -> None:
    """Fee included, live: quoteOrderQty is funds / (1 + taker fee), truncated; Binance's fee, in BTC, comes on top of it."""
    await harness.fund("USDT", "1000")
    await harness.set_book([("100.00", "1")], [("101.00", "1"), ("102.00", "2")])
    order = harness.order("buy", OrderType.MARKET.value, "1")
    order.size, order.funds = 0, 15_250 * 10**16  # 152.50 USDT
    await harness.venue.place(order)
    sent = next(o for o in harness.binance.orders.values() if o["clientOrderId"] == order.client_oid)
    assert sent["origQuoteOrderQty"] == "152.34000000"  # 152.50 / 1.001 = 152.3476..., truncated to the cent
    assert order.status is OrderStatus.DONE and order.size == order.filled_size
    assert Decimal(sent["executedQty"]) == Decimal(order.filled_size).scaleb(-harness.instrument.size_decimals)
    assert Decimal(sent["cummulativeQuoteQty"]) <= Decimal("152.34")
    assert order.fee_currency == "BTC"  # Binance's fee is in the asset received: the quote spent is the notional
    assert harness.venue.balances(harness.account)["USDT"].balance == 1000 * 10**18 - order.filled_notional
