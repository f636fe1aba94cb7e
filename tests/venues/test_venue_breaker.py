"""The live venue's `ccxt:<exchange>` breaker: a real ccxt.binance against the local Binance trading server answering 503.

Only the venue's unavailability counts (503, Binance's -1008 "server busy"); a refused order is
the venue answering. While the breaker is open the server sees no request at all; the probe after
`reset_seconds` goes through, and the breaker's state is the `coinwire_breaker_state` gauge.
"""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from coinwire.core.breaker import BreakerState, DependencyUnavailable
from coinwire.core.errors import InvalidInput, NotReady
from coinwire.core.instruments import Instrument
from coinwire.core.orders import OrderType
from coinwire.services.breakers import Breakers
from tests.feeds.binance_server import ServerRunner
from tests.venues.binance_trading import TradingBinance
from tests.venues.conftest import SYMBOL, make_order, make_venue


class Clock:
    """The breakers' time, moved by the test (the venue and the server run on real time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hits(exchange: TradingBinance, path: str) -> int:
    return sum(r.endswith(path) for r in exchange.requests)


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("coinwire_breaker_state", {"dependency": name})


async def test_503s_open_the_breaker_which_refuses_without_a_request_then_a_probe_closes_it(
    server: ServerRunner, exchange: TradingBinance
) -> None:
    clock = Clock()
    breakers = Breakers(failures=3, reset_seconds=30.0, clock=clock)
    breakers.watch()
    guard = breakers.get("ccxt:binance")
    venue = make_venue(server, breaker=guard)
    try:
        await venue.load_instruments([SYMBOL])
        btc: Instrument = venue.instruments[SYMBOL]
        # refused orders (a filter failure: the venue answered) never count, however many
        for i in range(5):
            with pytest.raises(InvalidInput):
                await venue.place(make_order(btc, f"tiny{i}", "buy", OrderType.LIMIT, "0.00001", "1.00"), btc)
        assert guard.breaker.state is BreakerState.CLOSED and gauge("ccxt:binance") == 0
        # three 503s in a row: the third opens it
        exchange.fail("account", 503, 503, 503)
        for _ in range(3):
            with pytest.raises(NotReady) as failed:
                await venue.balances()
            assert failed.value.code == "exchange_unavailable" or failed.value.code == "exchange_busy"
        assert guard.breaker.state is BreakerState.OPEN and gauge("ccxt:binance") == 2
        opens = REGISTRY.get_sample_value("coinwire_breaker_opens_total", {"dependency": "ccxt:binance"})
        assert opens is not None and opens >= 1
        assert hits(exchange, "/api/v3/account") == 3
        # open: refused at once, with the stable retryable code, and the server sees nothing (orders included)
        orders_before = hits(exchange, "/api/v3/order")
        for _ in range(10):
            with pytest.raises(DependencyUnavailable) as refused:
                await venue.balances()
        assert refused.value.code == "dependency_unavailable" and refused.value.http_status == 503
        assert refused.value.to_dict()["dependency"] == "ccxt:binance" and refused.value.to_dict()["retryable"] is True
        with pytest.raises(DependencyUnavailable):
            await venue.place(make_order(btc, "whileopen", "buy", OrderType.LIMIT, "0.01", "1000.00"), btc)
        assert hits(exchange, "/api/v3/account") == 3 and hits(exchange, "/api/v3/order") == orders_before
        assert ("ccxt:binance", "breaker_open") in [(name, code) for name, code, _ in breakers.reasons()]
        # after reset_seconds: half-open; the probe fails (503 again) and it opens for another reset_seconds
        clock.now += 30.0
        assert gauge("ccxt:binance") == 1
        exchange.fail("account", 503)
        with pytest.raises(NotReady):
            await venue.balances()
        assert guard.breaker.state is BreakerState.OPEN and hits(exchange, "/api/v3/account") == 4
        clock.now += 29.0
        with pytest.raises(DependencyUnavailable):
            await venue.balances()
        assert hits(exchange, "/api/v3/account") == 4
        # the next probe succeeds: closed, and everything flows again
        clock.now += 1.0
        balances = await venue.balances()
        assert "USDT" in balances and guard.breaker.state is BreakerState.CLOSED and gauge("ccxt:binance") == 0
        report = await venue.place(make_order(btc, "afterclose", "buy", OrderType.LIMIT, "0.01", "1000.00"), btc)
        assert report.client_oid == "afterclose" and breakers.reasons() == []
    finally:
        await venue.close()
