"""Shared pieces of the live perpetual tests: the local USD-M server and a CcxtVenue on ccxt.binanceusdm pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from coinwire.core.instruments import Instrument
from coinwire.core.orders import Order, OrderType, PositionSide
from coinwire.venues.ccxt_venue import CcxtVenue
from tests.feeds.binance_server import ServerRunner
from tests.venues.binance_trading import API_KEY, SECRET
from tests.venues.binance_usdm import UsdmBinance, usdm_urls
from tests.venues.conftest import FastBackoff, make_order

__all__ = ["ASKS", "ATTO", "BIDS", "PERP", "make_usdm_venue", "perp", "perp_order", "server", "usdm", "venue"]

PERP = "BTC/USDT:USDT"
ATTO = 10**18
BIDS = [("100000.0", "1"), ("99990.0", "2")]
ASKS = [("100010.0", "1"), ("100020.0", "2")]


def make_usdm_venue(server: ServerRunner) -> CcxtVenue:
    """A CcxtVenue on a real ccxt.binanceusdm pointed at the local USD-M server (its quirks applied by the venue)."""
    return CcxtVenue.connect("binance-usdm", "binanceusdm", api_key=API_KEY, secret=SECRET, urls=usdm_urls(server),
                             timeout=3.0, rate_limit=False, poll_interval=0.05, backoff=FastBackoff)


@pytest.fixture
def usdm() -> UsdmBinance:
    venue = UsdmBinance("10000")
    venue.set_book(BIDS, ASKS)
    return venue


@pytest.fixture
async def server(usdm: UsdmBinance) -> AsyncIterator[ServerRunner]:
    runner = ServerRunner(usdm)
    await runner.start()
    yield runner
    await runner.stop()


@pytest.fixture
async def venue(server: ServerRunner) -> AsyncIterator[CcxtVenue]:
    venue = make_usdm_venue(server)
    await venue.load_instruments([PERP])
    yield venue
    await venue.close()


@pytest.fixture
def perp(venue: CcxtVenue) -> Instrument:
    return venue.instruments[PERP]


def perp_order(inst: Instrument, oid: str, side: str, size: str, *, limit: str | None = None, reduce_only: bool = False,
               leg: PositionSide = PositionSide.BOTH) -> Order:
    order = make_order(inst, oid, side, OrderType.LIMIT if limit else OrderType.MARKET, size, limit)
    return msgspec.structs.replace(order, reduce_only=reduce_only, position_side=leg)
