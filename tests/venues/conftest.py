"""Fixtures for the live venue tests: a local Binance trading server on the recorded book, and a venue on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from coinwire.core.instruments import Instrument
from coinwire.core.orders import Order, OrderType, Side
from coinwire.venues.ccxt_errors import Backoff
from coinwire.venues.ccxt_venue import CcxtVenue
from tests.feeds.binance_server import RecordedBinance, ServerRunner
from tests.feeds.test_ccxt_feed import capture
from tests.venues.binance_trading import API_KEY, SECRET, TradingBinance, trading_urls

SYMBOL = "BTC/USDT"
START_BALANCES = {"BTC": "1", "USDT": "100000"}
# spot markets only (the server has no futures API); no private currency or margin-pair lists (sapi) either
OPTIONS: dict[str, Any] = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}


class FastBackoff(Backoff):
    def __init__(self) -> None:
        super().__init__(base=0.01, cap=0.05, rate_limit_factor=2.0, jitter=0.0)


@pytest.fixture
async def exchange() -> TradingBinance:
    return TradingBinance(RecordedBinance(capture()), dict(START_BALANCES))


@pytest.fixture
async def server(exchange: TradingBinance) -> AsyncIterator[ServerRunner]:
    runner = ServerRunner(exchange)
    await runner.start()
    yield runner
    await runner.stop()


def make_venue(
    server: ServerRunner,
    *,
    secret: str = SECRET,
    api_key: str = API_KEY,
    timeout: float = 3.0,
    recv_window_ms: int | None = None,
    **kwargs: Any,
) -> CcxtVenue:
    """A CcxtVenue on a real ccxt.binance pointed at the local server."""
    options = dict(OPTIONS)
    if recv_window_ms is not None:
        options["recvWindow"] = recv_window_ms
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("backoff", FastBackoff)
    return CcxtVenue.connect(
        "binance",
        "binance",
        api_key=api_key,
        secret=secret,
        urls=trading_urls(server),
        options=options,
        timeout=timeout,
        rate_limit=False,  # CCXT's throttle is for real venues; this one is local
        **kwargs,
    )


@pytest.fixture
async def venue(server: ServerRunner) -> AsyncIterator[CcxtVenue]:
    venue = make_venue(server)
    await venue.load_instruments([SYMBOL])
    yield venue
    await venue.close()


@pytest.fixture
def btc(venue: CcxtVenue) -> Instrument:
    return venue.instruments[SYMBOL]


def make_order(
    instrument: Instrument, client_oid: str, side: str, kind: OrderType, size: str, limit: str | None = None
) -> Order:
    """One of our orders as the gateway would hand it over (integer units on the instrument's grid)."""
    return Order(
        id=0,
        client_oid=client_oid,
        exchange=instrument.exchange,
        symbol=instrument.symbol,
        side=Side(side),
        type=kind,
        size=instrument.parse_size(size),
        limit=instrument.parse_price(limit) if limit is not None else 0,
    )


def best(exchange: TradingBinance, side: str) -> tuple[Decimal, Decimal]:
    """(price, size) an order of `side` (BUY/SELL) would take first from the server's book."""
    return exchange.book_side(side)[0]


def advance_trades(exchange: TradingBinance, count: int) -> None:
    """Let recorded messages happen until `count` recorded trades have."""
    seen = 0
    while seen < count:
        message = exchange.market.messages[exchange.market.cursor]
        exchange.advance(1)
        seen += message["stream"].endswith("@trade")


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
